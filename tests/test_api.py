"""The JSON HTTP API: every endpoint, every error path, and the seq numbering behind it."""

import json
import uuid

import pytest
from django.db import OperationalError
from django.test import Client

from liveblog import services
from liveblog.models import Blog, Event, Post

BLOG_URL = "/api/liveblog/final/"
POSTS_URL = BLOG_URL + "posts"
EVENTS_URL = BLOG_URL + "events"
BLOGS_URL = "/api/liveblog/"
POST_KEYS = {
    "id", "client_id", "author", "body", "html", "created_at", "edited_at", "pinned", "key_event",
    "photo",
}
BLOG_KEYS = {"slug", "title", "description", "status", "epoch", "head", "created_at"}


# --- Helpers ----------------------------------------------------------------------------------


def encoded(data):
    return data if isinstance(data, str | bytes) else json.dumps(data)


def json_post(client, url, data, **extra):
    return client.post(url, data=encoded(data), content_type="application/json", **extra)


def json_patch(client, url, data, **extra):
    return client.patch(url, data=encoded(data), content_type="application/json", **extra)


def post_url(post_id, slug="final"):
    return f"/api/liveblog/{slug}/posts/{post_id}"


def new_post(**fields):
    return {"client_id": str(uuid.uuid4()), "body": "Kick-off!", **fields}


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def assert_error(response, status, code=None):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"error", "detail"}
    assert isinstance(data["detail"], str) and data["detail"]
    if code is not None:
        assert data["error"] == code
    return data


def seqs(blog):
    return list(Event.objects.filter(blog=blog).order_by("seq").values_list("seq", flat=True))


def kinds(blog):
    return list(Event.objects.filter(blog=blog).order_by("seq").values_list("kind", flat=True))


def head_of(blog):
    blog.refresh_from_db()
    return blog.head


def frame(blog, seq):
    return json.loads(Event.objects.get(blog=blog, seq=seq).frame)


def assert_nothing_written(blog):
    assert Post.objects.filter(blog=blog).count() == 0
    assert Event.objects.filter(blog=blog).count() == 0
    assert head_of(blog) == 0


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def author_client(author, blog):
    return signed_in(author)


@pytest.fixture
def owner_client(owner, blog):
    return signed_in(owner)


@pytest.fixture
def stranger_client(stranger, blog):
    return signed_in(stranger)


@pytest.fixture
def second_author(django_user_model, blog):
    """Another editor (blog.authors.add makes editors)."""
    user = django_user_model.objects.create_user("bob", password="bob-password")
    blog.authors.add(user)
    return user


@pytest.fixture
def contributor(django_user_model, blog):
    user = django_user_model.objects.create_user("carl", password="carl-password")
    blog.authors.add(user, through_defaults={"role": "contributor"})
    return user


# --- GET blog ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_get_blog_returns_metadata_with_epoch_and_head(client, blog):
    response = client.get(BLOG_URL)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == BLOG_KEYS
    assert data["slug"] == "final"
    assert data["title"] == "Cup final"
    assert data["status"] == "live"
    assert data["epoch"] == blog.epoch
    assert data["head"] == 0


@pytest.mark.django_db
def test_get_blog_head_follows_the_log(client, make_post):
    make_post()
    make_post()
    assert client.get(BLOG_URL).json()["head"] == 2


@pytest.mark.django_db
def test_get_unknown_blog_is_json_404(client, blog):
    assert_error(client.get("/api/liveblog/nope/"), 404, "not_found")


@pytest.mark.django_db
def test_get_blog_list(client, blog):
    response = client.get(BLOGS_URL)
    assert response.status_code == 200
    assert [item["slug"] for item in response.json()["blogs"]] == ["final"]


# --- GET posts --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_get_posts_newest_first_with_epoch_and_head(client, blog, make_post):
    ids = [make_post(f"update {n}").data["id"] for n in range(3)]
    response = client.get(POSTS_URL)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"epoch", "head", "posts", "next_before"}
    assert data["epoch"] == blog.epoch
    assert data["head"] == 3
    assert [post["id"] for post in data["posts"]] == ids[::-1]
    assert data["next_before"] is None


@pytest.mark.django_db
def test_get_posts_post_shape(client, make_post):
    written = make_post("**Goal!**", key_event=True)
    post = client.get(POSTS_URL).json()["posts"][0]
    assert set(post) == POST_KEYS
    assert post == written.data
    assert post["author"] == {"username": "alice", "name": "Alice Author"}
    assert post["body"] == "**Goal!**"
    assert post["html"] == "<p><strong>Goal!</strong></p>"
    assert post["key_event"] is True
    assert post["pinned"] is False
    assert post["edited_at"] is None
    assert post["photo"] is None
    assert post["created_at"].endswith("Z")


@pytest.mark.django_db
def test_get_posts_pages_with_before_and_limit(client, make_post):
    ids = [make_post(f"update {n}").data["id"] for n in range(5)]
    newest_first = ids[::-1]

    first = client.get(POSTS_URL, {"limit": 2}).json()
    assert [post["id"] for post in first["posts"]] == newest_first[:2]
    assert first["next_before"] == newest_first[1]

    second = client.get(POSTS_URL, {"limit": 2, "before": first["next_before"]}).json()
    assert [post["id"] for post in second["posts"]] == newest_first[2:4]
    assert second["next_before"] == newest_first[3]

    last = client.get(POSTS_URL, {"limit": 2, "before": second["next_before"]}).json()
    assert [post["id"] for post in last["posts"]] == newest_first[4:]
    assert last["next_before"] is None


@pytest.mark.django_db
def test_get_posts_exact_page_has_no_next_before(client, make_post):
    for n in range(2):
        make_post(f"update {n}")
    assert client.get(POSTS_URL, {"limit": 2}).json()["next_before"] is None


@pytest.mark.django_db
def test_get_posts_limit_defaults_to_20(client, make_post):
    for n in range(21):
        make_post(f"update {n}")
    data = client.get(POSTS_URL).json()
    assert len(data["posts"]) == 20
    assert data["next_before"] == data["posts"][-1]["id"]


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["1", "100"])
def test_get_posts_limit_bounds_accepted(client, make_post, limit):
    make_post()
    response = client.get(POSTS_URL, {"limit": limit})
    assert response.status_code == 200
    assert len(response.json()["posts"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_get_posts_limit_out_of_bounds_is_400(client, blog, limit):
    assert_error(client.get(POSTS_URL, {"limit": limit}), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("before", ["abc", "-3", "1e3", "0", "\u00b2", "9" * 30])
def test_get_posts_bad_before_is_400(client, blog, before):
    assert_error(client.get(POSTS_URL, {"before": before}), 400, "invalid")


@pytest.mark.django_db
def test_get_posts_excludes_deleted(client, blog, author, make_post):
    kept = make_post("kept").data["id"]
    gone = make_post("gone").data["id"]
    services.post_delete(actor=author, blog_id=blog.pk, post_id=gone)
    data = client.get(POSTS_URL).json()
    assert [post["id"] for post in data["posts"]] == [kept]
    assert data["head"] == 3


@pytest.mark.django_db
def test_get_posts_unknown_blog_is_404(client, blog):
    assert_error(client.get("/api/liveblog/nope/posts"), 404, "not_found")


# --- GET events -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_since_zero_returns_stored_frames_verbatim(client, blog, author, make_post):
    first = make_post("one").data["id"]
    make_post("two")
    services.post_update(actor=author, blog_id=blog.pk, post_id=first, pinned=True)
    stored = list(Event.objects.filter(blog=blog).order_by("seq").values_list("frame", flat=True))

    response = client.get(EVENTS_URL, {"since": 0})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    expected = '{{"epoch":"{}","head":3,"events":[{}]}}'.format(blog.epoch, ",".join(stored))
    assert response.content.decode() == expected
    data = response.json()
    assert [event["seq"] for event in data["events"]] == [1, 2, 3]
    assert [event["kind"] for event in data["events"]] == [
        "post.created", "post.created", "post.updated",
    ]


@pytest.mark.django_db
def test_events_since_returns_only_later_events(client, blog, make_post):
    for n in range(4):
        make_post(f"update {n}")
    data = client.get(EVENTS_URL, {"since": 2}).json()
    assert data["head"] == 4
    assert data["epoch"] == blog.epoch
    assert [event["seq"] for event in data["events"]] == [3, 4]
    assert data["events"][0] == frame(blog, 3)


@pytest.mark.django_db
def test_events_since_head_is_empty(client, make_post):
    make_post()
    data = client.get(EVENTS_URL, {"since": 1}).json()
    assert data["events"] == []
    assert data["head"] == 1


@pytest.mark.django_db
def test_events_with_matching_epoch_replays(client, blog, make_post):
    make_post()
    data = client.get(EVENTS_URL, {"since": 0, "epoch": blog.epoch}).json()
    assert "type" not in data
    assert [event["seq"] for event in data["events"]] == [1]


@pytest.mark.django_db
def test_events_limit_pages_the_replay(client, make_post):
    for n in range(5):
        make_post(f"update {n}")
    data = client.get(EVENTS_URL, {"since": 1, "limit": 2}).json()
    assert [event["seq"] for event in data["events"]] == [2, 3]
    assert data["head"] == 5


def _synthetic_log(blog, count):
    """`count` stored events without posts, for tests about page sizes only."""
    Event.objects.bulk_create(
        Event(
            blog=blog, seq=seq, kind=Event.Kind.BLOG_UPDATED,
            frame=json.dumps({"type": "event", "seq": seq, "kind": "blog.updated"}),
        )
        for seq in range(1, count + 1)
    )
    Blog.objects.filter(pk=blog.pk).update(head=count)


@pytest.mark.django_db
def test_events_limit_defaults_to_100(client, blog, settings):
    settings.LIVEBLOG_REPLAY_WINDOW = 5000
    _synthetic_log(blog, 101)
    events = client.get(EVENTS_URL, {"since": 0}).json()["events"]
    assert [event["seq"] for event in events] == list(range(1, 101))


@pytest.mark.django_db
def test_events_limit_max_is_1000(client, blog, settings):
    settings.LIVEBLOG_REPLAY_WINDOW = 5000
    _synthetic_log(blog, 1001)
    events = client.get(EVENTS_URL, {"since": 0, "limit": 1000}).json()["events"]
    assert [event["seq"] for event in events] == list(range(1, 1001))


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_events_limit_out_of_bounds_is_400(client, blog, limit):
    assert_error(client.get(EVENTS_URL, {"since": 0, "limit": limit}), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"since": ""}, {"since": "x"}, {"since": "-1"}])
def test_events_without_valid_since_is_400(client, blog, query):
    assert_error(client.get(EVENTS_URL, query), 400, "invalid")


@pytest.mark.django_db
def test_events_unknown_blog_is_404(client, blog):
    assert_error(client.get("/api/liveblog/nope/events", {"since": 0}), 404, "not_found")


def assert_snapshot(data, blog, *, head, post_ids):
    assert data["type"] == "snapshot"
    assert set(data) == {"type", "epoch", "head", "posts", "blog", "next_before"}
    assert data["epoch"] == blog.epoch
    assert data["head"] == head
    assert data["blog"]["slug"] == blog.slug
    assert data["blog"]["head"] == head
    assert [post["id"] for post in data["posts"]] == post_ids
    assert data["next_before"] is None


@pytest.mark.django_db
def test_events_since_beyond_head_is_a_snapshot(client, blog, make_post):
    post_id = make_post().data["id"]
    data = client.get(EVENTS_URL, {"since": 5}).json()
    assert_snapshot(data, blog, head=1, post_ids=[post_id])


@pytest.mark.django_db
def test_events_from_another_epoch_is_a_snapshot(client, blog, make_post):
    post_id = make_post().data["id"]
    data = client.get(EVENTS_URL, {"since": 0, "epoch": "0123456789abcdef"}).json()
    assert_snapshot(data, blog, head=1, post_ids=[post_id])


@pytest.mark.django_db
def test_events_older_than_replay_window_is_a_snapshot(client, blog, settings, make_post):
    settings.LIVEBLOG_REPLAY_WINDOW = 2
    ids = [make_post(f"update {n}").data["id"] for n in range(4)]
    data = client.get(EVENTS_URL, {"since": 1}).json()
    assert_snapshot(data, blog, head=4, post_ids=ids[::-1])


@pytest.mark.django_db
def test_events_at_the_edge_of_the_replay_window_replays(client, settings, make_post):
    settings.LIVEBLOG_REPLAY_WINDOW = 2
    for n in range(4):
        make_post(f"update {n}")
    data = client.get(EVENTS_URL, {"since": 2}).json()
    assert [event["seq"] for event in data["events"]] == [3, 4]


@pytest.mark.django_db
def test_events_snapshot_leaves_out_deleted_posts(client, blog, author, make_post):
    kept = make_post("kept").data["id"]
    gone = make_post("gone").data["id"]
    services.post_delete(actor=author, blog_id=blog.pk, post_id=gone)
    data = client.get(EVENTS_URL, {"since": 99}).json()
    assert_snapshot(data, blog, head=3, post_ids=[kept])


# --- POST posts -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_post_answers_201_with_seq_and_post(author_client, blog):
    payload = new_post(body="Kick-off in *Berlin*")
    response = json_post(author_client, POSTS_URL, payload)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"seq", "post"}
    assert data["seq"] == 1
    post = data["post"]
    assert set(post) == POST_KEYS
    assert post["client_id"] == payload["client_id"]
    assert post["body"] == "Kick-off in *Berlin*"
    assert post["html"] == "<p>Kick-off in <em>Berlin</em></p>"
    assert post["author"]["username"] == "alice"
    row = Post.objects.get(pk=post["id"])
    assert row.blog == blog
    assert str(row.client_id) == payload["client_id"]
    event = Event.objects.get(blog=blog)
    assert (event.seq, event.kind, event.post_id) == (1, "post.created", row.pk)
    assert json.loads(event.frame)["post"] == post
    assert head_of(blog) == 1


@pytest.mark.django_db
def test_create_post_with_flags(author_client):
    response = json_post(author_client, POSTS_URL, new_post(key_event=True, pinned=True))
    assert response.status_code == 201
    post = response.json()["post"]
    assert post["key_event"] is True
    assert post["pinned"] is True
    row = Post.objects.get(pk=post["id"])
    assert row.key_event and row.pinned


@pytest.mark.django_db
def test_create_post_null_flags_mean_false(author_client):
    response = json_post(author_client, POSTS_URL, new_post(key_event=None, pinned=None))
    assert response.status_code == 201
    assert response.json()["post"]["pinned"] is False


@pytest.mark.django_db
def test_create_post_retry_with_same_client_id_is_200_and_byte_identical(author_client, blog):
    payload = new_post()
    first = json_post(author_client, POSTS_URL, payload)
    again = json_post(author_client, POSTS_URL, payload)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.content == first.content
    assert Event.objects.filter(blog=blog).count() == 1
    assert Post.objects.filter(blog=blog).count() == 1
    assert head_of(blog) == 1


@pytest.mark.django_db
def test_create_post_retry_with_other_body_returns_the_original(author_client, blog):
    payload = new_post(body="first words")
    first = json_post(author_client, POSTS_URL, payload)
    again = json_post(author_client, POSTS_URL, {**payload, "body": "second words"})
    assert again.status_code == 200
    assert again.content == first.content
    assert Post.objects.get().body == "first words"


@pytest.mark.django_db
def test_create_post_anonymous_is_401(client, blog):
    assert_error(json_post(client, POSTS_URL, new_post()), 401, "not_authenticated")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_create_post_stranger_is_403(stranger_client, blog):
    assert_error(json_post(stranger_client, POSTS_URL, new_post()), 403, "forbidden")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_create_post_unknown_blog_is_404(author_client, blog):
    response = json_post(author_client, "/api/liveblog/nope/posts", new_post())
    assert_error(response, 404, "not_found")
    assert Post.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["{not json", "", "\xff", b"\x80{}", "{\"body\": \"x\",}",
                                 "[" * 5000 + "]" * 5000])
def test_create_post_invalid_json_is_400_bad_json(author_client, blog, raw):
    assert_error(json_post(author_client, POSTS_URL, raw), 400, "bad_json")
    assert_nothing_written(blog)


@pytest.mark.django_db
@pytest.mark.parametrize("data", [[new_post()], "a string", 42, None])
def test_create_post_json_that_is_not_an_object_is_400(author_client, blog, data):
    assert_error(json_post(author_client, POSTS_URL, json.dumps(data)), 400, "bad_json")
    assert_nothing_written(blog)


BAD_POST_FIELDS = {
    "missing client_id": {"body": "x"},
    "missing body": {"client_id": str(uuid.uuid4())},
    "client_id not a uuid": {"client_id": "not-a-uuid", "body": "x"},
    "client_id a number": {"client_id": 12, "body": "x"},
    "client_id null": {"client_id": None, "body": "x"},
    "body a number": {"client_id": str(uuid.uuid4()), "body": 5},
    "body null": {"client_id": str(uuid.uuid4()), "body": None},
    "body empty": {"client_id": str(uuid.uuid4()), "body": ""},
    "body blank": {"client_id": str(uuid.uuid4()), "body": "  \n "},
    "key_event a string": {"client_id": str(uuid.uuid4()), "body": "x", "key_event": "yes"},
    "key_event a number": {"client_id": str(uuid.uuid4()), "body": "x", "key_event": 1},
    "pinned a string": {"client_id": str(uuid.uuid4()), "body": "x", "pinned": "true"},
    "pinned a number": {"client_id": str(uuid.uuid4()), "body": "x", "pinned": 0},
    "unknown field": {"client_id": str(uuid.uuid4()), "body": "x", "author": "mallory"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("data", BAD_POST_FIELDS.values(), ids=BAD_POST_FIELDS.keys())
def test_create_post_bad_fields_are_400(author_client, blog, data):
    assert_error(json_post(author_client, POSTS_URL, data), 400, "invalid")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_create_post_body_over_the_limit_is_400(author_client, blog, settings):
    settings.LIVEBLOG_MAX_BODY_CHARS = 10
    response = json_post(author_client, POSTS_URL, new_post(body="x" * 11))
    assert_error(response, 400, "too_long")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_create_post_body_at_the_limit_is_accepted(author_client, settings):
    settings.LIVEBLOG_MAX_BODY_CHARS = 10
    assert json_post(author_client, POSTS_URL, new_post(body="x" * 10)).status_code == 201


@pytest.mark.django_db
def test_create_post_request_too_large_is_413(author_client, blog, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = json_post(author_client, POSTS_URL, new_post(body="x" * 2000))
    assert_error(response, 413, "too_large")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_create_post_owner_may_post(owner_client):
    response = json_post(owner_client, POSTS_URL, new_post())
    assert response.status_code == 201
    assert response.json()["post"]["author"]["username"] == "olivia"


# --- CSRF -------------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(author, blog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    return client


def csrf_token(client):
    """Fetch a page that renders a form, so the csrftoken cookie is set."""
    assert client.get("/accounts/login/").status_code == 200
    return client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_csrf_write_without_token_is_403_json(csrf_client, blog):
    csrf_token(csrf_client)  # a cookie alone is not enough
    response = json_post(csrf_client, POSTS_URL, new_post())
    assert_error(response, 403, "csrf_failed")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_csrf_write_with_wrong_token_is_403(csrf_client, blog):
    csrf_token(csrf_client)
    response = json_post(csrf_client, POSTS_URL, new_post(), HTTP_X_CSRFTOKEN="x" * 32)
    assert_error(response, 403, "csrf_failed")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_csrf_write_with_token_header_is_201(csrf_client, blog):
    token = csrf_token(csrf_client)
    response = json_post(csrf_client, POSTS_URL, new_post(), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_csrf_patch_and_delete_need_the_token_too(csrf_client, blog, make_post):
    post_id = make_post().data["id"]
    assert_error(json_patch(csrf_client, post_url(post_id), {"pinned": True}), 403, "csrf_failed")
    assert_error(csrf_client.delete(post_url(post_id)), 403, "csrf_failed")
    assert seqs(blog) == [1]
    token = csrf_token(csrf_client)
    response = json_patch(csrf_client, post_url(post_id), {"pinned": True}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


@pytest.mark.django_db
def test_csrf_reads_need_no_token(csrf_client, blog):
    assert csrf_client.get(POSTS_URL).status_code == 200


# --- PATCH posts/<id> -------------------------------------------------------------------------


@pytest.mark.django_db
def test_edit_body_sets_edited_at_and_rerenders(author_client, blog, make_post):
    post_id = make_post("first *draft*").data["id"]
    response = json_patch(author_client, post_url(post_id), {"body": "final **word**"})
    assert response.status_code == 200
    data = response.json()
    assert data["seq"] == 2
    post = data["post"]
    assert post["body"] == "final **word**"
    assert post["html"] == "<p>final <strong>word</strong></p>"
    assert post["edited_at"] is not None
    row = Post.objects.get(pk=post_id)
    assert row.body == "final **word**"
    assert row.html == post["html"]
    assert row.edited_at is not None
    assert kinds(blog) == ["post.created", "post.updated"]
    assert frame(blog, 2)["post"] == post


@pytest.mark.django_db
def test_pin_and_unpin(author_client, blog, make_post):
    post_id = make_post().data["id"]
    pinned = json_patch(author_client, post_url(post_id), {"pinned": True}).json()
    assert (pinned["seq"], pinned["post"]["pinned"]) == (2, True)
    assert pinned["post"]["edited_at"] is None  # a flag is not an edit
    unpinned = json_patch(author_client, post_url(post_id), {"pinned": False}).json()
    assert (unpinned["seq"], unpinned["post"]["pinned"]) == (3, False)
    assert Post.objects.get(pk=post_id).pinned is False
    assert kinds(blog) == ["post.created", "post.updated", "post.updated"]


@pytest.mark.django_db
def test_key_event_flag(author_client, blog, make_post):
    post_id = make_post().data["id"]
    data = json_patch(author_client, post_url(post_id), {"key_event": True}).json()
    assert data["seq"] == 2
    assert data["post"]["key_event"] is True
    assert Post.objects.get(pk=post_id).key_event is True
    assert frame(blog, 2)["post"]["key_event"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{}, {"body": "same"}, {"pinned": False, "key_event": False}])
def test_no_op_patch_answers_seq_null_and_logs_nothing(author_client, blog, make_post, change):
    post_id = make_post("same").data["id"]
    response = json_patch(author_client, post_url(post_id), change)
    assert response.status_code == 200
    data = response.json()
    assert data["seq"] is None
    assert data["post"]["id"] == post_id
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_a_contributor_may_not_patch_a_published_post(blog, contributor, make_post):
    post_id = make_post("alice's").data["id"]
    response = json_patch(signed_in(contributor), post_url(post_id), {"body": "bob's now"})
    assert_error(response, 403, "forbidden")
    assert Post.objects.get(pk=post_id).body == "alice's"
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_an_editor_may_patch_another_authors_post(blog, second_author, make_post):
    """An editor's job is to edit: any published post of the blog (README, "The desk")."""
    post_id = make_post("alice's").data["id"]
    response = json_patch(signed_in(second_author), post_url(post_id), {"body": "edited by bob"})
    assert response.status_code == 200 and response.json()["seq"] == 2
    assert Post.objects.get(pk=post_id).body == "edited by bob"


@pytest.mark.django_db
def test_owner_may_patch_another_authors_post(owner_client, blog, make_post):
    post_id = make_post("alice's").data["id"]
    response = json_patch(owner_client, post_url(post_id), {"body": "fixed by the owner"})
    assert response.status_code == 200
    assert response.json()["seq"] == 2
    assert Post.objects.get(pk=post_id).body == "fixed by the owner"


@pytest.mark.django_db
def test_patch_unknown_post_is_404(author_client, blog):
    assert_error(json_patch(author_client, post_url(999), {"pinned": True}), 404, "not_found")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_patch_post_of_another_blog_is_404(author_client, author, owner, blog, make_post):
    other = services.blog_create(actor=owner, slug="other", title="Other")
    other.authors.add(author)
    post_id = make_post().data["id"]
    response = json_patch(author_client, post_url(post_id, slug="other"), {"pinned": True})
    assert_error(response, 404, "not_found")
    assert seqs(other) == []
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_patch_deleted_post_is_404(author_client, blog, author, make_post):
    post_id = make_post().data["id"]
    services.post_delete(actor=author, blog_id=blog.pk, post_id=post_id)
    assert_error(json_patch(author_client, post_url(post_id), {"body": "back"}), 404, "not_found")
    assert seqs(blog) == [1, 2]


@pytest.mark.django_db
def test_patch_anonymous_is_401(client, blog, make_post):
    post_id = make_post().data["id"]
    assert_error(json_patch(client, post_url(post_id), {"pinned": True}), 401)
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_patch_stranger_is_403(stranger_client, blog, make_post):
    post_id = make_post().data["id"]
    assert_error(json_patch(stranger_client, post_url(post_id), {"pinned": True}), 403)
    assert seqs(blog) == [1]


BAD_PATCHES = {
    "empty body": {"body": ""},
    "body a number": {"body": 3},
    "pinned a string": {"pinned": "yes"},
    "key_event a number": {"key_event": 1},
    "unknown field": {"client_id": str(uuid.uuid4())},
}


@pytest.mark.django_db
@pytest.mark.parametrize("change", BAD_PATCHES.values(), ids=BAD_PATCHES.keys())
def test_patch_bad_fields_are_400(author_client, blog, make_post, change):
    post_id = make_post("original").data["id"]
    assert_error(json_patch(author_client, post_url(post_id), change), 400, "invalid")
    assert Post.objects.get(pk=post_id).body == "original"
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_patch_invalid_json_is_400(author_client, blog, make_post):
    post_id = make_post().data["id"]
    assert_error(json_patch(author_client, post_url(post_id), "{oops"), 400, "bad_json")
    assert_error(json_patch(author_client, post_url(post_id), "[]"), 400, "bad_json")
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_patch_body_over_the_limit_is_400(author_client, blog, make_post, settings):
    post_id = make_post("short").data["id"]
    settings.LIVEBLOG_MAX_BODY_CHARS = 10
    assert_error(json_patch(author_client, post_url(post_id), {"body": "y" * 11}), 400)
    assert seqs(blog) == [1]


# --- DELETE posts/<id> ------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_is_a_tombstone_event(author_client, blog, make_post):
    post_id = make_post().data["id"]
    response = author_client.delete(post_url(post_id))
    assert response.status_code == 200
    assert response.json() == {"seq": 2, "post": {"id": post_id, "deleted": True}}
    row = Post.objects.get(pk=post_id)  # the row stays
    assert row.deleted_at is not None
    event = Event.objects.get(blog=blog, seq=2)
    assert event.kind == "post.deleted"
    stored = json.loads(event.frame)
    assert stored["post"] == {"id": post_id, "deleted": True}
    assert (stored["type"], stored["seq"], stored["kind"]) == ("event", 2, "post.deleted")


@pytest.mark.django_db
def test_delete_again_answers_the_same_seq(author_client, blog, make_post):
    post_id = make_post().data["id"]
    first = author_client.delete(post_url(post_id))
    make_post("later")  # seq 3
    again = author_client.delete(post_url(post_id))
    assert again.status_code == 200
    assert again.json() == first.json() == {"seq": 2, "post": {"id": post_id, "deleted": True}}
    assert seqs(blog) == [1, 2, 3]


@pytest.mark.django_db
def test_delete_unknown_post_is_404(author_client, blog):
    assert_error(author_client.delete(post_url(12345)), 404, "not_found")
    assert_nothing_written(blog)


@pytest.mark.django_db
def test_a_contributor_may_not_delete_a_published_post(blog, contributor, make_post):
    post_id = make_post().data["id"]
    assert_error(signed_in(contributor).delete(post_url(post_id)), 403, "forbidden")
    assert Post.objects.get(pk=post_id).deleted_at is None
    assert seqs(blog) == [1]


@pytest.mark.django_db
def test_an_editor_may_delete_another_authors_post(blog, second_author, make_post):
    post_id = make_post().data["id"]
    assert signed_in(second_author).delete(post_url(post_id)).json()["seq"] == 2
    assert Post.objects.get(pk=post_id).deleted_at is not None


@pytest.mark.django_db
def test_owner_may_delete_another_authors_post(owner_client, blog, make_post):
    post_id = make_post().data["id"]
    assert owner_client.delete(post_url(post_id)).json()["seq"] == 2
    assert Post.objects.get(pk=post_id).deleted_at is not None


@pytest.mark.django_db
def test_delete_anonymous_is_401_and_stranger_403(client, stranger_client, blog, make_post):
    post_id = make_post().data["id"]
    assert_error(client.delete(post_url(post_id)), 401, "not_authenticated")
    assert_error(stranger_client.delete(post_url(post_id)), 403, "forbidden")
    assert Post.objects.get(pk=post_id).deleted_at is None
    assert seqs(blog) == [1]


# --- POST /api/liveblog/ (create a blog) ------------------------------------------------------


@pytest.mark.django_db
def test_staff_creates_blog_and_becomes_owner_and_author(owner_client, owner):
    response = json_post(
        owner_client, BLOGS_URL, {"slug": "derby", "title": "Derby day", "description": "Live"}
    )
    assert response.status_code == 201
    data = response.json()
    assert set(data) == BLOG_KEYS
    assert (data["slug"], data["title"], data["description"]) == ("derby", "Derby day", "Live")
    assert data["head"] == 0
    assert data["status"] == "live"
    created = Blog.objects.get(slug="derby")
    assert data["epoch"] == created.epoch
    assert created.owner == owner
    assert list(created.authors.all()) == [owner]
    assert Event.objects.filter(blog=created).count() == 0


@pytest.mark.django_db
def test_new_blogs_first_post_is_seq_1(owner_client):
    json_post(owner_client, BLOGS_URL, {"slug": "derby", "title": "Derby day"})
    response = json_post(owner_client, "/api/liveblog/derby/posts", new_post())
    assert response.status_code == 201
    assert response.json()["seq"] == 1


@pytest.mark.django_db
def test_create_blog_with_taken_slug_is_409(owner_client, blog):
    response = json_post(owner_client, BLOGS_URL, {"slug": "final", "title": "Again"})
    assert_error(response, 409, "conflict")
    assert Blog.objects.get(slug="final").title == "Cup final"


@pytest.mark.django_db
def test_create_blog_non_staff_is_403(author_client):
    response = json_post(author_client, BLOGS_URL, {"slug": "derby", "title": "Derby"})
    assert_error(response, 403, "forbidden")
    assert not Blog.objects.filter(slug="derby").exists()


@pytest.mark.django_db
def test_create_blog_anonymous_is_401(client):
    response = json_post(client, BLOGS_URL, {"slug": "derby", "title": "Derby"})
    assert_error(response, 401, "not_authenticated")
    assert not Blog.objects.exists()


BAD_BLOGS = {
    "slug with spaces": {"slug": "cup final", "title": "T"},
    "slug with slash": {"slug": "a/b", "title": "T"},
    "empty slug": {"slug": "", "title": "T"},
    "missing slug": {"title": "T"},
    "slug a number": {"slug": 7, "title": "T"},
    "slug too long": {"slug": "s" * 81, "title": "T"},
    "empty title": {"slug": "derby", "title": ""},
    "blank title": {"slug": "derby", "title": "   "},
    "missing title": {"slug": "derby"},
    "title too long": {"slug": "derby", "title": "t" * 201},
    "description a number": {"slug": "derby", "title": "T", "description": 5},
    "unknown field": {"slug": "derby", "title": "T", "owner": "sam"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("data", BAD_BLOGS.values(), ids=BAD_BLOGS.keys())
def test_create_blog_bad_fields_are_400(owner_client, data):
    assert_error(json_post(owner_client, BLOGS_URL, data), 400, "invalid")
    assert list(Blog.objects.values_list("slug", flat=True)) == ["final"]


@pytest.mark.django_db
def test_create_blog_invalid_json_is_400(owner_client):
    assert_error(json_post(owner_client, BLOGS_URL, "nope"), 400, "bad_json")
    assert list(Blog.objects.values_list("slug", flat=True)) == ["final"]


# --- PATCH /api/liveblog/<slug>/ --------------------------------------------------------------


@pytest.mark.django_db
def test_owner_changes_title_and_status_as_one_blog_updated_event(owner_client, blog, make_post):
    make_post()
    response = json_patch(owner_client, BLOG_URL, {"title": "Cup final (AET)", "status": "ended"})
    assert response.status_code == 200
    data = response.json()
    assert data["seq"] == 2
    assert data["blog"]["title"] == "Cup final (AET)"
    assert data["blog"]["status"] == "ended"
    assert data["blog"]["head"] == 2
    blog.refresh_from_db()
    assert (blog.title, blog.status, blog.head) == ("Cup final (AET)", "ended", 2)
    event = Event.objects.get(blog=blog, seq=2)
    assert event.kind == "blog.updated"
    assert event.post is None
    stored = json.loads(event.frame)
    # Readers get the blog without the owner's list of embedding sites.
    assert "embed_origins" not in stored["blog"]
    assert {**stored["blog"], "embed_origins": []} == data["blog"]
    assert stored["blog"]["head"] == stored["seq"] == 2


@pytest.mark.django_db
def test_owner_who_is_not_staff_may_change_the_blog(blog, owner):
    owner.is_staff = False
    owner.save()
    response = json_patch(signed_in(owner), BLOG_URL, {"status": "ended"})
    assert response.status_code == 200
    assert response.json()["seq"] == 1


@pytest.mark.django_db
def test_blog_patch_without_change_answers_seq_null(owner_client, blog):
    response = json_patch(owner_client, BLOG_URL, {"title": "Cup final"})
    assert response.status_code == 200
    assert response.json()["seq"] is None
    assert seqs(blog) == []


@pytest.mark.django_db
def test_blog_patch_stranger_is_403(stranger_client, blog):
    assert_error(json_patch(stranger_client, BLOG_URL, {"title": "Mine"}), 403, "forbidden")
    blog.refresh_from_db()
    assert blog.title == "Cup final"
    assert seqs(blog) == []


@pytest.mark.django_db
def test_blog_patch_by_plain_author_is_403(author_client, blog):
    assert_error(json_patch(author_client, BLOG_URL, {"status": "ended"}), 403, "forbidden")
    assert seqs(blog) == []


@pytest.mark.django_db
def test_blog_patch_anonymous_is_401(client, blog):
    assert_error(json_patch(client, BLOG_URL, {"status": "ended"}), 401, "not_authenticated")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [{"status": "paused"}, {"status": 1}, {"title": ""}, {"title": 5}, {"slug": "renamed"}],
    ids=["unknown status", "status a number", "empty title", "title a number", "slug"],
)
def test_blog_patch_bad_fields_are_400(owner_client, blog, change):
    assert_error(json_patch(owner_client, BLOG_URL, change), 400, "invalid")
    blog.refresh_from_db()
    assert (blog.title, blog.status, blog.slug) == ("Cup final", "live", "final")
    assert seqs(blog) == []


@pytest.mark.django_db
def test_blog_patch_unknown_blog_is_404(owner_client, blog):
    assert_error(json_patch(owner_client, "/api/liveblog/nope/", {"title": "x"}), 404)


# --- Methods and unknown URLs -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("put", BLOGS_URL),
        ("delete", BLOG_URL),
        ("put", POSTS_URL),
        ("delete", POSTS_URL),
        ("get", POSTS_URL + "/1"),
        ("post", POSTS_URL + "/1"),
        ("post", EVENTS_URL),
    ],
)
def test_wrong_method_is_405_json(author_client, blog, method, url):
    response = getattr(author_client, method)(url)
    assert_error(response, 405, "method_not_allowed")
    assert method.upper() not in response["Allow"].split(", ")
    assert_nothing_written(blog)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/nothing", "/api/liveblog/final/unknown", "/api/liveblog/final/posts/abc"]
)
def test_unknown_api_url_is_json_404(client, blog, url):
    assert_error(client.get(url), 404, "not_found")


# --- The log across mixed operations ----------------------------------------------------------


@pytest.mark.django_db
def test_mixed_operations_number_events_1_to_n_without_gaps(author_client, owner_client, blog):
    first = json_post(author_client, POSTS_URL, new_post(body="one")).json()
    second = json_post(author_client, POSTS_URL, new_post(body="two")).json()
    post_id = first["post"]["id"]
    answers = [
        first["seq"],
        second["seq"],
        json_patch(author_client, post_url(post_id), {"body": "one, edited"}).json()["seq"],
        json_patch(author_client, post_url(post_id), {"pinned": True}).json()["seq"],
        json_patch(owner_client, BLOG_URL, {"title": "Renamed"}).json()["seq"],
        author_client.delete(post_url(second["post"]["id"])).json()["seq"],
        json_post(author_client, POSTS_URL, new_post(body="three")).json()["seq"],
    ]
    # Refused and no-op writes take no number.
    assert json_patch(author_client, post_url(post_id), {"pinned": True}).json()["seq"] is None
    assert json_post(author_client, POSTS_URL, new_post(body="")).status_code == 400
    assert json_patch(owner_client, BLOG_URL, {"status": "bogus"}).status_code == 400
    answers.append(json_post(author_client, POSTS_URL, new_post(body="four")).json()["seq"])

    assert answers == [1, 2, 3, 4, 5, 6, 7, 8]
    assert seqs(blog) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert kinds(blog) == [
        "post.created", "post.created", "post.updated", "post.updated",
        "blog.updated", "post.deleted", "post.created", "post.created",
    ]
    assert head_of(blog) == 8
    assert [frame(blog, seq)["seq"] for seq in range(1, 9)] == list(range(1, 9))
    assert author_client.get(BLOG_URL).json()["head"] == 8


# --- Failures on our side -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("error", "status", "code"), [
    (OperationalError("could not connect to server"), 503, "unavailable"),
    (RuntimeError("a bug"), 500, "server_error"),
])
def test_a_write_that_fails_on_our_side_answers_json(blog, author, monkeypatch, error, status,
                                                     code):
    """A database that cannot be reached is a 503 to retry later; anything else a 500. Either
    way a JSON body, never Django's HTML page, and the outbox keeps the post to send again."""
    def failing(**kwargs):
        raise error

    monkeypatch.setattr(services, "post_create", failing)
    client = signed_in(author)
    client.raise_request_exception = False
    response = json_post(client, POSTS_URL, new_post())
    assert_error(response, status, code)
    assert (response.get("Retry-After") == "5") == (status == 503)
    assert not Post.objects.exists()


# --- NUL characters (PostgreSQL text cannot hold them; found by the OpenAPI fuzzing) -------


@pytest.mark.parametrize("send", [
    lambda client: json_post(client, POSTS_URL, new_post(body="Goal\x00!")),
    lambda client: json_post(client, BLOGS_URL, {"slug": "nul", "title": "Final\x00"}),
    lambda client: json_post(client, BLOGS_URL, {"slug": "nul", "title": "F",
                                                 "description": "\x00"}),
    lambda client: json_patch(client, BLOG_URL, {"title": "Final\x00"}),
    lambda client: json_patch(client, BLOG_URL, {"description": "\x00"}),
    lambda client: client.post(POSTS_URL, {"client_id": str(uuid.uuid4()), "body": "a\x00"}),
], ids=["post body", "blog title", "blog description", "new title", "new description",
        "form body"])
def test_text_with_a_nul_character_is_400_on_every_database(owner_client, blog, send):
    head = Blog.objects.get(pk=blog.pk).head
    assert_error(send(owner_client), 400, "invalid")
    assert Blog.objects.get(pk=blog.pk).head == head
    assert not Blog.objects.filter(slug="nul").exists()


def test_a_post_edit_with_a_nul_character_is_400(author_client, make_post):
    post_id = make_post("Kick-off").data["id"]
    assert_error(json_patch(author_client, post_url(post_id), {"body": "x\x00"}), 400, "invalid")
    assert Post.objects.get(pk=post_id).body == "Kick-off"
