"""The live runtime's parts on their own, with fakes in place of the database and the layer:
the snapshot cache and its single flight, the catch-up decision, the layer link."""

import asyncio

import pytest

from liveblog.live.catchup import CatchUp
from liveblog.live.feed import Feed
from liveblog.live.layer import LayerLink
from liveblog.live.snapshots import Snapshot, SnapshotCache


async def until(condition, turns=100):
    """Let the loop run until `condition()` holds (a bounded number of turns, no time)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


# --- Snapshots ----------------------------------------------------------------------------------


class SnapshotReads:
    """A database whose snapshot reads finish when the test says so."""

    def __init__(self, head=3, epoch="E1"):
        self.head, self.epoch = head, epoch
        self.started = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self):
        self.started += 1
        head = self.head  # what the read sees when it starts
        await self.gate.wait()
        return Snapshot(epoch=self.epoch, head=head, text=f"snapshot at {head}")


async def test_a_snapshot_at_an_unchanged_head_is_read_once():
    reads = SnapshotReads()
    cache = SnapshotCache(reads.read)
    first = await cache.at(head=3, epoch="E1")
    again = await cache.at(head=3, epoch="E1")
    assert first is again and reads.started == 1
    reads.head = 4
    assert (await cache.at(head=4, epoch="E1")).head == 4  # the head moved: read again
    assert reads.started == 2


async def test_readers_arriving_together_share_one_read():
    reads = SnapshotReads()
    reads.gate.clear()
    cache = SnapshotCache(reads.read)
    waiting = [asyncio.ensure_future(cache.at(head=3, epoch="E1")) for _ in range(50)]
    await asyncio.sleep(0)
    reads.gate.set()
    snapshots = await asyncio.gather(*waiting)
    assert reads.started == 1 and {snapshot.head for snapshot in snapshots} == {3}


async def test_a_shared_read_that_began_too_early_is_not_enough():
    """A reader registered at head 4 must not get a snapshot read at head 3: it would miss 4,
    which was delivered live before it registered."""
    reads = SnapshotReads(head=3)
    reads.gate.clear()
    cache = SnapshotCache(reads.read)
    early = asyncio.ensure_future(cache.at(head=3, epoch="E1"))
    await until(lambda: reads.started == 1)  # the shared read is under way, at head 3
    reads.head = 4
    late = asyncio.ensure_future(cache.at(head=4, epoch="E1"))
    await asyncio.sleep(0)
    reads.gate.set()
    assert (await early).head == 3
    assert (await late).head == 4 and reads.started == 2


async def test_forgetting_drops_the_kept_snapshot():
    reads = SnapshotReads()
    cache = SnapshotCache(reads.read)
    await cache.at(head=3, epoch="E1")
    cache.forget()
    reads.epoch, reads.head = "E2", 0
    assert (await cache.at(head=0, epoch="E2")).epoch == "E2"
    assert reads.started == 2


# --- Catch-up -----------------------------------------------------------------------------------


class FakeLog:
    def __init__(self, events, epoch="E1"):
        self.events = dict(events)
        self.epoch = epoch
        self.reads = []

    async def read_events(self, after, upto):
        self.reads.append((after, upto))
        return [(seq, self.events[seq]) for seq in range(after + 1, upto + 1)
                if seq in self.events]

    async def read_snapshot(self):
        return Snapshot(epoch=self.epoch, head=max(self.events, default=0), text="snapshot")


def a_feed(head, ring_from, window):
    recent = [(seq, f"e{seq}") for seq in range(ring_from, head + 1)]
    return Feed(head=head, epoch="E1", recent=recent, window=window)


async def frames_of(catch_up):
    return [frame.text async for frame in catch_up]


async def plan(feed, log, since, epoch="E1", window=10):
    catch_up = CatchUp.plan(feed, since=since, epoch=epoch, window=window,
                            snapshot=log.read_snapshot, events=log.read_events)
    return catch_up, await frames_of(catch_up)


@pytest.mark.parametrize("since, epoch", [
    (None, None),  # no position
    (2, "E0"),  # another epoch's numbers
    (9, "E1"),  # beyond the head
    (0, "E1"),  # further behind than the window (head 6, window 5)
])
async def test_a_reader_that_must_start_over_gets_a_snapshot(since, epoch):
    log = FakeLog({seq: f"e{seq}" for seq in range(1, 7)})
    catch_up, frames = await plan(a_feed(6, 2, 5), log, since, epoch, window=5)
    assert frames == ["snapshot"] and catch_up.head == 6 and log.reads == []


async def test_a_replay_within_the_ring_comes_from_memory():
    log = FakeLog({})
    catch_up, frames = await plan(a_feed(6, 1, 10), log, since=3, epoch=None)
    assert frames == ["e4", "e5", "e6"] and catch_up.head == 6 and log.reads == []


async def test_a_replay_the_ring_does_not_hold_comes_from_the_log_in_pages(monkeypatch):
    from liveblog.live import catchup

    monkeypatch.setattr(catchup, "LOG_PAGE", 2)
    log = FakeLog({seq: f"log{seq}" for seq in range(1, 7)})
    feed = Feed(head=6, epoch="E1", recent=[], window=10)  # nothing in memory
    catch_up, frames = await plan(feed, log, since=1)
    assert frames == ["log2", "log3", "log4", "log5", "log6"]
    assert log.reads == [(1, 3), (3, 5), (5, 6)]
    assert catch_up.head == 6


async def test_catch_up_frames_carry_the_position_an_event_stream_names_them_by(monkeypatch):
    """Each frame's (epoch, seq) is an SSE message's id: a replayed event's own seq, a
    snapshot's head; the ring's frames are the very objects that went out live (shared)."""
    from liveblog.live import catchup

    feed = a_feed(6, 1, 10)
    ring = feed.replay(3)
    replayed = [frame async for frame in CatchUp.plan(
        feed, since=3, epoch="E1", window=10, snapshot=None, events=None)]
    assert [(f.epoch, f.seq) for f in replayed] == [("E1", 4), ("E1", 5), ("E1", 6)]
    assert all(a is b for a, b in zip(replayed, ring, strict=True))
    monkeypatch.setattr(catchup, "LOG_PAGE", 2)
    log = FakeLog({seq: f"log{seq}" for seq in range(1, 7)})
    from_log = [frame async for frame in CatchUp.plan(
        Feed(head=6, epoch="E1", recent=[], window=10), since=4, epoch="E1", window=10,
        snapshot=log.read_snapshot, events=log.read_events)]
    assert [(f.epoch, f.seq, f.text) for f in from_log] == [("E1", 5, "log5"), ("E1", 6, "log6")]
    log = FakeLog({seq: f"e{seq}" for seq in range(1, 7)}, epoch="E2")
    snapshot = [frame async for frame in CatchUp.plan(
        feed, since=None, epoch=None, window=10, snapshot=log.read_snapshot,
        events=log.read_events)]
    assert [(f.epoch, f.seq, f.text) for f in snapshot] == [("E2", 6, "snapshot")]


async def test_a_log_that_started_over_during_the_replay_ends_in_a_snapshot():
    log = FakeLog({seq: f"log{seq}" for seq in range(1, 3)}, epoch="E2")  # 3..6 are gone
    feed = Feed(head=6, epoch="E1", recent=[], window=10)
    catch_up, frames = await plan(feed, log, since=0)
    assert frames == ["snapshot"]
    assert (catch_up.epoch, catch_up.head) == ("E2", 2)


# --- The layer link -----------------------------------------------------------------------------


class FakeLayer:
    def __init__(self):
        self.groups, self.inbox = {}, asyncio.Queue()
        self.reachable = True

    async def new_channel(self):
        if not self.reachable:
            raise ConnectionError("Redis is down")
        return "process-1"

    async def group_add(self, group, channel):
        self.groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group, channel):
        self.groups.get(group, set()).discard(channel)

    async def receive(self, channel):
        message = await self.inbox.get()
        if isinstance(message, Exception):
            raise message
        return message


async def test_the_link_joins_hands_over_messages_and_survives_bad_ones(settings):
    layer, received = FakeLayer(), asyncio.Queue()

    def handle(message):
        if message.get("bad"):
            raise ValueError("a message this process cannot read")
        received.put_nowait(message)

    link = LayerLink(layer, handle)
    await link.join(7)
    assert layer.groups["liveblog.7"] == {"process-1"}
    layer.inbox.put_nowait({"bad": True})
    layer.inbox.put_nowait({"n": 1})
    assert await asyncio.wait_for(received.get(), 2) == {"n": 1}
    await link.leave(7)
    assert layer.groups["liveblog.7"] == set()
    link.detach()
    assert link.channel is None


async def test_an_unreachable_layer_is_attached_by_a_later_rejoin():
    layer = FakeLayer()
    layer.reachable = False
    link = LayerLink(layer, lambda message: None)
    await link.join(7)  # logged, not raised
    assert link.channel is None and not layer.groups
    layer.reachable = True
    await link.rejoin([7])
    assert link.channel == "process-1" and layer.groups["liveblog.7"] == {"process-1"}
    link.detach()


async def test_a_rejoin_restores_memberships_the_layer_forgot():
    layer = FakeLayer()
    link = LayerLink(layer, lambda message: None)
    await link.join(7)
    layer.groups.clear()  # a Redis restart
    await link.rejoin([7])
    assert layer.groups["liveblog.7"] == {"process-1"}
    link.detach()


# --- A blog's stream ----------------------------------------------------------------------------


class StreamLog:
    """The database as a BlogStream sees it: a committed log the test appends to."""

    def __init__(self, epoch="E1"):
        self.epoch, self.frames = epoch, {}
        self.reads = []

    def commit(self, seq):
        self.frames[seq] = f"e{seq}"

    async def tail(self, blog_id, window):
        head = max(self.frames, default=0)
        start = max(0, head - window)
        return head, self.epoch, [(seq, self.frames[seq]) for seq in range(start + 1, head + 1)]

    async def events(self, blog_id, epoch, after, upto):
        self.reads.append((after, upto))
        if epoch != self.epoch:
            return []
        return [(seq, self.frames[seq]) for seq in range(after + 1, upto + 1)
                if seq in self.frames]

    async def snapshot(self, blog_id):
        return Snapshot(epoch=self.epoch, head=max(self.frames, default=0), text="snapshot")


class Collector:
    def __init__(self):
        self.seqs, self.pings, self.resets = [], [], 0

    def hub_events(self, frames):
        self.seqs.extend(frame.seq for frame in frames)

    def hub_ping(self, head):
        self.pings.append(head)

    def hub_reset(self):
        self.resets += 1


def event(seq, epoch="E1"):
    return {"type": "liveblog.event", "blog": 1, "epoch": epoch, "seq": seq, "frame": f"e{seq}"}


async def started_stream(log, window=10):
    from liveblog.live.stream import BlogStream

    stream = BlogStream(1, log=log, window=window)
    reader = Collector()
    stream.add(reader)
    await stream.start()
    return stream, reader


async def test_a_stream_delivers_in_order_and_fills_a_gap_from_the_log(monkeypatch):
    from liveblog.live import stream as stream_module

    monkeypatch.setattr(stream_module, "GAP_GRACE_SECONDS", 0)
    log = StreamLog()
    stream, reader = await started_stream(log)
    for seq in (1, 2, 3):
        log.commit(seq)
    stream.on_message(event(1))
    stream.on_message(event(3))  # 2 was lost by the layer
    assert reader.seqs == [1]
    await until(lambda: reader.seqs == [1, 2, 3])
    assert log.reads == [(1, 2)]
    stream.stop()


async def test_messages_before_the_start_wait_for_the_head():
    log = StreamLog()
    log.commit(1)
    from liveblog.live.stream import BlogStream

    stream = BlogStream(1, log=log, window=10)
    reader = Collector()
    stream.add(reader)
    stream.on_message(event(1))  # already in the log the start reads: not delivered twice
    log.commit(2)
    stream.on_message(event(2))
    await stream.start()  # reads head 2
    assert reader.seqs == [] and stream.head == 2
    log.commit(3)
    stream.on_message(event(3))
    assert reader.seqs == [3]


async def test_the_heartbeat_heals_what_the_layer_lost_and_pings():
    log = StreamLog()
    stream, reader = await started_stream(log)
    log.commit(1)
    log.commit(2)  # neither broadcast arrived
    await stream.heal(committed=2, epoch="E1")
    stream.ping()
    assert reader.seqs == [1, 2] and reader.pings == [2]


async def test_a_reset_message_restarts_every_reader_once_the_new_head_is_read():
    log = StreamLog()
    log.commit(1)
    stream, reader = await started_stream(log)
    log.epoch, log.frames = "E2", {}
    stream.on_message({"type": "liveblog.reset", "blog": 1, "epoch": "E2"})
    log.commit(1)
    stream.on_message(event(1, epoch="E2"))  # arrives while the new head is being read
    await until(lambda: reader.resets == 1)
    assert stream.feed.epoch == "E2" and stream.head == 1
    assert reader.seqs == []  # seq 1 of E2 is in the snapshot the reset readers get
    catch_up = stream.catch_up(since=None, epoch=None)
    assert [frame.text async for frame in catch_up] == ["snapshot"] and catch_up.epoch == "E2"


async def test_one_broken_reader_does_not_stop_the_others():
    log = StreamLog()
    stream, reader = await started_stream(log)

    class Broken(Collector):
        def hub_events(self, frames):
            raise RuntimeError("a broken socket")

    stream.add(Broken())
    log.commit(1)
    stream.on_message(event(1))
    assert reader.seqs == [1]


async def test_a_pass_gives_the_loop_a_turn_between_slices_and_batches_what_came_meanwhile(
        monkeypatch):
    from liveblog.live import stream as stream_module

    monkeypatch.setattr(stream_module, "PASS_SLICE", 2)
    log = StreamLog()
    stream, first = await started_stream(log)
    readers = [first] + [Collector() for _ in range(4)]
    for reader in readers[1:]:
        stream.add(reader)
    batches = []
    for reader in readers:
        reader.hub_events = lambda frames, reader=reader: (
            batches.append((reader, [frame.seq for frame in frames])),
            reader.seqs.extend(frame.seq for frame in frames))
    for seq in (1, 2, 3):
        log.commit(seq)
    stream.on_message(event(1))
    assert sum(len(reader.seqs) for reader in readers) == 2  # one slice, then the loop's turn
    stream.on_message(event(2))  # during the pass: waits for the next one
    stream.on_message(event(3))
    await until(lambda: all(reader.seqs == [1, 2, 3] for reader in readers))
    assert all(seqs in ([1], [2, 3]) for _, seqs in batches)  # 2 and 3 in one hand-out
    stream.stop()


async def test_a_ping_follows_every_event_handed_out_before_it(monkeypatch):
    from liveblog.live import stream as stream_module

    monkeypatch.setattr(stream_module, "PASS_SLICE", 1)
    log = StreamLog()
    stream, first = await started_stream(log)
    second, gone = Collector(), Collector()
    stream.add(second)
    stream.add(gone)
    log.commit(1)
    stream.on_message(event(1))
    stream.discard(gone)  # left during the pass: skipped
    stream.ping()
    for reader in (first, second):
        assert reader.seqs == [1] and reader.pings == [1]
    assert gone.seqs in ([], [1]) and gone.pings == []
    stream.stop()
