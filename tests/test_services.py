"""The event log: gapless per-blog numbering, idempotent creates, events after commit."""

import json
import threading
import uuid

import pytest
from django.db import close_old_connections, connection, transaction

from liveblog import services
from liveblog.errors import Conflict, Invalid, NotAllowed, NotAuthenticated, NotFound
from liveblog.live import broadcast
from liveblog.models import Blog, Event, Post


def seqs(blog):
    return list(Event.objects.filter(blog=blog).order_by("seq").values_list("seq", flat=True))


def frame_of(blog, seq):
    return json.loads(Event.objects.get(blog=blog, seq=seq).frame)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_take_gapless_unique_seqs(blog, author):
    """4 writer threads x 50 posts, each thread its own database connection: seqs 1..200."""
    writers, per_writer = 4, 50
    start = threading.Barrier(writers)
    errors = []

    def write(writer):
        try:
            start.wait()
            for number in range(per_writer):
                services.post_create(
                    actor=author, blog_id=blog.pk, client_id=uuid.uuid4(), body=f"{writer}-{number}"
                )
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    total = writers * per_writer
    assert seqs(blog) == list(range(1, total + 1))
    blog.refresh_from_db()
    assert blog.head == total
    assert Post.objects.filter(blog=blog).count() == total
    # Each event numbers exactly one post, and a writer's posts are in its own order.
    created = [frame_of(blog, seq)["post"]["body"] for seq in range(1, total + 1)]
    for writer in range(writers):
        mine = [body for body in created if body.startswith(f"{writer}-")]
        assert mine == [f"{writer}-{number}" for number in range(per_writer)]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_takes_no_seq(blog, make_post):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            make_post("never happened")
            raise RuntimeError("the caller's transaction fails after the post")
    assert seqs(blog) == []
    assert make_post("first real post").seq == 1


@pytest.mark.django_db
def test_first_post_of_a_new_blog_is_seq_1_and_blog_creation_is_no_event(blog, make_post):
    assert blog.head == 0 and not Event.objects.exists()
    written = make_post("Kick-off")
    assert (written.seq, written.created) == (1, True)
    assert written.data["body"] == "Kick-off"


@pytest.mark.django_db
def test_same_client_id_returns_the_first_answer_and_appends_nothing(blog, make_post):
    client_id = uuid.uuid4()
    first = make_post("Goal!", client_id=client_id)
    again = make_post("Goal! (retry with other text)", client_id=client_id)
    assert again.created is False
    assert (again.seq, again.data) == (first.seq, first.data)
    assert seqs(blog) == [1]
    assert Post.objects.count() == 1


@pytest.mark.django_db
def test_idempotent_create_survives_edit_and_delete(blog, make_post, author):
    client_id = uuid.uuid4()
    first = make_post("Goal!", client_id=client_id)
    services.post_update(actor=author, blog_id=blog.pk, post_id=first.data["id"], body="Own goal")
    services.post_delete(actor=author, blog_id=blog.pk, post_id=first.data["id"])
    retry = make_post("Goal!", client_id=client_id)
    assert (retry.seq, retry.data, retry.created) == (first.seq, first.data, False)
    assert seqs(blog) == [1, 2, 3]


@pytest.mark.django_db
def test_client_ids_are_per_blog(blog, owner, author, make_post):
    other = services.blog_create(actor=owner, slug="semi", title="Semi-final")
    other.authors.add(author)
    client_id = uuid.uuid4()
    make_post("in the final", client_id=client_id)
    there = services.post_create(
        actor=author, blog_id=other.pk, client_id=client_id, body="in the semi"
    )
    assert there.created and there.seq == 1


@pytest.mark.django_db
def test_every_visible_change_is_one_numbered_event(blog, make_post, author, owner):
    post_id = make_post("Kick-off").data["id"]
    services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, body="Kick-off!")
    services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, pinned=True)
    services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, key_event=True)
    services.blog_update(actor=owner, blog_id=blog.pk, title="Cup final: live")
    services.blog_update(actor=owner, blog_id=blog.pk, status="ended")
    services.post_delete(actor=author, blog_id=blog.pk, post_id=post_id)
    kinds = list(Event.objects.filter(blog=blog).order_by("seq").values_list("seq", "kind"))
    assert kinds == [
        (1, "post.created"), (2, "post.updated"), (3, "post.updated"), (4, "post.updated"),
        (5, "blog.updated"), (6, "blog.updated"), (7, "post.deleted"),
    ]
    blog.refresh_from_db()
    assert blog.head == 7
    assert frame_of(blog, 2)["post"]["edited_at"] is not None
    assert frame_of(blog, 3)["post"]["pinned"] is True
    assert frame_of(blog, 4)["post"]["key_event"] is True
    assert frame_of(blog, 6)["blog"] == {**frame_of(blog, 6)["blog"], "status": "ended", "head": 6}
    assert frame_of(blog, 7)["post"] == {"id": post_id, "deleted": True}


@pytest.mark.django_db
def test_an_event_frame_is_the_wire_frame(blog, make_post):
    make_post("Goal!")
    frame = frame_of(blog, 1)
    assert set(frame) == {"type", "seq", "kind", "at", "post"}
    assert (frame["type"], frame["seq"], frame["kind"]) == ("event", 1, "post.created")
    assert set(frame["post"]) == {
        "id", "client_id", "author", "body", "html", "created_at", "edited_at", "pinned",
        "key_event", "photo",
    }
    assert frame["post"]["author"] == {"username": "alice", "name": "Alice Author"}
    assert frame["post"]["created_at"].endswith("Z")


@pytest.mark.django_db
def test_changes_that_change_nothing_take_no_seq(blog, make_post, author, owner):
    post_id = make_post("Kick-off").data["id"]
    same = services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, body="Kick-off")
    assert same.seq is None
    assert services.blog_update(actor=owner, blog_id=blog.pk, title=blog.title).seq is None
    first = services.post_delete(actor=author, blog_id=blog.pk, post_id=post_id)
    again = services.post_delete(actor=author, blog_id=blog.pk, post_id=post_id)
    assert again.seq == first.seq == 2
    assert seqs(blog) == [1, 2]


@pytest.mark.django_db
def test_authorization_on_every_write(blog, make_post, author, stranger, owner, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    post_id = make_post("mine").data["id"]
    with pytest.raises(NotAuthenticated):
        services.post_create(
            actor=AnonymousUser(), blog_id=blog.pk, client_id=uuid.uuid4(), body="x"
        )
    with pytest.raises(NotAllowed):
        services.post_create(actor=stranger, blog_id=blog.pk, client_id=uuid.uuid4(), body="x")
    with pytest.raises(NotAllowed):
        services.post_update(actor=stranger, blog_id=blog.pk, post_id=post_id, body="x")
    with pytest.raises(NotAllowed):
        services.blog_update(actor=author, blog_id=blog.pk, status="ended")
    with pytest.raises(NotAllowed):
        services.blog_create(actor=author, slug="mine", title="Mine")
    # A contributor may not touch a published post; the owner (and any editor) may.
    bob = django_user_model.objects.create_user("bob")
    blog.authors.add(bob, through_defaults={"role": "contributor"})
    with pytest.raises(NotAllowed):
        services.post_delete(actor=bob, blog_id=blog.pk, post_id=post_id)
    with pytest.raises(NotAllowed):
        services.post_update(actor=bob, blog_id=blog.pk, post_id=post_id, body="x")
    assert services.post_update(actor=owner, blog_id=blog.pk, post_id=post_id, pinned=True).seq == 2
    inactive = django_user_model.objects.create_user("gone", is_active=False)
    blog.authors.add(inactive)
    with pytest.raises(NotAllowed):
        services.post_create(actor=inactive, blog_id=blog.pk, client_id=uuid.uuid4(), body="x")
    assert seqs(blog) == [1, 2]


@pytest.mark.django_db
def test_bad_input_is_refused_and_changes_nothing(blog, make_post, author, owner, settings):
    settings.LIVEBLOG_MAX_BODY_CHARS = 10
    for body in ["", "   \n", "x" * 11]:
        with pytest.raises(Invalid):
            make_post(body)
    with pytest.raises(NotFound):
        services.post_update(actor=author, blog_id=blog.pk, post_id=999, body="x")
    with pytest.raises(Invalid):
        services.blog_update(actor=owner, blog_id=blog.pk, status="paused")
    with pytest.raises(Invalid):
        services.blog_update(actor=owner, blog_id=blog.pk, title=" ")
    with pytest.raises(Conflict):
        services.blog_create(actor=owner, slug="final", title="Again")
    with pytest.raises(Invalid):
        services.blog_create(actor=owner, slug="no spaces", title="Bad slug")
    assert seqs(blog) == []


@pytest.mark.django_db
def test_events_are_broadcast_only_after_commit(
    blog, make_post, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        broadcast, "event_publish", lambda **message: sent.append(message)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_post("Goal!")
        make_post("Second goal!")
    assert sent == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    assert [message["seq"] for message in sent] == [1, 2]
    assert sent[0]["frame"] == Event.objects.get(blog=blog, seq=1).frame  # encoded once
    assert sent[0]["blog_id"] == blog.pk


@pytest.mark.django_db
def test_a_failing_channel_layer_never_fails_the_write(
    blog, make_post, monkeypatch, django_capture_on_commit_callbacks
):
    from channels.layers import get_channel_layer

    async def broken_group_send(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(get_channel_layer(), "group_send", broken_group_send)
    with django_capture_on_commit_callbacks(execute=True):
        written = make_post("Goal while redis is down")
    assert written.seq == 1
    assert Blog.objects.get(pk=blog.pk).head == 1


@pytest.mark.django_db
def test_a_log_reset_starts_a_new_epoch_at_head_0(blog, make_post, owner, author):
    first = make_post("before the reset")
    old_epoch = blog.epoch
    services.blog_log_reset(actor=owner, blog_id=blog.pk)
    blog.refresh_from_db()
    assert blog.epoch != old_epoch and blog.head == 0
    assert seqs(blog) == []
    assert Post.objects.filter(blog=blog).count() == 1  # posts stay
    assert make_post("after the reset").seq == 1
    # A retry of a post from before the reset is still recognised, but has no seq any more.
    retry = make_post("before the reset", client_id=uuid.UUID(first.data["client_id"]))
    assert (retry.created, retry.seq, retry.data["id"]) == (False, None, first.data["id"])
    with pytest.raises(NotAllowed):
        services.blog_log_reset(actor=author, blog_id=blog.pk)
