"""The desk's HTTP API (README, "The desk"): every endpoint's answers and shapes, wrong states
(409), unknown things (404), bad input (400), idempotent retries, and the contributor's `post`
frame on the public websocket. Who may do what is tests/test_desk_permissions.py."""

import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from liveblog import services
from liveblog.models import (
    Blog,
    DeskEvent,
    DeskStream,
    Event,
    Membership,
    Photo,
    Post,
    Submission,
)
from tests.support.comms import Reader

SLUG = "final"
API = f"/api/liveblog/{SLUG}/"
POSTS = API + "posts"
DESK = API + "desk"
MEMBERS = API + "members"
SUBMISSION_KEYS = {
    "id", "client_id", "author", "body", "html", "created_at", "updated_at", "pinned",
    "key_event", "photo", "state", "note", "publish_at", "post_id", "seq", "history",
}
POST_KEYS = {
    "id", "client_id", "author", "body", "html", "created_at", "edited_at", "pinned",
    "key_event", "photo",
}


# --- Helpers ----------------------------------------------------------------------------------


def submission_url(submission_id, action="", *, base="submissions"):
    return f"{API}{base}/{submission_id}" + (f"/{action}" if action else "")


def send(client, method, url, data=None):
    body = data if isinstance(data, str | bytes) else (None if data is None else json.dumps(data))
    call = getattr(client, method.lower())
    if body is None and method in ("GET", "DELETE"):
        return call(url)
    return call(url, data=body or b"", content_type="application/json")


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def new_post(**fields):
    return {"client_id": str(uuid.uuid4()), "body": "From the touchline", **fields}


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"error", "detail"} and data["detail"]
    if code is not None:
        assert data["error"] == code, data
    return data


def desk_answer(response, status, state=None):
    """A `{"seq": null, "post": <submission>}` answer."""
    assert response.status_code == status, response.content
    data = response.json()
    assert set(data) == {"seq", "post"} and data["seq"] is None
    assert set(data["post"]) == SUBMISSION_KEYS
    if state is not None:
        assert data["post"]["state"] == state
    return data["post"]


def in_an_hour():
    return datetime.now(UTC) + timedelta(hours=1)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def counts():
    return (Post.objects.count(), Event.objects.count(), DeskEvent.objects.count(),
            Submission.objects.count(), Photo.objects.count())


def jpeg(size=(640, 480)):
    data = io.BytesIO()
    Image.new("RGB", size, "navy").save(data, "JPEG")
    return data.getvalue()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def contributor(django_user_model, blog):
    user = django_user_model.objects.create_user("carl", first_name="Carl", last_name="Cole")
    Membership.objects.create(blog=blog, user=user, role="contributor")
    return user


@pytest.fixture
def other_contributor(django_user_model, blog):
    user = django_user_model.objects.create_user("dora")
    Membership.objects.create(blog=blog, user=user, role="contributor")
    return user


@pytest.fixture
def carl(contributor):
    return signed_in(contributor)


@pytest.fixture
def editor(author, blog):
    """alice: conftest's author, an editor (blog.authors.add makes editors)."""
    return signed_in(author)


@pytest.fixture
def submit(blog, contributor):
    def make(body="From the touchline", *, actor=None, **fields):
        written = services.post_create(
            actor=actor or contributor, blog_id=blog.pk, client_id=uuid.uuid4(), body=body,
            **fields,
        )
        assert written.desk
        return written.data["id"]

    return make


# --- POST …/posts: 202 when it goes to the desk ----------------------------------------------


@pytest.mark.django_db
def test_a_contributors_post_is_answered_202_with_the_submission(carl, blog, contributor):
    request = new_post(body="**Goal** for the visitors", key_event=True)
    submission = desk_answer(send(carl, "POST", POSTS, request), 202, "submitted")
    assert submission["client_id"] == request["client_id"]
    assert submission["author"] == {"username": "carl", "name": "Carl Cole"}
    assert submission["html"] == "<p><strong>Goal</strong> for the visitors</p>"
    assert submission["key_event"] is True and submission["post_id"] is None
    assert [step["action"] for step in submission["history"]] == ["submitted"]
    assert not Post.objects.exists() and not Event.objects.exists()
    assert Blog.objects.get(pk=blog.pk).head == 0
    streams = {s.audience: s.head for s in DeskStream.objects.filter(blog=blog)}
    assert streams == {"editors": 1, f"user:{contributor.pk}": 1}


@pytest.mark.django_db
def test_a_retried_submission_answers_202_with_the_submission_as_it_is_now(carl, blog,
                                                                            contributor):
    request = new_post(body="first words")
    first = desk_answer(send(carl, "POST", POSTS, request), 202)
    services.submission_revise(actor=contributor, blog_id=blog.pk, submission_id=first["id"],
                               body="revised words")
    before = counts()
    again = desk_answer(send(carl, "POST", POSTS, request), 202, "submitted")
    assert again["id"] == first["id"] and again["body"] == "revised words"
    assert counts() == before


@pytest.mark.django_db
def test_a_retried_multipart_submission_with_a_photo_stores_it_once(carl, blog):
    form = {"client_id": str(uuid.uuid4()), "body": "", "photo_alt": "The away end"}
    first = carl.post(POSTS, {**form, "photo": SimpleUploadedFile("p.jpg", jpeg(), "image/jpeg")})
    submission = desk_answer(first, 202, "submitted")
    assert submission["photo"]["alt"] == "The away end"
    assert Photo.objects.count() == 1
    before = counts()
    again = carl.post(POSTS, {**form, "photo": SimpleUploadedFile("p.jpg", jpeg(), "image/jpeg")})
    assert desk_answer(again, 202) == submission
    assert counts() == before


@pytest.mark.django_db
def test_a_submission_published_since_is_retried_as_the_post(carl, author, blog):
    request = new_post()
    submission = desk_answer(send(carl, "POST", POSTS, request), 202)
    services.submission_publish(actor=author, blog_id=blog.pk, submission_id=submission["id"])
    again = send(carl, "POST", POSTS, request)
    assert again.status_code == 200
    assert again.json()["seq"] == 1 and again.json()["post"]["client_id"] == request["client_id"]


@pytest.mark.django_db
def test_an_editor_with_a_future_publish_at_schedules_202(editor, blog):
    at = in_an_hour().replace(microsecond=0)
    submission = desk_answer(
        send(editor, "POST", POSTS, new_post(publish_at=at.isoformat())), 202, "scheduled")
    assert submission["publish_at"] == iso(at.replace(microsecond=0)).replace("Z", ".000Z")
    assert [step["action"] for step in submission["history"]] == ["submitted", "scheduled"]
    assert not Post.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db
def test_publish_at_with_another_zone_is_the_same_moment(editor):
    at = in_an_hour().replace(microsecond=0)
    paris = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert paris.endswith("+02:00")
    offset = send(editor, "POST", POSTS, new_post(publish_at=at.strftime(
        "%Y-%m-%dT%H:%M:%S") + "+00:00"))
    assert desk_answer(offset, 202)["publish_at"] == iso(at).replace("Z", ".000Z")
    other = send(editor, "POST", POSTS, new_post(publish_at=paris))
    assert desk_answer(other, 202)["publish_at"] == iso(at).replace("Z", ".000Z")


@pytest.mark.django_db
def test_a_past_publish_at_publishes_now_201(editor, blog):
    past = iso(datetime.now(UTC) - timedelta(minutes=5))
    response = send(editor, "POST", POSTS, new_post(publish_at=past))
    assert response.status_code == 201
    assert response.json()["seq"] == 1 and set(response.json()["post"]) == POST_KEYS


@pytest.mark.django_db
def test_a_multipart_post_with_publish_at_is_scheduled(editor):
    form = {"client_id": str(uuid.uuid4()), "body": "At half-time",
            "publish_at": iso(in_an_hour())}
    desk_answer(editor.post(POSTS, form), 202, "scheduled")
    blank = editor.post(POSTS, {**form, "client_id": str(uuid.uuid4()), "publish_at": ""})
    assert blank.status_code == 201  # an empty time field means now


BAD_TIMES = [
    "2026-12-01T18:30:00",  # no zone: refused, not guessed
    "tomorrow",
    "",
    "2026-13-01T18:30:00Z",
    "9" * 100,
    "２０２６-12-01T18:30:00Z",
    5,
    True,
    ["2026-12-01T18:30:00Z"],
]


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_TIMES, ids=repr)
def test_a_bad_publish_at_is_400_and_writes_nothing(editor, value):
    assert_error(send(editor, "POST", POSTS, new_post(publish_at=value)), 400, "invalid")
    assert counts() == (0, 0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2026-12-01T18:30:00", "soon"])
def test_a_bad_multipart_publish_at_is_400(editor, value):
    response = editor.post(POSTS, {"client_id": str(uuid.uuid4()), "body": "x",
                                   "publish_at": value})
    assert_error(response, 400, "invalid")
    assert counts() == (0, 0, 0, 0, 0)


@pytest.mark.django_db
def test_publish_at_more_than_a_year_ahead_is_400(editor):
    far = iso(datetime.now(UTC) + timedelta(days=400))
    assert_error(send(editor, "POST", POSTS, new_post(publish_at=far)), 400, "invalid")
    assert counts() == (0, 0, 0, 0, 0)


@pytest.mark.django_db
def test_a_contributor_cannot_schedule(carl):
    response = send(carl, "POST", POSTS, new_post(publish_at=iso(in_an_hour())))
    assert_error(response, 403, "forbidden")
    assert counts() == (0, 0, 0, 0, 0)


# --- GET …/desk -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_desk_of_an_editor_holds_every_submission(editor, blog, submit, other_contributor):
    first = submit("one")
    second = submit("two", actor=other_contributor)
    response = editor.get(DESK)
    assert response.status_code == 200
    data = response.json()
    stream = DeskStream.objects.get(blog=blog, audience="editors")
    assert set(data) == {"role", "epoch", "head", "submissions"}
    assert (data["role"], data["epoch"], data["head"]) == ("editor", stream.epoch, 2)
    assert [item["id"] for item in data["submissions"]] == [first, second]
    assert all(set(item) == SUBMISSION_KEYS for item in data["submissions"])


@pytest.mark.django_db
def test_the_desk_of_a_contributor_holds_only_their_own(carl, contributor, other_contributor,
                                                         submit, blog):
    mine = submit("mine")
    submit("theirs", actor=other_contributor)
    data = carl.get(DESK).json()
    stream = DeskStream.objects.get(blog=blog, audience=f"user:{contributor.pk}")
    assert (data["role"], data["epoch"], data["head"]) == ("contributor", stream.epoch, 1)
    assert [item["id"] for item in data["submissions"]] == [mine]


@pytest.mark.django_db
def test_the_desk_of_the_owner_says_owner_and_an_empty_desk_is_head_0(owner, blog):
    data = signed_in(owner).get(DESK).json()
    assert (data["role"], data["head"], data["submissions"]) == ("owner", 0, [])


@pytest.mark.django_db
def test_the_desk_is_not_public(client, stranger, blog):
    assert_error(client.get(DESK), 401, "not_authenticated")
    assert_error(signed_in(stranger).get(DESK), 403, "forbidden")
    assert_error(signed_in(stranger).get("/api/liveblog/nope/desk"), 404, "not_found")


# --- GET/PATCH/DELETE …/submissions/<id> ------------------------------------------------------


@pytest.mark.django_db
def test_get_a_submission(carl, editor, submit):
    submission_id = submit("mine")
    for client in (carl, editor):
        assert desk_answer(client.get(submission_url(submission_id)), 200)["id"] == submission_id


@pytest.mark.django_db
def test_get_a_submission_refused_or_unknown(client, submit, other_contributor, stranger, blog,
                                             owner, editor):
    submission_id = submit()
    url = submission_url(submission_id)
    assert_error(client.get(url), 401, "not_authenticated")
    assert_error(signed_in(stranger).get(url), 403, "forbidden")
    assert_error(signed_in(other_contributor).get(url), 403, "forbidden")
    assert_error(editor.get(submission_url(submission_id + 1000)), 404, "not_found")
    services.blog_create(actor=owner, slug="other", title="Other")
    assert_error(signed_in(owner).get(f"/api/liveblog/other/submissions/{submission_id}"),
                 404, "not_found")


@pytest.mark.django_db
def test_the_author_revises_a_submission(carl, submit):
    submission_id = submit("typo")
    answer = send(carl, "PATCH", submission_url(submission_id), {"body": "fixed", "pinned": True})
    submission = desk_answer(answer, 200, "submitted")
    assert (submission["body"], submission["html"], submission["pinned"]) == (
        "fixed", "<p>fixed</p>", True)
    assert submission["history"][-1]["action"] == "revised"


@pytest.mark.django_db
def test_a_returned_submission_revised_waits_again(carl, author, blog, submit):
    submission_id = submit("first try")
    services.submission_return(actor=author, blog_id=blog.pk, submission_id=submission_id,
                               note="Name the scorer")
    answer = send(carl, "PATCH", submission_url(submission_id), {"body": "Kane scores"})
    submission = desk_answer(answer, 200, "submitted")
    assert submission["note"] == ""


@pytest.mark.django_db
def test_an_editor_edits_a_submission(editor, submit):
    submission_id = submit("raw")
    answer = send(editor, "PATCH", submission_url(submission_id), {"body": "polished"})
    submission = desk_answer(answer, 200, "submitted")
    assert submission["body"] == "polished"
    assert submission["history"][-1] == {**submission["history"][-1], "action": "edited",
                                         "by": {"username": "alice", "name": "Alice Author"}}


@pytest.mark.django_db
def test_a_revision_without_change_numbers_nothing(carl, submit):
    submission_id = submit("same")
    before = counts()
    desk_answer(send(carl, "PATCH", submission_url(submission_id), {"body": "same"}), 200)
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("body, code", [
    ({"body": "   "}, "invalid"),
    ({"body": 5}, "invalid"),
    ({"pinned": "yes"}, "invalid"),
    ({"state": "published"}, "invalid"),
    ({"publish_at": "2030-01-01T00:00:00Z"}, "invalid"),
    ("[1, 2]", "bad_json"),
    ("{", "bad_json"),
])
def test_bad_revisions_are_400(carl, submit, body, code):
    submission_id = submit("keep me")
    before = counts()
    assert_error(send(carl, "PATCH", submission_url(submission_id), body), 400, code)
    assert counts() == before
    assert Submission.objects.get(pk=submission_id).body == "keep me"


@pytest.mark.django_db
def test_a_published_submission_can_no_longer_be_revised_or_withdrawn(carl, author, blog, submit):
    submission_id = submit()
    services.submission_publish(actor=author, blog_id=blog.pk, submission_id=submission_id)
    before = counts()
    assert_error(send(carl, "PATCH", submission_url(submission_id), {"body": "x"}), 409,
                 "conflict")
    assert_error(send(carl, "DELETE", submission_url(submission_id)), 409, "conflict")
    assert counts() == before


@pytest.mark.django_db
def test_withdraw_then_withdraw_again(carl, submit):
    submission_id = submit()
    first = desk_answer(send(carl, "DELETE", submission_url(submission_id)), 200, "withdrawn")
    before = counts()
    again = desk_answer(send(carl, "DELETE", submission_url(submission_id)), 200, "withdrawn")
    assert again == first
    assert counts() == before


@pytest.mark.django_db
def test_an_unknown_submission_is_404(carl, editor):
    for client in (carl, editor):
        assert_error(send(client, "PATCH", submission_url(99), {"body": "x"}), 404, "not_found")
        assert_error(send(client, "DELETE", submission_url(99)), 404, "not_found")
    assert_error(send(editor, "POST", submission_url(99, "publish")), 404, "not_found")
    assert_error(send(editor, "POST", submission_url(99, "return"), {"note": "x"}), 404,
                 "not_found")
    assert_error(send(editor, "POST", "/api/liveblog/nope/submissions/1/publish"), 404,
                 "not_found")


# --- POST …/publish ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("base", ["submissions", "posts"])
def test_publish_answers_200_with_the_public_post_and_its_seq(editor, blog, submit, base):
    submission_id = submit("**Red card**")
    response = send(editor, "POST", submission_url(submission_id, "publish", base=base))
    assert response.status_code == 200, response.content
    data = response.json()
    post = Post.objects.get()
    assert data["seq"] == 1 and set(data["post"]) == POST_KEYS
    assert data["post"]["id"] == post.pk and data["post"]["author"]["username"] == "carl"
    assert data["post"]["html"] == "<p><strong>Red card</strong></p>"
    assert json.loads(Event.objects.get(blog=blog, seq=1).frame)["post"] == data["post"]
    submission = Submission.objects.get(pk=submission_id)
    assert (submission.state, submission.post_id, submission.published_seq) == (
        "published", post.pk, 1)


@pytest.mark.django_db
def test_a_second_publish_answers_200_with_the_first_seq(editor, owner, blog, submit):
    submission_id = submit()
    first = send(editor, "POST", submission_url(submission_id, "publish"))
    before = counts()
    again = send(signed_in(owner), "POST", submission_url(submission_id, "publish"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert counts() == before


@pytest.mark.django_db
def test_publish_with_the_editors_changes(editor, submit):
    submission_id = submit("raw copy")
    response = send(editor, "POST", submission_url(submission_id, "publish"),
                    {"body": "Clean copy", "key_event": True, "pinned": True})
    post = response.json()["post"]
    assert (post["body"], post["key_event"], post["pinned"]) == ("Clean copy", True, True)
    actions = list(Submission.objects.get(pk=submission_id).actions.values_list("action",
                                                                                 flat=True))
    assert actions == ["submitted", "edited", "published"]


@pytest.mark.django_db
def test_publish_at_a_future_time_schedules_202_and_the_scheduler_publishes_it(
        editor, blog, submit):
    submission_id = submit()
    at = in_an_hour()
    submission = desk_answer(
        send(editor, "POST", submission_url(submission_id, "publish"), {"publish_at": iso(at)}),
        202, "scheduled")
    assert submission["publish_at"] is not None
    assert not Post.objects.exists()
    assert services.submissions_publish_due() == []
    published = services.submissions_publish_due(now=at + timedelta(seconds=1))
    assert [written.seq for written in published] == [1]
    assert Submission.objects.get(pk=submission_id).state == "published"


@pytest.mark.django_db
@pytest.mark.parametrize("body, code", [
    ({"publish_at": "2026-12-01T18:30:00"}, "invalid"),
    ({"publish_at": "later"}, "invalid"),
    ({"body": ""}, "invalid"),
    ({"note": "x"}, "invalid"),
    ("nope", "bad_json"),
])
def test_bad_publish_requests_are_400(editor, submit, body, code):
    submission_id = submit()
    before = counts()
    assert_error(send(editor, "POST", submission_url(submission_id, "publish"), body), 400, code)
    assert counts() == before
    assert Submission.objects.get(pk=submission_id).state == "submitted"


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["withdrawn"])
def test_publishing_a_withdrawn_submission_is_409(editor, carl, submit, state):
    submission_id = submit()
    send(carl, "DELETE", submission_url(submission_id))
    before = counts()
    assert_error(send(editor, "POST", submission_url(submission_id, "publish")), 409, "conflict")
    assert counts() == before


# --- POST …/return ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("base", ["submissions", "posts"])
def test_return_with_a_note(editor, submit, base):
    submission_id = submit()
    response = send(editor, "POST", submission_url(submission_id, "return", base=base),
                    {"note": "  Which minute?  "})
    submission = desk_answer(response, 200, "returned")
    assert submission["note"] == "Which minute?"
    assert submission["history"][-1]["action"] == "returned"
    assert submission["history"][-1]["note"] == "Which minute?"


@pytest.mark.django_db
@pytest.mark.parametrize("body, code", [
    ({}, "invalid"),
    ({"note": ""}, "invalid"),
    ({"note": "   "}, "invalid"),
    ({"note": None}, "invalid"),
    ({"note": 7}, "invalid"),
    ({"note": "x" * 501}, "too_long"),
    ({"note": "a\x00b"}, "invalid"),
    ({"note": "ok", "body": "x"}, "invalid"),
    (None, "bad_json"),
])
def test_bad_notes_are_400(editor, submit, body, code):
    submission_id = submit()
    before = counts()
    assert_error(send(editor, "POST", submission_url(submission_id, "return"),
                      body if body is not None else b""), 400, code)
    assert counts() == before
    assert Submission.objects.get(pk=submission_id).state == "submitted"


@pytest.mark.django_db
def test_a_note_of_500_characters_is_accepted(editor, submit):
    submission_id = submit()
    response = send(editor, "POST", submission_url(submission_id, "return"), {"note": "n" * 500})
    assert desk_answer(response, 200, "returned")["note"] == "n" * 500


@pytest.mark.django_db
def test_returning_in_a_wrong_state_is_409(editor, submit):
    submission_id = submit()
    send(editor, "POST", submission_url(submission_id, "return"), {"note": "once"})
    before = counts()
    assert_error(send(editor, "POST", submission_url(submission_id, "return"), {"note": "twice"}),
                 409, "conflict")
    send(editor, "POST", submission_url(submit(), "publish"))
    published = Submission.objects.get(state="published").pk
    assert_error(send(editor, "POST", submission_url(published, "return"), {"note": "late"}),
                 409, "conflict")
    assert counts()[1:3] == (before[1] + 1, before[2] + 4)  # only the publish was written


@pytest.mark.django_db
def test_wrong_methods_are_405(editor, submit):
    submission_id = submit()
    for method, url in [("GET", submission_url(submission_id, "publish")),
                        ("PUT", submission_url(submission_id)),
                        ("POST", DESK), ("POST", MEMBERS),
                        ("GET", MEMBERS + "/alice")]:
        response = send(editor, method, url)
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"]


# --- Members ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_members_list_owner_first(owner, blog, contributor):
    response = signed_in(owner).get(MEMBERS)
    assert response.status_code == 200
    assert response.json() == {"members": [
        {"username": "olivia", "name": "Olivia Owner", "role": "owner"},
        {"username": "alice", "name": "Alice Author", "role": "editor"},
        {"username": "carl", "name": "Carl Cole", "role": "contributor"},
    ]}


@pytest.mark.django_db
def test_put_a_member_sets_their_role(owner, blog, stranger, contributor):
    client = signed_in(owner)
    response = send(client, "PUT", f"{MEMBERS}/sam", {"role": "contributor"})
    assert response.status_code == 200
    assert response.json() == {"username": "sam", "name": "sam", "role": "contributor"}
    assert Membership.objects.get(blog=blog, user=stranger).added_by == owner
    promoted = send(client, "PUT", f"{MEMBERS}/carl", {"role": "editor"})
    assert promoted.json()["role"] == "editor"
    assert Membership.objects.get(blog=blog, user=contributor).role == "editor"
    again = send(client, "PUT", f"{MEMBERS}/carl", {"role": "editor"})
    assert again.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("username, body, status, code", [
    ("nobody", {"role": "editor"}, 404, "not_found"),
    ("sam", {"role": "owner"}, 400, "invalid"),
    ("sam", {"role": "admin"}, 400, "invalid"),
    ("sam", {"role": 1}, 400, "invalid"),
    ("sam", {}, 400, "invalid"),
    ("sam", {"role": "editor", "extra": 1}, 400, "invalid"),
    ("sam", "[]", 400, "bad_json"),
    ("olivia", {"role": "contributor"}, 400, "invalid"),  # the owner is the owner
])
def test_bad_member_changes(owner, blog, stranger, username, body, status, code):
    before = list(Membership.objects.values_list("user_id", "role"))
    assert_error(send(signed_in(owner), "PUT", f"{MEMBERS}/{username}", body), status, code)
    assert list(Membership.objects.values_list("user_id", "role")) == before


@pytest.mark.django_db
def test_a_disabled_account_cannot_be_given_a_role(owner, blog, stranger):
    stranger.is_active = False
    stranger.save()
    assert_error(send(signed_in(owner), "PUT", f"{MEMBERS}/sam", {"role": "editor"}), 400,
                 "invalid")
    assert not Membership.objects.filter(user=stranger).exists()


@pytest.mark.django_db
def test_delete_a_member_is_204_and_their_submissions_stay(owner, blog, contributor, submit):
    submission_id = submit()
    client = signed_in(owner)
    response = send(client, "DELETE", f"{MEMBERS}/carl")
    assert response.status_code == 204 and response.content == b""
    assert not Membership.objects.filter(blog=blog, user=contributor).exists()
    assert Submission.objects.filter(pk=submission_id).exists()
    assert send(client, "DELETE", f"{MEMBERS}/carl").status_code == 204  # again: the same
    assert_error(send(client, "DELETE", f"{MEMBERS}/nobody"), 404, "not_found")
    assert_error(send(client, "DELETE", f"{MEMBERS}/olivia"), 400, "invalid")
    assert [m["username"] for m in client.get(MEMBERS).json()["members"]] == ["olivia", "alice"]


@pytest.mark.django_db
def test_a_removed_contributor_loses_the_desk(owner, carl, submit):
    submission_id = submit()
    send(signed_in(owner), "DELETE", f"{MEMBERS}/carl")
    assert_error(carl.get(DESK), 403, "forbidden")
    assert_error(carl.get(submission_url(submission_id)), 403, "forbidden")
    assert_error(send(carl, "DELETE", submission_url(submission_id)), 403, "forbidden")


@pytest.mark.django_db
def test_members_are_for_the_owner_and_staff(client, author, stranger, blog):
    assert_error(client.get(MEMBERS), 401, "not_authenticated")
    assert_error(signed_in(author).get(MEMBERS), 403, "forbidden")
    # Refused before the account is looked up: an unknown name is no different.
    for username in ("sam", "nobody"):
        assert_error(send(signed_in(author), "PUT", f"{MEMBERS}/{username}",
                          {"role": "editor"}), 403, "forbidden")
    assert_error(signed_in(stranger).get("/api/liveblog/nope/members"), 404, "not_found")


# --- The public websocket's `post` frame ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_contributors_post_frame_is_acked_with_seq_null_and_the_submission(
        blog, contributor):
    reader = await Reader.open(blog.slug, "?since=0", user=contributor)
    await reader.expect("hello")
    await reader.events_until_live()
    client_id = str(uuid.uuid4())
    await reader.send({"type": "post", "client_id": client_id, "body": "From the stands"})
    ack = await reader.expect("ack")
    assert ack["client_id"] == client_id and ack["seq"] is None
    assert set(ack["post"]) == SUBMISSION_KEYS and ack["post"]["state"] == "submitted"
    await reader.send({"type": "post", "client_id": client_id, "body": "From the stands"})
    retry = await reader.expect("ack")
    assert (retry["seq"], retry["post"]["id"]) == (None, ack["post"]["id"])
    assert await reader.silent()  # no public event
    await reader.close()
    assert await database_sync_to_async(Post.objects.count)() == 0
    assert await database_sync_to_async(Submission.objects.count)() == 1


@pytest.mark.django_db(transaction=True)
async def test_an_editors_post_frame_with_publish_at_is_scheduled(blog, author):
    reader = await Reader.open(blog.slug, "?since=0", user=author)
    await reader.expect("hello")
    await reader.events_until_live()
    await reader.send({"type": "post", "client_id": str(uuid.uuid4()), "body": "Later",
                       "publish_at": iso(in_an_hour())})
    ack = await reader.expect("ack")
    assert ack["seq"] is None and ack["post"]["state"] == "scheduled"
    await reader.send({"type": "post", "client_id": str(uuid.uuid4()), "body": "x",
                       "publish_at": "2026-12-01T10:00:00"})
    assert (await reader.expect("error"))["code"] == "invalid"
    assert await reader.silent()
    await reader.close()
    assert await database_sync_to_async(Post.objects.count)() == 0


@pytest.mark.django_db
def test_a_form_sent_to_a_json_endpoint_is_400_not_a_server_error(editor, owner, submit):
    """A multipart body is parsed (and read) for the CSRF check before the view asks for JSON;
    that was a 500 (RawPostDataException) before, on every JSON write."""
    submission_id = submit()
    before = counts()
    for url in (submission_url(submission_id, "return"), submission_url(submission_id, "publish")):
        assert_error(editor.post(url, {"note": "as a form"}), 400, "bad_json")
    assert_error(signed_in(owner).post("/api/liveblog/", {"slug": "x", "title": "X"}), 400,
                 "bad_json")
    assert counts() == before


# --- The desk stays with the people it belongs to ---------------------------------------------
# A client_id another contributor copies or guesses reveals nothing of the submission behind
# it, and no cache (a proxy's, or the browser's on a shared phone) keeps an answer that carries
# the desk.

PRIVATE = "private, no-store"


def create_json(client, client_id, body):
    return client.post(POSTS, data=json.dumps({"client_id": client_id, "body": body}),
                       content_type="application/json")


@pytest.mark.django_db
def test_another_contributors_client_id_reveals_nothing(carl, other_contributor, editor):
    client_id = str(uuid.uuid4())
    assert create_json(carl, client_id, "Secret line-up").status_code == 202
    submission = Submission.objects.get(client_id=client_id)
    editor.post(submission_url(submission.pk, "return"), data=json.dumps({"note": "Source?"}),
                content_type="application/json")

    copied = create_json(signed_in(other_contributor), client_id, "anything")
    assert copied.status_code == 409 and copied.json()["error"] == "conflict"
    assert b"Secret" not in copied.content and b"Source?" not in copied.content
    assert Submission.objects.count() == 1  # and nothing new was made

    retried = create_json(carl, client_id, "Secret line-up")  # its author's retry still answers
    assert retried.status_code == 202 and retried.json()["post"]["note"] == "Source?"
    # An editor sees the whole desk anyway: the same retry answer.
    assert create_json(editor, client_id, "x").json()["post"]["id"] == submission.pk


@pytest.mark.django_db
def test_answers_that_carry_the_desk_are_kept_by_no_cache(carl, editor, blog):
    made = create_json(carl, str(uuid.uuid4()), "Half-time thoughts")
    submission_id = made.json()["post"]["id"]
    answers = {
        "202 create": made,
        "desk": carl.get(DESK),
        "submission": carl.get(submission_url(submission_id)),
        "revise": carl.patch(submission_url(submission_id), data=json.dumps({"body": "Better"}),
                             content_type="application/json"),
        "return": editor.post(submission_url(submission_id, "return"),
                              data=json.dumps({"note": "Shorter"}),
                              content_type="application/json"),
        "schedule": editor.post(
            submission_url(submission_id, "publish"),
            data=json.dumps({"publish_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}),
            content_type="application/json",
        ),
        "members": signed_in(blog.owner).get(MEMBERS),
    }
    for name, response in answers.items():
        assert response.status_code in (200, 202), (name, response.content)
        assert response["Cache-Control"] == PRIVATE, name
    # A public answer is not marked so: readers' API answers are public data.
    assert PRIVATE not in editor.get(API).get("Cache-Control", "")
