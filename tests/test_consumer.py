"""The websocket protocol, through the full ASGI stack with WebsocketCommunicator."""

import asyncio
import inspect
import json
import threading
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from liveblog import selectors, services
from liveblog.live.feed import Feed
from liveblog.live.hub import get_hub
from liveblog.models import Blog, Event, Post
from tests.support.comms import Reader

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def publish(make_post):
    """Post from the database thread, as a view or another process would."""
    return database_sync_to_async(make_post)


@database_sync_to_async
def head_of(blog):
    return Blog.objects.get(pk=blog.pk).head


def no_database(monkeypatch, why):
    """Every selector (every read the runtime can make) fails the test if called."""

    def refuse(*args, **kwargs):
        raise AssertionError(why)

    for name, value in vars(selectors).items():
        if inspect.isfunction(value) and value.__module__ == selectors.__name__:
            monkeypatch.setattr(selectors, name, refuse)


def assert_gapless(frames, start):
    seqs = [frame["seq"] for frame in frames if frame["type"] == "event"]
    assert seqs == list(range(start + 1, start + 1 + len(seqs))), seqs
    return seqs


async def test_new_reader_gets_hello_snapshot_live_then_live_events(blog, publish):
    for number in range(3):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug)
    hello = await reader.expect("hello")
    assert hello == {"type": "hello", "blog": "final", "epoch": blog.epoch, "head": 3,
                     "heartbeat": 15}
    snapshot = await reader.expect("snapshot")
    assert (snapshot["epoch"], snapshot["head"]) == (blog.epoch, 3)
    assert [post["body"] for post in snapshot["posts"]] == ["update 2", "update 1", "update 0"]
    assert snapshot["blog"]["slug"] == "final" and snapshot["blog"]["head"] == 3
    assert snapshot["next_before"] is None
    assert await reader.expect("live") == {"type": "live", "head": 3}
    await publish("live one")
    event = await reader.expect("event")
    assert (event["seq"], event["kind"], event["post"]["body"]) == (4, "post.created", "live one")
    await reader.close()


async def test_reconnect_with_since_replays_exactly_the_missed_events(blog, publish):
    for number in range(5):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug, f"?since=2&epoch={blog.epoch}")
    assert (await reader.expect("hello"))["head"] == 5
    events, live = await reader.events_until_live()
    assert [event["seq"] for event in events] == [3, 4, 5]
    assert [event["post"]["body"] for event in events] == ["update 2", "update 3", "update 4"]
    assert live["head"] == 5
    stored = await database_sync_to_async(
        lambda: list(Event.objects.filter(seq__gt=2).values_list("frame", flat=True))
    )()
    assert [json.loads(frame) for frame in stored] == events
    await publish("after")
    assert (await reader.expect("event"))["seq"] == 6
    await reader.close()


async def test_since_without_epoch_means_the_current_epoch(blog, publish):
    await publish("one")
    await publish("two")
    reader = await Reader.open(blog.slug, "?since=1")
    await reader.expect("hello")
    events, _ = await reader.events_until_live()
    assert [event["seq"] for event in events] == [2]
    await reader.close()


async def test_since_zero_replays_the_whole_log(blog, publish):
    await publish("one")
    reader = await Reader.open(blog.slug, f"?since=0&epoch={blog.epoch}")
    await reader.expect("hello")
    events, _ = await reader.events_until_live()
    assert [event["seq"] for event in events] == [1]
    await reader.close()


@pytest.mark.parametrize("query", [
    "?since=1&epoch=another-epoch",  # numbers from a reset log
    "?since=9",  # ahead of head
    "?since=0&epoch={epoch}",  # with a replay window of 2, older than the window
])
async def test_a_client_that_must_start_over_gets_a_snapshot(blog, publish, settings, query):
    settings.LIVEBLOG_REPLAY_WINDOW = 2
    for number in range(3):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug, query.format(epoch=blog.epoch))
    await reader.expect("hello")
    snapshot = await reader.expect("snapshot")
    assert snapshot["head"] == 3 and len(snapshot["posts"]) == 3
    assert (await reader.expect("live"))["head"] == 3
    await reader.close()


async def test_a_bad_since_is_reported_and_answered_with_a_snapshot(blog, publish):
    await publish("one")
    reader = await Reader.open(blog.slug, "?since=abc")
    error = await reader.expect("error")
    assert error["code"] == "invalid"
    await reader.expect("hello")
    await reader.expect("snapshot")
    await reader.expect("live")
    await reader.close()


async def test_resync_replays_from_the_given_seq_then_goes_live_again(blog, publish):
    for number in range(4):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug, f"?since=4&epoch={blog.epoch}")
    await reader.expect("hello")
    await reader.events_until_live()
    await reader.send({"type": "resync", "since": 1})
    events, live = await reader.events_until_live()
    assert [event["seq"] for event in events] == [2, 3, 4]
    assert live["head"] == 4
    await reader.send({"type": "resync", "since": 1, "epoch": "stale"})
    assert (await reader.expect("snapshot"))["head"] == 4
    await reader.expect("live")
    await publish("live again")
    assert (await reader.expect("event"))["seq"] == 5
    await reader.close()


async def test_unknown_blog_gets_not_found_then_close_4404():
    reader = await Reader.open("no-such-blog")
    error = await reader.expect("error")
    assert error["code"] == "not_found"
    closing = await reader.communicator.receive_output(timeout=2)
    assert closing == {"type": "websocket.close", "code": 4404}


async def test_a_foreign_origin_is_refused(blog):
    evil = Reader(f"/ws/liveblog/{blog.slug}/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await evil.communicator.connect(timeout=3)
    assert not connected
    no_origin = Reader(f"/ws/liveblog/{blog.slug}/", headers=[])
    connected, _ = await no_origin.communicator.connect(timeout=3)
    assert not connected


@pytest.mark.parametrize("frame, code", [
    ("not json at all", "bad_json"),
    ("[" * 100_000 + "]" * 100_000, "too_large"),
    ("[" * 5000 + "]" * 5000, "bad_json"),  # deeper than Python recurses
    ("[1, 2]", "invalid"),
    ('{"type": "subscribe"}', "unknown_type"),
    ('{"no": "type"}', "invalid"),
    ('{"type": "resync"}', "invalid"),
    ('{"type": "resync", "since": "3"}', "invalid"),
    ('{"type": "resync", "since": -1}', "invalid"),
    ('{"type": "resync", "since": true}', "invalid"),
    ('{"type": "post", "client_id": 5, "body": "x"}', "invalid"),
    ('{"type": "post", "client_id": "not-a-uuid", "body": "x"}', "invalid"),
    ('{"type": "post", "client_id": "9b2f2c1e-7d0a-4f6e-9d43-1d0c4c1f0e11", "body": ["x"]}',
     "invalid"),
    ('{"type": "post", "client_id": "9b2f2c1e-7d0a-4f6e-9d43-1d0c4c1f0e11", "body": "x",'
     ' "pinned": "yes"}', "invalid"),
])
async def test_bad_frames_get_an_error_and_the_connection_stays(blog, author, frame, code):
    reader = await Reader.open(blog.slug, "?since=0", user=author)
    await reader.expect("hello")
    await reader.events_until_live()
    await reader.send(frame)
    error = await reader.expect("error")
    assert error["code"] == code and error["detail"]
    # Still open and working; and nothing was written.
    await reader.send({"type": "resync", "since": 0})
    await reader.events_until_live()
    assert await head_of(blog) == 0
    await reader.close()


async def test_oversized_and_binary_frames_get_an_error_and_the_connection_stays(blog):
    reader = await Reader.open(blog.slug, "?since=0")
    await reader.expect("hello")
    await reader.events_until_live()
    await reader.send(json.dumps({"type": "resync", "since": 0, "pad": "x" * 70_000}))
    assert (await reader.expect("error"))["code"] == "too_large"
    await reader.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await reader.expect("error"))["code"] == "invalid"
    await reader.send({"type": "resync", "since": 0})
    await reader.events_until_live()
    await reader.close()


def post_frame(client_id=None, body="From the stadium"):
    return {"type": "post", "client_id": str(client_id or uuid.uuid4()), "body": body}


async def test_anonymous_and_non_author_posts_are_refused(blog, stranger):
    for user, code in [(None, "not_authenticated"), (stranger, "forbidden")]:
        reader = await Reader.open(blog.slug, "?since=0", user=user)
        await reader.expect("hello")
        await reader.events_until_live()
        await reader.send(post_frame())
        assert (await reader.expect("error"))["code"] == code
        assert await reader.silent()  # no event: nothing was written
        await reader.close()
    assert await head_of(blog) == 0
    assert not await database_sync_to_async(Post.objects.exists)()


async def test_an_author_posts_over_the_socket_and_a_retry_does_not_double_post(blog, author):
    reader = await Reader.open(blog.slug, "?since=0", user=author)
    await reader.expect("hello")
    await reader.events_until_live()
    client_id = uuid.uuid4()
    await reader.send(post_frame(client_id, "**Goal!**"))
    frames = [await reader.next(), await reader.next()]  # the ack and the live event
    ack = next(frame for frame in frames if frame["type"] == "ack")
    event = next(frame for frame in frames if frame["type"] == "event")
    assert ack["client_id"] == str(client_id) and ack["seq"] == 1
    assert ack["post"]["html"] == "<p><strong>Goal!</strong></p>"
    assert event["seq"] == 1 and event["post"] == ack["post"]
    await reader.send(post_frame(client_id, "**Goal!**"))
    retry = await reader.expect("ack")
    assert (retry["seq"], retry["post"]) == (1, ack["post"])
    assert await reader.silent()
    assert await head_of(blog) == 1
    await reader.close()


async def test_ping_carries_the_head_and_never_lands_inside_a_replay(blog, publish, settings):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    await publish("one")
    reader = await Reader.open(blog.slug, "?since=0")
    assert (await reader.expect("hello"))["heartbeat"] == 0.2
    await reader.events_until_live()
    ping = await reader.expect("ping", timeout=2)
    assert ping == {"type": "ping", "head": 1}
    await reader.close()


async def test_replay_racing_live_posts_loses_and_duplicates_nothing(
    blog, author, publish, monkeypatch
):
    """Posts committed while the consumer reads the log, and right after: the reader gets each
    seq once, in order (the consumer subscribed first, held live events, dropped replayed ones)."""
    for number in range(3):
        await publish(f"before {number}")
    real_events_range = selectors.events_range

    def racing_replay_read(blog_id, epoch, after, upto):
        if after != 1:  # not the replay's read (the hub reading its ring when it starts)
            return real_events_range(blog_id, epoch, after, upto)
        # These commit (and broadcast) after the hub subscription, before the read...
        for number in range(3):
            services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                                 body=f"during {number}")
        rows = real_events_range(blog_id, epoch, after, upto)
        # ...and these after the read, while the replay is still to be sent.
        for number in range(3):
            services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                                 body=f"after {number}")
        return rows

    monkeypatch.setattr(selectors, "events_range", racing_replay_read)
    # As if the hub's ring did not reach back that far: the replay comes from the database.
    monkeypatch.setattr(Feed, "replay", lambda feed, since: None)
    reader = await Reader.open(blog.slug, f"?since=1&epoch={blog.epoch}")
    await reader.expect("hello")
    frames = await reader.until(lambda frame: frame.get("seq") == 9)
    events = [frame for frame in frames if frame["type"] == "event"]
    assert [event["seq"] for event in events] == list(range(2, 10))
    assert [frame["type"] for frame in frames].count("live") == 1
    bodies = [event["post"]["body"] for event in events]
    assert bodies == ["before 1", "before 2", "during 0", "during 1", "during 2",
                      "after 0", "after 1", "after 2"]
    assert await reader.silent()
    await reader.close()


async def test_readers_joining_during_a_stream_of_posts_see_every_seq_once(blog, author):
    """A writer thread posts 60 times while readers connect from different positions."""
    total = 60
    started = threading.Event()

    def writer():
        try:
            for number in range(total):
                services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                                     body=f"post {number}")
                if number == 5:
                    started.set()
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    readers = []
    for since in [0, 2, 4, None, 1]:
        query = "" if since is None else f"?since={since}&epoch={blog.epoch}"
        readers.append((since, await Reader.open(blog.slug, query)))
        await asyncio.sleep(0)  # let the writer move on between joins
    await asyncio.get_running_loop().run_in_executor(None, thread.join, 60)
    for since, reader in readers:
        frames = await reader.until(lambda frame: frame.get("seq") == total
                                    or frame.get("head") == total and frame["type"] == "live",
                                    timeout=10)
        start = since if since is not None else next(
            frame["head"] for frame in frames if frame["type"] == "snapshot"
        )
        seqs = assert_gapless(frames, start)
        assert start + len(seqs) == total
        await reader.close()


async def test_the_hub_holds_one_subscription_per_blog_and_lets_go(blog):
    readers = [await Reader.open(blog.slug, "?since=0") for _ in range(3)]
    for reader in readers:
        await reader.expect("hello")
        await reader.events_until_live()
    hub = get_hub()
    assert hub.reader_count(blog.pk) == 3
    layer = get_channel_layer()
    assert len(layer.groups[f"liveblog.{blog.pk}"]) == 1  # one member for the whole process
    for reader in readers:
        await reader.close()
    assert hub.reader_count(blog.pk) == 0
    assert not layer.groups.get(f"liveblog.{blog.pk}")


async def test_other_frames_than_text_json_do_not_disturb_other_readers(blog, publish):
    rude = await Reader.open(blog.slug, "?since=0")
    polite = await Reader.open(blog.slug, "?since=0")
    for reader in (rude, polite):
        await reader.expect("hello")
        await reader.events_until_live()
    for _ in range(5):
        await rude.send("garbage")
    await publish("still flowing")
    assert (await polite.expect("event"))["seq"] == 1
    await rude.close()
    await polite.close()



async def test_a_database_failure_during_catch_up_closes_cleanly(blog, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("database is gone")

    monkeypatch.setattr(selectors, "blog_snapshot", broken)
    reader = await Reader.open(blog.slug)  # a snapshot, read from the database
    error = await reader.expect("error")
    assert error["code"] == "unavailable"
    assert await reader.communicator.receive_output(timeout=2) == {
        "type": "websocket.close", "code": 1011,
    }
    await reader.communicator.wait(timeout=2)
    assert get_hub().reader_count(blog.pk) == 0


async def test_a_consumer_that_crashes_leaves_the_hub(blog, monkeypatch):
    from liveblog.consumers import LiveblogConsumer

    async def crash(self, text_data=None, bytes_data=None):
        raise RuntimeError("a bug in a handler")

    reader = await Reader.open(blog.slug, "?since=0")
    await reader.expect("hello")
    await reader.events_until_live()
    assert get_hub().reader_count(blog.pk) == 1
    monkeypatch.setattr(LiveblogConsumer, "receive", crash)
    await reader.send({"type": "resync", "since": 0})
    with pytest.raises(RuntimeError):
        await reader.communicator.wait(timeout=2)
    assert get_hub().reader_count(blog.pk) == 0


async def test_a_log_reset_sends_connected_readers_a_snapshot_of_the_new_epoch(
    blog, publish, owner
):
    for number in range(3):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug, f"?since=3&epoch={blog.epoch}")
    await reader.expect("hello")
    await reader.events_until_live()
    old_epoch = blog.epoch
    await database_sync_to_async(services.blog_log_reset)(actor=owner, blog_id=blog.pk)
    snapshot = await reader.expect("snapshot")
    assert snapshot["epoch"] != old_epoch and snapshot["head"] == 0
    assert len(snapshot["posts"]) == 3
    assert (await reader.expect("live"))["head"] == 0
    await publish("new epoch, first post")
    event = await reader.expect("event")
    assert event["seq"] == 1 and event["post"]["body"] == "new epoch, first post"
    # Reconnecting with the old epoch's numbers: a snapshot, never a replay.
    late = await Reader.open(blog.slug, f"?since=3&epoch={old_epoch}")
    await late.expect("hello")
    assert (await late.expect("snapshot"))["head"] == 1
    await late.close()
    await reader.close()


async def test_a_reconnect_within_the_ring_is_replayed_without_the_database(
    blog, publish, monkeypatch
):
    first = await Reader.open(blog.slug, f"?since=0&epoch={blog.epoch}")
    await first.expect("hello")
    await first.events_until_live()
    for number in range(5):
        await publish(f"update {number}")
    await first.until(lambda frame: frame.get("seq") == 5)

    no_database(monkeypatch, "a replay within the ring must not read the database")
    again = await Reader.open(blog.slug, f"?since=2&epoch={blog.epoch}")
    assert (await again.expect("hello"))["head"] == 5
    events, live = await again.events_until_live()
    assert [event["seq"] for event in events] == [3, 4, 5]
    assert [event["post"]["body"] for event in events] == ["update 2", "update 3", "update 4"]
    # A snapshot at an unchanged head is built once and then served from memory too.
    monkeypatch.undo()
    fresh = await Reader.open(blog.slug)
    await fresh.expect("hello")
    snapshot = await fresh.expect("snapshot")
    no_database(monkeypatch, "a snapshot at an unchanged head is served from memory")
    another = await Reader.open(blog.slug)
    await another.expect("hello")
    assert await another.expect("snapshot") == snapshot
    for reader in (first, again, fresh, another):
        await reader.close()


async def test_readers_arriving_together_share_one_snapshot_read(blog, publish, monkeypatch):
    await publish("one")
    keeper = await Reader.open(blog.slug, "?since=0")  # keeps the hub's feed started
    await keeper.expect("hello")
    await keeper.events_until_live()
    reads = []
    real_snapshot = selectors.blog_snapshot

    def counted(blog_id):
        reads.append(blog_id)
        return real_snapshot(blog_id)

    monkeypatch.setattr(selectors, "blog_snapshot", counted)
    readers = await asyncio.gather(*[Reader.open(blog.slug) for _ in range(20)])
    for reader in readers:
        await reader.expect("hello")
        assert (await reader.expect("snapshot"))["head"] == 1
        await reader.expect("live")
    assert len(reads) == 1
    for reader in (keeper, *readers):
        await reader.close()


async def test_rights_are_checked_against_committed_rows_not_the_open_socket(
    blog, owner, author, django_user_model
):
    """An owner replaced and an author removed while their sockets are open: their next `post`
    frames are refused and nothing is written (nothing a socket or the hub holds grants a
    right)."""

    @database_sync_to_async
    def hand_over_to_a_new_owner():
        first_owner = django_user_model.objects.create_user("oscar", password="x")
        services.blog_update(actor=owner, blog_id=blog.pk, owner=first_owner)
        return first_owner

    first_owner = await hand_over_to_a_new_owner()
    sockets = {}
    for user in (first_owner, author):
        sockets[user.username] = reader = await Reader.open(blog.slug, "?since=0", user=user)
        await reader.expect("hello")
        await reader.events_until_live()
    await sockets["oscar"].send(post_frame(body="still mine"))
    # The owner may post: its ack and the event, in either order (nothing orders the two).
    answers = [await sockets["oscar"].next(), await sockets["oscar"].next()]
    assert sorted((frame["type"], frame["seq"]) for frame in answers) == [("ack", 1), ("event", 1)]
    await sockets["alice"].until(lambda frame: frame.get("seq") == 1)

    @database_sync_to_async
    def take_their_rights_away():
        replacement = django_user_model.objects.create_user("nora", password="x")
        services.blog_update(actor=owner, blog_id=blog.pk, owner=replacement)
        Blog.objects.get(pk=blog.pk).authors.remove(first_owner, author)

    await take_their_rights_away()
    for reader in sockets.values():
        await reader.send(post_frame(body="after losing the blog"))
        assert (await reader.expect("error"))["code"] == "forbidden"
    for reader in sockets.values():
        assert await reader.silent()
        await reader.close()
    assert await head_of(blog) == 1
    assert await database_sync_to_async(Post.objects.count)() == 1


async def test_a_reader_costs_no_thread_hop_to_close_database_connections(blog, monkeypatch):
    """Channels closes old database connections in a worker thread before every message a
    consumer handles; a reader's consumer does its database work in `in_db_thread`, which does
    that itself, so its connect and disconnect skip the hop (a storm is thousands of both)."""
    import channels.consumer

    hops = []

    async def counted():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    reader = await Reader.open(blog.slug)
    await reader.until(lambda frame: frame["type"] == "live")
    await reader.send({"type": "resync", "since": 0})
    await reader.until(lambda frame: frame["type"] == "live")
    await reader.close()
    assert hops == [1]  # the resync frame's
