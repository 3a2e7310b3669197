"""THE ROLE AND PERMISSION MATRIX: who may do what on a blog, over every write path — the HTTP
API, the public websocket's `post` frame, the admin and the management commands — for each
actor (anonymous, a signed-in stranger, a contributor, another contributor, an editor, the
owner, staff who are not members, a superuser) and each action. Every refusal is checked twice:
its status, and that nothing changed (no post, no event, no desk event, no role, no state).

The blog's owner here is not staff, so "owner" and "staff" are told apart (conftest's owner is
both). The admin only lets staff in, so for it the members are also tried as staff.
"""

import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client

from liveblog import services
from liveblog.models import (
    Blog,
    DeskEvent,
    Event,
    Membership,
    Post,
    Submission,
    SubmissionAction,
)
from tests.support.comms import Reader

ANONYMOUS, STRANGER, CONTRIBUTOR, OTHER, EDITOR, OWNER, STAFF, SUPERUSER = ACTORS = (
    "anonymous", "stranger", "contributor", "other_contributor", "editor", "owner", "staff",
    "superuser",
)
USERNAMES = {STRANGER: "sam", CONTRIBUTOR: "carl", OTHER: "dora", EDITOR: "ed", OWNER: "olga",
             STAFF: "steve", SUPERUSER: "root"}
SLUG = "desk"
API = f"/api/liveblog/{SLUG}/"


@dataclass
class World:
    blog: Blog
    users: dict
    post_id: int  # a published post, by the editor
    submission_id: int  # the contributor's, waiting


def fingerprint() -> dict:
    """Everything a write could change."""
    return {
        "posts": list(Post.objects.order_by("id").values_list(
            "id", "body", "pinned", "key_event", "deleted_at")),
        "events": list(Event.objects.order_by("id").values_list("id", "seq")),
        "desk_events": DeskEvent.objects.count(),
        "submissions": list(Submission.objects.order_by("id").values_list(
            "id", "state", "body", "note", "publish_at", "post_id", "pinned")),
        "actions": SubmissionAction.objects.count(),
        "members": list(Membership.objects.order_by("blog_id", "user_id").values_list(
            "blog_id", "user_id", "role")),
        "blogs": list(Blog.objects.order_by("id").values_list("id", "head", "owner_id")),
    }


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(django_user_model) -> World:
    make = django_user_model.objects.create_user
    users = {role: make(name, password=f"{name}-password") for role, name in USERNAMES.items()
             if role not in (STAFF, SUPERUSER)}
    users[STAFF] = make("steve", password="steve-password", is_staff=True)
    users[STAFF].user_permissions.set(Permission.objects.filter(content_type__app_label="liveblog"))
    users[SUPERUSER] = django_user_model.objects.create_superuser("root", password="root-pw")
    users["victor"] = make("victor")  # a contributor whose role the managers change
    users["newbie"] = make("newbie")  # nobody yet
    blog = Blog.objects.create(slug=SLUG, title="The desk", owner=users[OWNER])
    for role, who in ((EDITOR, EDITOR), (CONTRIBUTOR, CONTRIBUTOR), (CONTRIBUTOR, OTHER),
                      (CONTRIBUTOR, "victor")):
        Membership.objects.create(blog=blog, user=users[who], role=role)
    post = services.post_create(actor=users[EDITOR], blog_id=blog.pk, client_id=uuid.uuid4(),
                                body="Published by the editor")
    submission = services.post_create(actor=users[CONTRIBUTOR], blog_id=blog.pk,
                                      client_id=uuid.uuid4(), body="Waiting on the desk")
    assert post.seq == 1 and submission.desk
    return World(blog, users, post.data["id"], submission.data["id"])


# --- HTTP ---------------------------------------------------------------------------------------


def _new_post(**fields) -> dict:
    return {"client_id": str(uuid.uuid4()), "body": "New words", **fields}


# action: (method, path of the world, JSON body of the world or None)
HTTP_ACTIONS = {
    "create_post": lambda w: ("POST", "posts", _new_post()),
    "schedule_post": lambda w: ("POST", "posts", _new_post(publish_at=in_an_hour())),
    "edit_published_post": lambda w: ("PATCH", f"posts/{w.post_id}", {"body": "Changed"}),
    "delete_published_post": lambda w: ("DELETE", f"posts/{w.post_id}", None),
    "read_submission": lambda w: ("GET", f"submissions/{w.submission_id}", None),
    "revise_submission": lambda w: ("PATCH", f"submissions/{w.submission_id}", {"body": "New"}),
    "withdraw_submission": lambda w: ("DELETE", f"submissions/{w.submission_id}", None),
    "publish_submission": lambda w: ("POST", f"submissions/{w.submission_id}/publish", {}),
    "publish_by_post_path": lambda w: ("POST", f"posts/{w.submission_id}/publish", {}),
    "schedule_submission": lambda w: ("POST", f"submissions/{w.submission_id}/publish",
                                      {"publish_at": in_an_hour()}),
    "return_submission": lambda w: ("POST", f"submissions/{w.submission_id}/return",
                                    {"note": "Source?"}),
    "return_by_post_path": lambda w: ("POST", f"posts/{w.submission_id}/return",
                                      {"note": "Source?"}),
    "read_desk": lambda w: ("GET", "desk", None),
    "list_members": lambda w: ("GET", "members", None),
    "add_member": lambda w: ("PUT", "members/newbie", {"role": "contributor"}),
    "change_role": lambda w: ("PUT", "members/victor", {"role": "editor"}),
    "remove_member": lambda w: ("DELETE", "members/victor", None),
}

# The expected status, in ACTORS order. The submission is the contributor's: for the other
# contributor it is someone else's.
#               anon stranger contrib other editor owner staff super
PUBLISHERS = (401, 403, 403, 403, 200, 200, 403, 200)
ITS_AUTHOR_AND_EDITORS = (401, 403, 200, 403, 200, 200, 403, 200)
MANAGERS = (401, 403, 403, 403, 403, 200, 200, 200)
HTTP_MATRIX = {
    "create_post": (401, 403, 202, 202, 201, 201, 403, 201),
    "schedule_post": (401, 403, 403, 403, 202, 202, 403, 202),
    "edit_published_post": PUBLISHERS,
    "delete_published_post": PUBLISHERS,
    "read_submission": ITS_AUTHOR_AND_EDITORS,
    "revise_submission": ITS_AUTHOR_AND_EDITORS,
    "withdraw_submission": ITS_AUTHOR_AND_EDITORS,
    "publish_submission": PUBLISHERS,
    "publish_by_post_path": PUBLISHERS,
    "schedule_submission": (401, 403, 403, 403, 202, 202, 403, 202),
    "return_submission": PUBLISHERS,
    "return_by_post_path": PUBLISHERS,
    "read_desk": (401, 403, 200, 200, 200, 200, 403, 200),
    "list_members": MANAGERS,
    "add_member": MANAGERS,
    "change_role": MANAGERS,
    "remove_member": (401, 403, 403, 403, 403, 204, 204, 204),
}
READS = {"read_submission", "read_desk", "list_members"}
HTTP_CASES = [
    pytest.param(action, actor, status, id=f"{action}-{actor}")
    for action, statuses in HTTP_MATRIX.items()
    for actor, status in zip(ACTORS, statuses, strict=True)
]


def client_of(world: World, actor: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    if actor != ANONYMOUS:
        client.force_login(world.users[actor])
        client.get("/accounts/login/")  # the CSRF cookie, as a browser has it
    return client


def http(world: World, actor: str, action: str):
    method, path, body = HTTP_ACTIONS[action](world)
    client = client_of(world, actor)
    headers = {}
    if "csrftoken" in client.cookies:
        headers["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    call = getattr(client, method.lower())
    if body is None:
        return call(API + path, **headers)
    return call(API + path, data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
@pytest.mark.parametrize("action, actor, status", HTTP_CASES)
def test_http(world, action, actor, status):
    before = fingerprint()
    response = http(world, actor, action)
    assert response.status_code == status, response.content
    if status >= 400:
        assert response.json()["error"] == {401: "not_authenticated", 403: "forbidden"}[status]
        assert fingerprint() == before, "a refused request changed something"
    elif action in READS:
        assert fingerprint() == before
    else:
        assert fingerprint() != before, "an accepted write changed nothing"


@pytest.mark.django_db
@pytest.mark.parametrize("actor", ACTORS)
def test_http_create_publishes_or_submits_by_role(world, actor):
    """What a create made, beyond its status: a public post (and its seq) for whoever
    publishes, a submission and no public trace for a contributor."""
    before_posts, before_head = Post.objects.count(), Blog.objects.get(pk=world.blog.pk).head
    response = http(world, actor, "create_post")
    head = Blog.objects.get(pk=world.blog.pk).head
    if response.status_code == 201:
        assert response.json()["seq"] == head == before_head + 1
        assert Post.objects.count() == before_posts + 1
    elif response.status_code == 202:
        assert response.json()["seq"] is None
        assert response.json()["post"]["state"] == "submitted"
        assert (Post.objects.count(), head) == (before_posts, before_head)
    else:
        assert (Post.objects.count(), head) == (before_posts, before_head)


@pytest.mark.django_db
def test_http_contributors_revise_only_their_own_and_editors_any(world):
    """The other contributor's own submission: theirs to revise, not the first
    contributor's."""
    theirs = services.post_create(actor=world.users[OTHER], blog_id=world.blog.pk,
                                  client_id=uuid.uuid4(), body="Dora's").data["id"]
    for actor, status in ((CONTRIBUTOR, 403), (OTHER, 200), (EDITOR, 200)):
        before = fingerprint()
        client = client_of(world, actor)
        response = client.patch(
            f"{API}submissions/{theirs}", data=json.dumps({"body": f"by {actor}"}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
        assert response.status_code == status
        assert (fingerprint() == before) == (status == 403)


@pytest.mark.django_db
def test_http_writes_without_the_csrf_token_are_refused(world):
    for action in ("create_post", "publish_submission", "add_member"):
        method, path, body = HTTP_ACTIONS[action](world)
        client = client_of(world, OWNER)
        before = fingerprint()
        response = getattr(client, method.lower())(API + path, data=json.dumps(body),
                                                   content_type="application/json")
        assert (response.status_code, response.json()["error"]) == (403, "csrf_failed")
        assert fingerprint() == before


@pytest.mark.django_db
def test_http_a_disabled_member_is_refused(world):
    editor = world.users[EDITOR]
    client = client_of(world, EDITOR)
    editor.is_active = False
    editor.save()
    before = fingerprint()
    token = client.cookies["csrftoken"].value
    response = client.post(API + "posts", data=json.dumps(_new_post()),
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code in (401, 403)
    assert fingerprint() == before


# --- The public websocket's `post` frame --------------------------------------------------------

# What a `post` frame gets: ("ack", seq is None) or ("error", code).
WS_MATRIX = {
    "create_post": {
        ANONYMOUS: ("error", "not_authenticated"), STRANGER: ("error", "forbidden"),
        CONTRIBUTOR: ("ack", "submitted"), OTHER: ("ack", "submitted"),
        EDITOR: ("ack", "published"), OWNER: ("ack", "published"), STAFF: ("error", "forbidden"),
        SUPERUSER: ("ack", "published"),
    },
    "schedule_post": {
        ANONYMOUS: ("error", "not_authenticated"), STRANGER: ("error", "forbidden"),
        CONTRIBUTOR: ("error", "forbidden"), OTHER: ("error", "forbidden"),
        EDITOR: ("ack", "scheduled"), OWNER: ("ack", "scheduled"), STAFF: ("error", "forbidden"),
        SUPERUSER: ("ack", "scheduled"),
    },
}
WS_CASES = [
    pytest.param(action, actor, outcome, id=f"{action}-{actor}")
    for action, outcomes in WS_MATRIX.items() for actor, outcome in outcomes.items()
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action, actor, outcome", WS_CASES)
async def test_websocket_post_frame(world, action, actor, outcome):
    user = None if actor == ANONYMOUS else world.users[actor]
    reader = await Reader.open(SLUG, "?since=1", user=user)
    await reader.expect("hello")
    await reader.events_until_live()
    before = await database_sync_to_async(fingerprint)()
    frame = {"type": "post", "client_id": str(uuid.uuid4()), "body": "Over the socket"}
    if action == "schedule_post":
        frame["publish_at"] = in_an_hour()
    await reader.send(frame)
    kind, detail = outcome
    if kind == "error":
        assert (await reader.expect("error"))["code"] == detail
        assert await reader.silent()  # no event either
        assert await database_sync_to_async(fingerprint)() == before
    elif detail == "published":
        answers = [await reader.next(), await reader.next()]  # the ack and the event, any order
        ack = next(answer for answer in answers if answer["type"] == "ack")
        event = next(answer for answer in answers if answer["type"] == "event")
        assert ack["seq"] == event["seq"] == 2 and ack["post"] == event["post"]
    else:
        ack = await reader.expect("ack")
        assert ack["seq"] is None and ack["post"]["state"] == detail
        assert await reader.silent()  # nothing public
        after = await database_sync_to_async(fingerprint)()
        assert (after["posts"], after["events"]) == (before["posts"], before["events"])
        assert after["submissions"] != before["submissions"]
    await reader.close()


# --- The admin ----------------------------------------------------------------------------------

POST_ADMIN = "/admin/liveblog/post/"
BLOG_ADMIN = "/admin/liveblog/blog/"
ADMIN_ACTIONS = ["add_post", "edit_published_post", "delete_published_post", "add_member",
                 "change_role", "remove_member"]
# "login": the admin sends them to sign in (only staff get in); "refused": a form error or a
# message, nothing written; "done".
LOGIN, REFUSED, DONE = "login", "refused", "done"
NATURAL = {ANONYMOUS: LOGIN, STRANGER: LOGIN, CONTRIBUTOR: LOGIN, OTHER: LOGIN, EDITOR: LOGIN,
           OWNER: LOGIN}
ADMIN_MATRIX = {
    # staff non-member: not an author (posts), but staff manage every blog (roles)
    "add_post": {**NATURAL, STAFF: REFUSED, SUPERUSER: DONE},
    "edit_published_post": {**NATURAL, STAFF: REFUSED, SUPERUSER: DONE},
    "delete_published_post": {**NATURAL, STAFF: REFUSED, SUPERUSER: DONE},
    "add_member": {**NATURAL, STAFF: DONE, SUPERUSER: DONE},
    "change_role": {**NATURAL, STAFF: DONE, SUPERUSER: DONE},
    "remove_member": {**NATURAL, STAFF: DONE, SUPERUSER: DONE},
}
# The members again, made staff (with the admin's liveblog permissions): the services, not the
# admin's door, decide what they may do to posts. Staff manage roles on every blog.
AS_STAFF = {
    "add_post": {STRANGER: REFUSED, CONTRIBUTOR: DONE, OTHER: DONE, EDITOR: DONE, OWNER: DONE},
    "edit_published_post": {STRANGER: REFUSED, CONTRIBUTOR: REFUSED, OTHER: REFUSED,
                            EDITOR: DONE, OWNER: DONE},
    "delete_published_post": {STRANGER: REFUSED, CONTRIBUTOR: REFUSED, OTHER: REFUSED,
                              EDITOR: DONE, OWNER: DONE},
}
ADMIN_CASES = [
    pytest.param(action, actor, False, outcome, id=f"{action}-{actor}")
    for action, outcomes in ADMIN_MATRIX.items() for actor, outcome in outcomes.items()
] + [
    pytest.param(action, actor, True, outcome, id=f"{action}-{actor}-as-staff")
    for action, outcomes in AS_STAFF.items() for actor, outcome in outcomes.items()
]


def membership_form(world: World, *, role: dict | None = None, add: dict | None = None,
                    remove: set | None = None) -> dict:
    """The blog's change form as the admin renders it, with the inline's rows changed."""
    blog = Blog.objects.get(pk=world.blog.pk)
    rows = list(Membership.objects.filter(blog=blog).order_by("id"))
    data = {"title": blog.title, "description": blog.description, "status": blog.status,
            "owner": str(blog.owner_id), "embed_origins": "",
            "memberships-INITIAL_FORMS": str(len(rows)), "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000"}
    for index, row in enumerate(rows):
        username = row.user.username
        data.update({f"memberships-{index}-id": str(row.pk),
                     f"memberships-{index}-blog": str(blog.pk),
                     f"memberships-{index}-user": str(row.user_id),
                     f"memberships-{index}-role": (role or {}).get(username, row.role)})
        if username in (remove or set()):
            data[f"memberships-{index}-DELETE"] = "on"
    for offset, (username, new_role) in enumerate((add or {}).items()):
        index = len(rows) + offset
        data.update({f"memberships-{index}-blog": str(blog.pk),
                     f"memberships-{index}-user": str(world.users[username].pk),
                     f"memberships-{index}-role": new_role})
    data["memberships-TOTAL_FORMS"] = str(len(rows) + len(add or {}))
    return data


def admin_request(world: World, client: Client, action: str):
    blog = world.blog
    if action == "add_post":
        return client.post(POST_ADMIN + "add/", {"blog": str(blog.pk), "body": "Via the admin"})
    if action == "edit_published_post":
        return client.post(f"{POST_ADMIN}{world.post_id}/change/", {"body": "Admin edit"})
    if action == "delete_published_post":
        return client.post(f"{POST_ADMIN}{world.post_id}/delete/", {"post": "yes"})
    form = {
        "add_member": lambda: membership_form(world, add={"newbie": "contributor"}),
        "change_role": lambda: membership_form(world, role={"victor": "editor"}),
        "remove_member": lambda: membership_form(world, remove={"victor"}),
    }[action]()
    return client.post(f"{BLOG_ADMIN}{blog.pk}/change/", form)


def make_staff(user) -> None:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="liveblog"))


@pytest.mark.django_db
@pytest.mark.parametrize("action, actor, as_staff, outcome", ADMIN_CASES)
def test_admin(world, action, actor, as_staff, outcome):
    client = Client()
    if actor != ANONYMOUS:
        if as_staff:
            make_staff(world.users[actor])
        client.force_login(world.users[actor])
    before = fingerprint()
    response = admin_request(world, client, action)
    assert response.status_code < 500
    if outcome == LOGIN:
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert fingerprint() == before
    elif outcome == REFUSED:
        assert fingerprint() == before, "a refused admin write changed something"
    else:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert fingerprint() != before
        _admin_outcome_is_right(world, action, actor)


def _admin_outcome_is_right(world: World, action: str, actor: str) -> None:
    if action == "add_post":
        made_post = Post.objects.filter(body="Via the admin").exists()
        made_submission = Submission.objects.filter(body="Via the admin").exists()
        assert (made_post, made_submission) == (
            (False, True) if actor in (CONTRIBUTOR, OTHER) else (True, False))
    elif action == "add_member":
        assert Membership.objects.get(blog=world.blog, user=world.users["newbie"]).role == (
            "contributor")
    elif action == "change_role":
        assert Membership.objects.get(blog=world.blog, user=world.users["victor"]).role == (
            "editor")
    elif action == "remove_member":
        assert not Membership.objects.filter(blog=world.blog, user=world.users["victor"]).exists()


@pytest.mark.django_db
def test_admin_a_contributors_post_goes_to_the_desk_and_says_so(world):
    make_staff(world.users[CONTRIBUTOR])
    client = Client()
    client.force_login(world.users[CONTRIBUTOR])
    before = fingerprint()
    response = client.post(POST_ADMIN + "add/", {"blog": str(world.blog.pk), "body": "Via admin"},
                           follow=True)
    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    submission = Submission.objects.get(body="Via admin")
    assert any(f"submission #{submission.pk}" in m and "desk" in m for m in messages), messages
    after = fingerprint()
    assert (after["posts"], after["events"]) == (before["posts"], before["events"])


@pytest.mark.django_db
def test_admin_refused_role_changes_are_messages(world):
    """The owner's own row, and a disabled account: the service refuses, the admin says why,
    and nothing of the save is kept."""
    superuser = world.users[SUPERUSER]
    client = Client()
    client.force_login(superuser)
    Membership.objects.create(blog=world.blog, user=world.users[OWNER], role="editor")
    world.users["newbie"].is_active = False
    world.users["newbie"].save()
    for form in (membership_form(world, role={"olga": "contributor"}),
                 membership_form(world, add={"newbie": "editor"}),
                 {**membership_form(world, add={"newbie": "editor"}), "title": "Renamed"}):
        before = fingerprint()
        response = client.post(f"{BLOG_ADMIN}{world.blog.pk}/change/", form, follow=True)
        assert response.status_code == 200
        assert fingerprint() == before
        messages = [str(message) for message in response.context["messages"]]
        assert any("owner" in m or "disabled" in m for m in messages), messages
    assert Blog.objects.get(pk=world.blog.pk).title == "The desk"


# --- The management commands --------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def username_of(actor: str) -> str:
    return "nobody" if actor == ANONYMOUS else USERNAMES[actor]


# The outcome of each command run as each actor: an output fragment, or the CommandError's code.
CLI_MATRIX = {
    "post": {ANONYMOUS: "no user", STRANGER: "forbidden", CONTRIBUTOR: "submitted to the desk",
             OTHER: "submitted to the desk", EDITOR: "as seq 2", OWNER: "as seq 2",
             STAFF: "forbidden", SUPERUSER: "as seq 2"},
    "schedule": {ANONYMOUS: "no user", STRANGER: "forbidden", CONTRIBUTOR: "forbidden",
                 OTHER: "forbidden", EDITOR: "scheduled for", OWNER: "scheduled for",
                 STAFF: "forbidden", SUPERUSER: "scheduled for"},
    "set_member": {ANONYMOUS: "no such user", STRANGER: "forbidden", CONTRIBUTOR: "forbidden",
                   OTHER: "forbidden", EDITOR: "forbidden", OWNER: "victor is editor",
                   STAFF: "victor is editor", SUPERUSER: "victor is editor"},
    "remove_member": {ANONYMOUS: "no such user", STRANGER: "forbidden",
                      CONTRIBUTOR: "forbidden", OTHER: "forbidden", EDITOR: "forbidden",
                      OWNER: "victor removed", STAFF: "victor removed",
                      SUPERUSER: "victor removed"},
}
REFUSALS = {"no user", "no such user", "forbidden"}
CLI_CASES = [
    pytest.param(action, actor, outcome, id=f"{action}-{actor}")
    for action, outcomes in CLI_MATRIX.items() for actor, outcome in outcomes.items()
]


def cli(action: str, actor: str) -> str:
    who = username_of(actor)
    if action == "post":
        return run("liveblog_post", SLUG, who, "From the command line")
    if action == "schedule":
        return run("liveblog_post", SLUG, who, "Later", "--publish-at", in_an_hour())
    if action == "set_member":
        return run("liveblog_member", SLUG, "victor", "--role", "editor", "--as", who)
    return run("liveblog_member", SLUG, "victor", "--remove", "--as", who)


@pytest.mark.django_db
@pytest.mark.parametrize("action, actor, outcome", CLI_CASES)
def test_cli(world, action, actor, outcome):
    before = fingerprint()
    if outcome in REFUSALS:
        with pytest.raises(CommandError, match=outcome):
            cli(action, actor)
        assert fingerprint() == before
        return
    assert outcome in cli(action, actor)
    assert fingerprint() != before
    if outcome == "submitted to the desk":
        after = fingerprint()
        assert (after["posts"], after["events"]) == (before["posts"], before["events"])


@pytest.mark.django_db
def test_http_a_contributor_cannot_change_even_their_own_published_post(world):
    """Published, it is the blog's: a correction goes to the desk as a new submission."""
    post_id = services.submission_publish(
        actor=world.users[EDITOR], blog_id=world.blog.pk, submission_id=world.submission_id,
    ).data["id"]
    assert Post.objects.get(pk=post_id).author == world.users[CONTRIBUTOR]
    client = client_of(world, CONTRIBUTOR)
    token = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    before = fingerprint()
    patch = client.patch(f"{API}posts/{post_id}", data=json.dumps({"body": "x"}),
                         content_type="application/json", **token)
    delete = client.delete(f"{API}posts/{post_id}", **token)
    assert (patch.status_code, delete.status_code) == (403, 403)
    assert fingerprint() == before
