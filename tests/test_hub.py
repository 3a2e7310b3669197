"""The per-process hub: gapless ordered delivery over a lossy, reordering channel layer."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from liveblog.live import broadcast
from liveblog.live.broadcast import blog_group
from liveblog.live.hub import get_hub
from liveblog.models import Event
from tests.support.comms import Reader

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A hub subscriber that records what it is handed."""

    def __init__(self, fail=False):
        self.seqs, self.pings, self.fail = [], [], fail
        self.resets = 0
        self.changed = asyncio.Event()

    def hub_reset(self):
        self.resets += 1
        self.changed.set()

    def hub_events(self, frames):
        self.seqs.extend(frame.seq for frame in frames)
        self.changed.set()
        if self.fail:
            raise RuntimeError("this reader's socket is broken")

    def hub_ping(self, head):
        self.pings.append(head)
        self.changed.set()

    async def wait_for(self, condition, timeout=3):
        async def poll():
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise AssertionError(f"not met in {timeout}s: seqs={self.seqs} pings={self.pings}") \
                from None


@pytest.fixture
def silent_publish(make_post, monkeypatch):
    """Post with the broadcast lost (as if the channel layer dropped it)."""

    def post(body="lost"):
        with monkeypatch.context() as patch:
            patch.setattr(broadcast, "event_publish", lambda **message: None)
            return make_post(body)

    return database_sync_to_async(post)


@database_sync_to_async
def frame(blog, seq):
    return Event.objects.get(blog=blog, seq=seq).frame


async def send_raw(blog, seq):
    """Deliver a stored event through the channel layer by hand, in any order we like."""
    await get_channel_layer().group_send(blog_group(blog.pk), {
        "type": broadcast.EVENT_MESSAGE_TYPE, "blog": blog.pk, "epoch": blog.epoch, "seq": seq,
        "frame": await frame(blog, seq),
    })


async def test_reordered_broadcasts_reach_readers_in_order(blog, silent_publish):
    recorder = Recorder()
    await get_hub().subscribe(blog.pk, recorder)
    await silent_publish("one")
    await silent_publish("two")
    await send_raw(blog, 2)
    await send_raw(blog, 1)
    await recorder.wait_for(lambda: len(recorder.seqs) >= 2)
    assert recorder.seqs == [1, 2]
    await get_hub().close()


async def test_duplicates_are_delivered_once(blog, silent_publish):
    recorder = Recorder()
    await get_hub().subscribe(blog.pk, recorder)
    for body in ("one", "two", "three"):
        await silent_publish(body)
    for seq in (1, 1, 2, 1, 2, 3):
        await send_raw(blog, seq)
    # Messages on one channel arrive in order: once 3 is in, every duplicate was seen.
    await recorder.wait_for(lambda: 3 in recorder.seqs)
    assert recorder.seqs == [1, 2, 3]
    await get_hub().close()


async def test_a_gap_the_layer_leaves_is_filled_from_the_log(blog, silent_publish):
    recorder = Recorder()
    await get_hub().subscribe(blog.pk, recorder)
    for body in ("one", "two", "three"):
        await silent_publish(body)
    await send_raw(blog, 3)  # 1 and 2 were lost on the way
    await recorder.wait_for(lambda: len(recorder.seqs) >= 3)
    assert recorder.seqs == [1, 2, 3]
    await get_hub().close()


async def test_the_heartbeat_delivers_what_the_layer_lost_without_a_resync(
    blog, silent_publish, settings
):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    reader = await Reader.open(blog.slug, f"?since=0&epoch={blog.epoch}")
    await reader.expect("hello")
    await reader.events_until_live()
    await silent_publish("lost in the layer")
    frames = await reader.until(lambda frame: frame["type"] == "event", timeout=3)
    assert frames[-1]["seq"] == 1
    assert (await reader.expect("ping", timeout=2))["head"] == 1
    await reader.close()


async def test_live_fan_out_heals_after_the_layer_forgets_its_groups(blog, make_post, settings):
    """A Redis restart forgets group memberships; each heartbeat re-joins them."""
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    reader = await Reader.open(blog.slug, f"?since=0&epoch={blog.epoch}")
    await reader.expect("hello")
    await reader.events_until_live()
    get_channel_layer().groups.clear()
    await reader.expect("ping", timeout=2)  # a heartbeat has run: membership is back
    broadcasts = []
    real_publish = broadcast.event_publish

    def spy(**message):
        broadcasts.append(message["seq"])
        real_publish(**message)

    broadcast.event_publish = spy
    try:
        await database_sync_to_async(make_post)("live again")
    finally:
        broadcast.event_publish = real_publish
    event = await reader.expect("event", timeout=0.15)  # sooner than the next heartbeat
    assert event["seq"] == 1 and broadcasts == [1]
    await reader.close()


async def test_a_hub_started_while_the_layer_is_unreachable_serves_then_attaches(
    blog, make_post, settings, monkeypatch
):
    """Redis down when a process's first reader arrives (a deploy during an outage): the reader
    is served from the log, and the hub attaches to the layer at a heartbeat once it is back."""
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    layer = get_channel_layer()
    real_new_channel = layer.new_channel

    async def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(layer, "new_channel", unreachable)
    await database_sync_to_async(make_post)("before")
    reader = await Reader.open(blog.slug, f"?since=0&epoch={blog.epoch}")
    await reader.expect("hello")
    events, _ = await reader.events_until_live()
    assert [event["seq"] for event in events] == [1]
    await database_sync_to_async(make_post)("during")  # healed from the log at a heartbeat
    assert (await reader.expect("event", timeout=2))["seq"] == 2
    assert get_hub().channel is None

    monkeypatch.setattr(layer, "new_channel", real_new_channel)  # the layer is back
    await reader.expect("ping", timeout=2)
    await reader.expect("ping", timeout=2)  # a full heartbeat after the return: attached
    assert get_hub().channel is not None
    assert get_hub().channel in layer.groups[blog_group(blog.pk)]
    await database_sync_to_async(make_post)("live")
    assert (await reader.expect("event", timeout=0.15))["seq"] == 3  # before the next heartbeat
    await reader.close()


async def test_one_failing_reader_does_not_stop_the_others(blog, make_post):
    broken, healthy = Recorder(fail=True), Recorder()
    hub = get_hub()
    await hub.subscribe(blog.pk, broken)
    await hub.subscribe(blog.pk, healthy)
    await database_sync_to_async(make_post)("one")
    await database_sync_to_async(make_post)("two")
    await healthy.wait_for(lambda: len(healthy.seqs) >= 2)
    assert healthy.seqs == broken.seqs == [1, 2]
    await hub.close()


async def test_last_reader_leaving_releases_the_group_and_a_new_one_rejoins(blog, make_post):
    hub = get_hub()
    layer = get_channel_layer()
    first = Recorder()
    await hub.subscribe(blog.pk, first)
    assert layer.groups.get(blog_group(blog.pk))
    await hub.unsubscribe(blog.pk, first)
    assert not layer.groups.get(blog_group(blog.pk))
    assert hub.channel is None  # nothing left to read or tick for
    second = Recorder()
    await hub.subscribe(blog.pk, second)
    await database_sync_to_async(make_post)("for the newcomer")
    await second.wait_for(lambda: second.seqs == [1])
    assert first.seqs == []
    await hub.close()


async def test_a_stream_outlives_its_last_reader_for_a_while(blog, make_post, settings,
                                                            monkeypatch):
    """A reader who comes back within the linger is caught up from the stream's memory (no read
    of the log's tail); after it, the stream ends and its group is left."""
    settings.LIVEBLOG_STREAM_LINGER_SECONDS = 60  # read when the last reader leaves
    hub = get_hub()
    layer = get_channel_layer()
    first = Recorder()
    await hub.subscribe(blog.pk, first)
    stream = hub.stream(blog.pk)
    await hub.unsubscribe(blog.pk, first)
    assert hub.stream(blog.pk) is stream and layer.groups.get(blog_group(blog.pk))
    tails = []
    monkeypatch.setattr(hub._log, "tail", lambda *args: tails.append(args))
    again = Recorder()
    await hub.subscribe(blog.pk, again)  # back in time: the same stream, no new read
    assert hub.stream(blog.pk) is stream and tails == []
    await database_sync_to_async(make_post)("while it is back")
    await again.wait_for(lambda: again.seqs == [1])
    settings.LIVEBLOG_STREAM_LINGER_SECONDS = 0.1
    await hub.unsubscribe(blog.pk, again)
    deadline = asyncio.get_running_loop().time() + 5
    # The stream is forgotten, its group left, and with nothing left to serve, the channel.
    while (hub.stream(blog.pk) is not None or layer.groups.get(blog_group(blog.pk))
           or hub.channel is not None):
        assert asyncio.get_running_loop().time() < deadline, "the stream did not end"
        await asyncio.sleep(0.05)
    await hub.close()


async def test_messages_of_another_epoch_are_dropped(blog, silent_publish):
    recorder = Recorder()
    await get_hub().subscribe(blog.pk, recorder)
    await silent_publish("one")
    await get_channel_layer().group_send(blog_group(blog.pk), {
        "type": broadcast.EVENT_MESSAGE_TYPE, "blog": blog.pk, "epoch": "old-epoch", "seq": 1,
        "frame": "{}",
    })
    await send_raw(blog, 1)
    await recorder.wait_for(lambda: recorder.seqs)
    assert recorder.seqs == [1]
    await get_hub().close()


async def test_a_reset_restarts_every_reader_at_once_or_at_the_next_heartbeat(
    blog, make_post, owner, settings, monkeypatch
):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    from liveblog import services

    recorder = Recorder()
    hub = get_hub()
    await hub.subscribe(blog.pk, recorder)
    await database_sync_to_async(make_post)("one")
    await recorder.wait_for(lambda: recorder.seqs == [1])
    # Reset here: the broadcast reaches the hub at once.
    await database_sync_to_async(services.blog_log_reset)(actor=owner, blog_id=blog.pk)
    await recorder.wait_for(lambda: recorder.resets == 1, timeout=0.15)
    await database_sync_to_async(make_post)("first of the new epoch")
    await recorder.wait_for(lambda: recorder.seqs == [1, 1])
    # Reset in another process (no broadcast reaches us): the heartbeat notices the new epoch.
    monkeypatch.setattr(broadcast, "reset_publish", lambda **message: None)
    await database_sync_to_async(services.blog_log_reset)(actor=owner, blog_id=blog.pk)
    await recorder.wait_for(lambda: recorder.resets == 2, timeout=2)
    await hub.close()


async def test_the_ring_keeps_the_newest_window_of_events(blog, make_post, settings):
    settings.LIVEBLOG_REPLAY_WINDOW = 3
    recorder = Recorder()
    hub = get_hub()
    await hub.subscribe(blog.pk, recorder)
    for number in range(5):
        await database_sync_to_async(make_post)(f"update {number}")
    await recorder.wait_for(lambda: recorder.seqs == [1, 2, 3, 4, 5])
    feed = hub.stream(blog.pk).feed
    assert feed.ring_seqs() == [3, 4, 5]  # the oldest were evicted
    assert [json.loads(frame.text)["seq"] for frame in feed.replay(2)] == [3, 4, 5]
    assert feed.replay(1) is None  # not in memory any more (and beyond the window)
    catch_up = hub.catch_up(blog.pk, since=1, epoch=blog.epoch)
    frames = [json.loads(frame.text) async for frame in catch_up]
    assert [frame["type"] for frame in frames] == ["snapshot"] and catch_up.head == 5
    await hub.close()


async def test_a_hub_joining_late_fills_its_ring_from_the_log(blog, make_post, settings):
    settings.LIVEBLOG_REPLAY_WINDOW = 4
    for number in range(6):
        await database_sync_to_async(make_post)(f"update {number}")
    hub = get_hub()
    await hub.subscribe(blog.pk, Recorder())
    assert hub.stream(blog.pk).feed.ring_seqs() == [3, 4, 5, 6]
    await hub.close()
