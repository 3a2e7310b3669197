"""The admin and the management commands write through the same services as the API: every
visible change they make is numbered in the blog's log."""

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client

from liveblog import services
from liveblog.models import Blog, Event, Membership, Post, Submission

POST_ADMIN = "/admin/liveblog/post/"
BLOG_ADMIN = "/admin/liveblog/blog/"


def seqs(blog):
    return list(Event.objects.filter(blog=blog).order_by("seq").values_list("seq", flat=True))


def last_event(blog):
    event = Event.objects.filter(blog=blog).order_by("-seq").first()
    return event, json.loads(event.frame)


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def run(command, *args, **options):
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        "root", email="root@example.com", password="root-password"
    )


@pytest.fixture
def admin_client(superuser):
    return signed_in(superuser)


@pytest.fixture
def staff_not_author(django_user_model):
    """Staff with every liveblog permission, but not an author of any blog."""
    user = django_user_model.objects.create_user("steve", password="steve-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="liveblog"))
    return user


def post_form(blog, body, *, pinned=False, key_event=False):
    data = {"blog": str(blog.pk), "body": body}
    if pinned:
        data["pinned"] = "on"
    if key_event:
        data["key_event"] = "on"
    return data


def post_change_form(body, *, pinned=False, key_event=False):
    data = {"body": body}
    if pinned:
        data["pinned"] = "on"
    if key_event:
        data["key_event"] = "on"
    return data


def blog_change_form(blog, *, delete_members=(), **changes):
    """The blog's change form as the admin renders it, its people (the Membership inline)
    unchanged unless named in `delete_members`."""
    rows = list(Membership.objects.filter(blog=blog).order_by("id"))
    data = {
        "title": blog.title,
        "description": blog.description,
        "status": blog.status,
        "owner": str(blog.owner_id),
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(len(rows)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"memberships-{index}-id": str(row.pk),
                     f"memberships-{index}-blog": str(blog.pk),
                     f"memberships-{index}-role": row.role})
        if row.user in delete_members:
            data[f"memberships-{index}-DELETE"] = "on"
    data.update(changes)
    return data


def assert_no_server_error(response):
    assert response.status_code < 500


# --- Admin: posts -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_add_post_publishes_with_the_next_seq(admin_client, superuser, blog, make_post):
    make_post("before")  # seq 1
    response = admin_client.post(POST_ADMIN + "add/", post_form(blog, "From the *admin*"))
    assert response.status_code == 302
    post = Post.objects.get(body="From the *admin*")
    assert post.author == superuser
    assert post.html == "<p>From the <em>admin</em></p>"
    assert seqs(blog) == [1, 2]
    event, stored = last_event(blog)
    assert event.kind == "post.created"
    assert event.post == post
    assert stored["post"]["id"] == post.pk
    assert stored["post"]["body"] == "From the *admin*"
    blog.refresh_from_db()
    assert blog.head == 2


@pytest.mark.django_db
def test_admin_add_post_keeps_flags(admin_client, blog):
    admin_client.post(POST_ADMIN + "add/", post_form(blog, "pinned", pinned=True, key_event=True))
    post = Post.objects.get()
    assert post.pinned and post.key_event
    assert last_event(blog)[1]["post"]["pinned"] is True


@pytest.mark.django_db
def test_admin_add_post_with_empty_body_is_a_form_error(admin_client, blog):
    response = admin_client.post(POST_ADMIN + "add/", post_form(blog, "   "))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Post.objects.exists()
    assert seqs(blog) == []


@pytest.mark.django_db
def test_admin_add_post_body_over_the_limit_is_a_form_error(admin_client, blog, settings):
    settings.LIVEBLOG_MAX_BODY_CHARS = 5
    response = admin_client.post(POST_ADMIN + "add/", post_form(blog, "toolong"))
    assert response.status_code == 200
    assert "body" in response.context["adminform"].form.errors
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_admin_change_post_makes_a_post_updated_event(admin_client, blog, make_post):
    post_id = make_post("typo").data["id"]
    response = admin_client.post(
        f"{POST_ADMIN}{post_id}/change/", post_change_form("fixed", pinned=True)
    )
    assert response.status_code == 302
    post = Post.objects.get(pk=post_id)
    assert (post.body, post.html, post.pinned) == ("fixed", "<p>fixed</p>", True)
    assert post.edited_at is not None
    assert seqs(blog) == [1, 2]
    event, stored = last_event(blog)
    assert event.kind == "post.updated"
    assert stored["post"]["body"] == "fixed"
    assert stored["post"]["pinned"] is True


@pytest.mark.django_db
def test_admin_change_post_without_change_takes_no_seq(admin_client, blog, make_post):
    post_id = make_post("same").data["id"]
    response = admin_client.post(f"{POST_ADMIN}{post_id}/change/", post_change_form("same"))
    assert response.status_code == 302
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_admin_delete_post_is_a_tombstone_event(admin_client, blog, make_post):
    post_id = make_post("to go").data["id"]
    response = admin_client.post(f"{POST_ADMIN}{post_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    post = Post.objects.get(pk=post_id)  # the row is kept
    assert post.deleted_at is not None
    assert seqs(blog) == [1, 2]
    event, stored = last_event(blog)
    assert event.kind == "post.deleted"
    assert stored["post"] == {"id": post_id, "deleted": True}


@pytest.mark.django_db
def test_admin_bulk_delete_action_tombstones_each_post(admin_client, blog, make_post):
    ids = [make_post(f"post {n}").data["id"] for n in range(2)]
    response = admin_client.post(
        POST_ADMIN,
        {"action": "delete_selected", "_selected_action": [str(pk) for pk in ids], "post": "yes"},
    )
    assert response.status_code == 302
    assert Post.objects.filter(pk__in=ids, deleted_at__isnull=False).count() == 2
    assert seqs(blog) == [1, 2, 3, 4]
    assert [json.loads(Event.objects.get(blog=blog, seq=seq).frame)["kind"] for seq in (3, 4)] == [
        "post.deleted", "post.deleted",
    ]


@pytest.mark.django_db
def test_admin_change_of_a_deleted_post_is_a_message(admin_client, blog, author, make_post):
    post_id = make_post("gone").data["id"]
    services.post_delete(actor=author, blog_id=blog.pk, post_id=post_id)
    response = admin_client.post(
        f"{POST_ADMIN}{post_id}/change/", post_change_form("back again"), follow=True
    )
    assert_no_server_error(response)
    assert any("no post" in str(message) for message in response.context["messages"])
    assert Post.objects.get(pk=post_id).body == "gone"
    assert seqs(blog) == [1, 2]


@pytest.mark.django_db
def test_admin_post_pages_render(admin_client, blog, make_post):
    post_id = make_post().data["id"]
    assert admin_client.get(POST_ADMIN).status_code == 200
    assert admin_client.get(POST_ADMIN + "add/").status_code == 200
    assert admin_client.get(f"{POST_ADMIN}{post_id}/change/").status_code == 200


@pytest.mark.django_db
def test_staff_not_author_adding_a_post_gets_a_form_error(staff_not_author, blog):
    client = signed_in(staff_not_author)
    response = client.post(POST_ADMIN + "add/", post_form(blog, "not mine to post"))
    assert_no_server_error(response)
    assert response.status_code == 200
    assert "You are not an author of this blog." in response.content.decode()
    assert not Post.objects.exists()
    assert seqs(blog) == []


@pytest.mark.django_db
def test_staff_not_author_changing_a_post_gets_an_error(staff_not_author, blog, make_post):
    post_id = make_post("original").data["id"]
    response = signed_in(staff_not_author).post(
        f"{POST_ADMIN}{post_id}/change/", post_change_form("hijacked")
    )
    assert_no_server_error(response)
    assert Post.objects.get(pk=post_id).body == "original"
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_staff_not_author_deleting_a_post_gets_a_message(staff_not_author, blog, make_post):
    post_id = make_post().data["id"]
    response = signed_in(staff_not_author).post(
        f"{POST_ADMIN}{post_id}/delete/", {"post": "yes"}, follow=True
    )
    assert_no_server_error(response)
    assert Post.objects.get(pk=post_id).deleted_at is None
    assert response.status_code == 200, "refused by the service (a message), not by the admin"
    assert seqs(blog) == [1]
    assert any("author" in str(message) for message in response.context["messages"])


@pytest.mark.django_db
def test_admin_event_log_is_read_only(admin_client, blog, make_post):
    make_post()
    event = Event.objects.get(blog=blog)
    assert admin_client.get("/admin/liveblog/event/").status_code == 200
    assert admin_client.get("/admin/liveblog/event/add/").status_code == 403
    response = admin_client.post(f"/admin/liveblog/event/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


# --- Admin: blogs -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_add_blog_makes_creator_owner_and_author_without_a_seq(admin_client, superuser):
    """People are added once the blog exists (its change page's inline): a new blog has its
    creator, the owner, who services.blog_create also lists as an editor."""
    response = admin_client.post(
        BLOG_ADMIN + "add/", {"slug": "derby", "title": "Derby day", "description": ""},
    )
    assert response.status_code == 302
    blog = Blog.objects.get(slug="derby")
    assert blog.owner == superuser
    assert list(Membership.objects.filter(blog=blog).values_list("user", "role")) == [
        (superuser.pk, "editor")]
    assert blog.head == 0
    assert seqs(blog) == []


@pytest.mark.django_db
def test_admin_add_blog_with_taken_slug_is_a_form_error(admin_client, blog):
    response = admin_client.post(BLOG_ADMIN + "add/", {"slug": "final", "title": "Again"})
    assert_no_server_error(response)
    assert response.status_code == 200
    assert Blog.objects.get(slug="final").title == "Cup final"


@pytest.mark.django_db
def test_admin_change_blog_status_makes_a_blog_updated_event(admin_client, blog, make_post):
    make_post()
    response = admin_client.post(
        f"{BLOG_ADMIN}{blog.pk}/change/", blog_change_form(blog, status="ended")
    )
    assert response.status_code == 302
    blog.refresh_from_db()
    assert blog.status == "ended"
    assert blog.head == 2
    event, stored = last_event(blog)
    assert (event.seq, event.kind) == (2, "blog.updated")
    assert stored["blog"]["status"] == "ended"
    assert stored["blog"]["head"] == 2


@pytest.mark.django_db
def test_admin_change_blog_owner_takes_no_seq(admin_client, blog, author):
    response = admin_client.post(
        f"{BLOG_ADMIN}{blog.pk}/change/", blog_change_form(blog, owner=str(author.pk))
    )
    assert response.status_code == 302
    blog.refresh_from_db()
    assert blog.owner == author
    assert author in blog.authors.all()
    assert seqs(blog) == []


@pytest.mark.django_db
def test_admin_change_blog_keeps_owner_an_author(admin_client, blog, owner, author):
    """Deleting the owner's row is refused by services.member_remove: a message, and nothing
    of the save is kept (the other row deleted with it stays too)."""
    response = admin_client.post(
        f"{BLOG_ADMIN}{blog.pk}/change/",
        blog_change_form(blog, delete_members=[owner, author], title="Renamed"), follow=True,
    )
    assert response.status_code == 200
    assert any("owner" in str(message) for message in response.context["messages"])
    assert set(blog.authors.all()) == {owner, author}
    assert Blog.objects.get(pk=blog.pk).title == "Cup final"
    assert seqs(blog) == []


@pytest.mark.django_db
def test_admin_membership_inline_changes_roles_through_the_services(
    admin_client, superuser, blog, author, stranger
):
    form = blog_change_form(blog, delete_members=[author])
    rows = int(form["memberships-TOTAL_FORMS"])
    form.update({"memberships-TOTAL_FORMS": str(rows + 1),
                 f"memberships-{rows}-blog": str(blog.pk),
                 f"memberships-{rows}-user": str(stranger.pk),
                 f"memberships-{rows}-role": "contributor"})
    response = admin_client.post(f"{BLOG_ADMIN}{blog.pk}/change/", form)
    assert response.status_code == 302
    rows = dict(Membership.objects.filter(blog=blog).values_list("user__username", "role"))
    assert rows == {"olivia": "editor", "sam": "contributor"}
    assert Membership.objects.get(blog=blog, user=stranger).added_by == superuser
    page = admin_client.get(f"{BLOG_ADMIN}{blog.pk}/change/").content.decode()
    assert "memberships-0-role" in page and "root" in page  # added_by shown


@pytest.mark.django_db
def test_admin_blog_pages_render(admin_client, blog):
    assert admin_client.get(BLOG_ADMIN).status_code == 200
    assert admin_client.get(BLOG_ADMIN + "add/").status_code == 200
    assert admin_client.get(f"{BLOG_ADMIN}{blog.pk}/change/").status_code == 200


# --- liveblog_post ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_liveblog_post_publishes_seq_1(blog, author):
    out = run("liveblog_post", "final", "alice", "Kick-off from the **CLI**")
    post = Post.objects.get()
    assert out.strip() == f"posted #{post.pk} as seq 1"
    assert post.author == author
    assert post.html == "<p>Kick-off from the <strong>CLI</strong></p>"
    assert seqs(blog) == [1]
    assert Event.objects.get(blog=blog).kind == "post.created"


@pytest.mark.django_db
def test_liveblog_post_flags(blog):
    run("liveblog_post", "final", "alice", "Red card", "--key-event", "--pinned")
    post = Post.objects.get()
    assert post.key_event and post.pinned


@pytest.mark.django_db
def test_liveblog_post_same_client_id_posts_once(blog):
    client_id = str(uuid.uuid4())
    first = run("liveblog_post", "final", "alice", "Once", "--client-id", client_id)
    again = run("liveblog_post", "final", "alice", "Once", "--client-id", client_id)
    post = Post.objects.get()
    assert str(post.client_id) == client_id
    assert first.strip() == f"posted #{post.pk} as seq 1"
    assert again.strip() == f"already posted #{post.pk} as seq 1"
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_liveblog_post_unknown_user_is_a_command_error(blog):
    with pytest.raises(CommandError, match="nobody"):
        run("liveblog_post", "final", "nobody", "Hello")
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_liveblog_post_non_author_is_a_command_error(blog, stranger):
    with pytest.raises(CommandError, match="forbidden"):
        run("liveblog_post", "final", "sam", "Hello")
    assert not Post.objects.exists()
    assert seqs(blog) == []


@pytest.mark.django_db
def test_liveblog_post_unknown_blog_is_a_command_error(blog):
    with pytest.raises(CommandError, match="not_found"):
        run("liveblog_post", "nope", "alice", "Hello")


@pytest.mark.django_db
def test_liveblog_post_empty_body_is_a_command_error(blog):
    with pytest.raises(CommandError, match="invalid"):
        run("liveblog_post", "final", "alice", "  ")
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_liveblog_post_continues_the_blogs_numbering(blog, owner, make_post):
    make_post()
    services.blog_update(actor=owner, blog_id=blog.pk, title="Renamed")
    out = run("liveblog_post", "final", "alice", "third")
    assert out.strip().endswith("as seq 3")
    assert seqs(blog) == [1, 2, 3]


# --- liveblog_demo ----------------------------------------------------------------------------


@pytest.fixture
def no_demo_password_env(monkeypatch):
    monkeypatch.delenv("LIVEBLOG_DEMO_PASSWORD", raising=False)


@pytest.mark.django_db
def test_liveblog_demo_creates_demo_user_and_blog(django_user_model, no_demo_password_env):
    out = run("liveblog_demo")
    user = django_user_model.objects.get(username="demo")
    assert user.check_password("liveblog-demo")
    assert not user.is_staff and not user.is_superuser  # an author, not an admin
    blog = Blog.objects.get(slug="demo")
    assert blog.owner == user
    assert user in blog.authors.all()
    assert blog.head == 0
    assert seqs(blog) == []
    assert "/liveblog/demo/" in out
    assert "demo / liveblog-demo" in out


@pytest.mark.django_db
def test_liveblog_demo_is_idempotent(django_user_model, no_demo_password_env):
    run("liveblog_demo")
    blog = Blog.objects.get(slug="demo")
    out = run("liveblog_demo")
    assert django_user_model.objects.filter(username="demo").count() == 1
    assert Blog.objects.filter(slug="demo").count() == 1
    again = Blog.objects.get(slug="demo")
    assert (again.pk, again.epoch, again.head) == (blog.pk, blog.epoch, 0)
    assert "demo / liveblog-demo" in out


@pytest.mark.django_db
def test_liveblog_demo_author_can_post(no_demo_password_env):
    run("liveblog_demo")
    out = run("liveblog_post", "demo", "demo", "Hello from the demo")
    assert out.strip().endswith("as seq 1")


@pytest.mark.django_db
def test_liveblog_reset_log_starts_a_new_epoch(blog, make_post, owner):
    make_post("before")
    old_epoch = blog.epoch
    out = io.StringIO()
    call_command("liveblog_reset_log", blog.slug, "--as", owner.username, stdout=out)
    blog.refresh_from_db()
    assert blog.epoch != old_epoch and blog.head == 0
    assert blog.epoch in out.getvalue()
    assert not Event.objects.filter(blog=blog).exists()


@pytest.mark.django_db
def test_liveblog_reset_log_refuses_a_non_staff_user(blog, author):
    with pytest.raises(CommandError, match="forbidden"):
        call_command("liveblog_reset_log", blog.slug, "--as", author.username)


# --- The desk in the admin and the commands -----------------------------------------------------


@pytest.fixture
def contributor(django_user_model, blog):
    user = django_user_model.objects.create_user("carl", password="carl-password")
    blog.authors.add(user, through_defaults={"role": "contributor"})
    return user


@pytest.mark.django_db
def test_admin_submission_pages_are_read_only_with_history_photo_and_post(
    admin_client, blog, contributor, author
):
    submission_id = services.post_create(
        actor=contributor, blog_id=blog.pk, client_id=uuid.uuid4(), body="From the desk"
    ).data["id"]
    services.submission_return(actor=author, blog_id=blog.pk, submission_id=submission_id,
                               note="Which minute?")
    url = f"/admin/liveblog/submission/{submission_id}/change/"
    page = admin_client.get(url).content.decode()
    assert "Which minute?" in page and "returned" in page and "not published" in page
    listing = admin_client.get("/admin/liveblog/submission/?state__exact=returned")
    assert listing.status_code == 200 and "From the desk" in listing.content.decode()
    assert admin_client.get("/admin/liveblog/submission/add/").status_code == 403
    before = Submission.objects.get(pk=submission_id).body
    admin_client.post(url, {"body": "changed in the admin"})
    assert Submission.objects.get(pk=submission_id).body == before
    response = admin_client.post(f"/admin/liveblog/submission/{submission_id}/delete/",
                                 {"post": "yes"})
    assert response.status_code == 403
    services.submission_revise(actor=contributor, blog_id=blog.pk, submission_id=submission_id,
                               body="At 90+2")
    written = services.submission_publish(actor=author, blog_id=blog.pk,
                                          submission_id=submission_id)
    post_id = written.data["id"]
    page = admin_client.get(url).content.decode()
    assert f"/admin/liveblog/post/{post_id}/change/" in page
    assert f"/liveblog/final/#post-{post_id}" in page


@pytest.mark.django_db
def test_admin_post_page_shows_who_did_what_and_its_submission(
    admin_client, blog, contributor, author, owner
):
    submission_id = services.post_create(
        actor=contributor, blog_id=blog.pk, client_id=uuid.uuid4(), body="Carl's"
    ).data["id"]
    post_id = services.submission_publish(
        actor=author, blog_id=blog.pk, submission_id=submission_id).data["id"]
    services.post_update(actor=owner, blog_id=blog.pk, post_id=post_id, pinned=True)
    page = admin_client.get(f"{POST_ADMIN}{post_id}/change/").content.decode()
    assert f"/admin/liveblog/submission/{submission_id}/change/" in page
    assert "<td>post.created</td><td>alice</td>" in page
    assert "<td>post.updated</td><td>olivia</td>" in page
    direct = services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                                  body="Alice's").data["id"]
    assert "published directly" in admin_client.get(
        f"{POST_ADMIN}{direct}/change/").content.decode()


@pytest.mark.django_db
def test_liveblog_post_by_a_contributor_submits_to_the_desk(blog, contributor):
    out = run("liveblog_post", "final", "carl", "From the stands")
    submission = Submission.objects.get()
    assert out.strip() == (f"submitted to the desk as submission #{submission.pk} (submitted); "
                           "not public until it is published")
    assert not Post.objects.exists() and seqs(blog) == []
    again = run("liveblog_post", "final", "carl", "From the stands", "--client-id",
                str(submission.client_id))
    assert again.startswith(f"already submitted to the desk as submission #{submission.pk}")


@pytest.mark.django_db
def test_liveblog_post_publish_at_schedules_and_refuses_a_time_without_zone(blog):
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    out = run("liveblog_post", "final", "alice", "Later", "--publish-at", at.isoformat())
    submission = Submission.objects.get()
    assert submission.state == "scheduled" and submission.publish_at == at
    assert f"submission #{submission.pk} (scheduled for " in out
    assert not Post.objects.exists() and seqs(blog) == []
    with pytest.raises(CommandError):
        run("liveblog_post", "final", "alice", "Later", "--publish-at", "2026-01-01T10:00:00")
    with pytest.raises(CommandError, match="more than a year"):
        run("liveblog_post", "final", "alice", "Later", "--publish-at",
            (at + timedelta(days=400)).isoformat())
    assert Submission.objects.count() == 1


@pytest.mark.django_db
def test_liveblog_member_sets_changes_and_removes_roles(blog, owner, stranger):
    out = run("liveblog_member", "final", "sam", "--role", "contributor", "--as", "olivia")
    assert out.strip() == "final: sam is contributor"
    assert Membership.objects.get(blog=blog, user=stranger).role == "contributor"
    assert run("liveblog_member", "final", "sam", "--role", "editor", "--as", "olivia").strip() \
        == "final: sam is editor"
    assert run("liveblog_member", "final", "sam", "--remove", "--as", "olivia").strip() == (
        "final: sam removed")
    assert not Membership.objects.filter(blog=blog, user=stranger).exists()


@pytest.mark.django_db
def test_liveblog_member_errors(blog, superuser, author):
    with pytest.raises(CommandError, match="not_found"):
        run("liveblog_member", "final", "nobody", "--role", "editor")
    with pytest.raises(CommandError, match="not_found"):
        run("liveblog_member", "nope", "alice", "--role", "editor")
    with pytest.raises(CommandError, match="forbidden"):
        run("liveblog_member", "final", "olivia", "--remove", "--as", "alice")
    with pytest.raises(CommandError, match="invalid"):
        run("liveblog_member", "final", "olivia", "--remove")  # the owner stays
    with pytest.raises(CommandError):
        run("liveblog_member", "final", "alice", "--role", "owner")
    with pytest.raises(CommandError):
        run("liveblog_member", "final", "alice")  # --role or --remove
    assert Membership.objects.get(blog=blog, user=author).role == "editor"
