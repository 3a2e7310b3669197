"""Per-process fan-out: one channel-layer subscription per blog per process.

Readers of a blog on this process register here; the hub is the only member of the blog's group
for this process, so each event crosses the channel layer once per process (not once per reader)
and reaches every local reader as the same encoded frame (framed once, too, under daphne).

The hub hands its readers a gapless, ordered run of events. The channel layer is lossy (capacity,
expiry, a Redis restart) and may reorder two writers' broadcasts, so the hub fills any gap from
the database log, and on every heartbeat it compares its head with the committed head, re-joins
its groups and catches up from the log: live delivery heals by itself.

It also keeps each blog's recent frames in memory (a ring as long as the replay window), so a
reconnecting reader is replayed without a database query: a reconnect storm of a thousand readers
costs a few queries per blog, not thousands. Snapshots are cached per head for the same reason.
Delivery is synchronous: a reader's outgoing side never makes the hub wait (see wire.py).
"""

import asyncio
import logging
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import broadcast, gcpolicy, protocol, selectors
from .broadcast import EVENT_MESSAGE_TYPE, RESET_MESSAGE_TYPE, blog_group
from .models import Blog

logger = logging.getLogger(__name__)

# Two writers' broadcasts can arrive in either order; wait this long for the missing one
# before asking the database for it.
GAP_GRACE_SECONDS = 0.05
# Blogs looked up by slug, kept so that a reconnecting reader costs no query. Bounded: a
# process serves a handful of live blogs at a time.
BLOG_CACHE_SIZE = 256
# A replay from the database goes out in pages of this many events (memory stays flat).
DB_REPLAY_PAGE = 1000


class Frame:
    """One event as it goes out: its seq, its JSON text, and (under daphne) the same text framed
    once for every reader of this process."""

    __slots__ = ("seq", "text", "_prepared")

    def __init__(self, seq: int, text: str) -> None:
        self.seq = seq
        self.text = text
        self._prepared = None

    def prepared(self, wire: Any) -> Any:
        if self._prepared is None and wire.direct:
            self._prepared = wire.prepare(self.text)
        return self._prepared


class Subscriber(Protocol):
    def hub_event(self, frame: Frame) -> None:
        """One live event, in order. Must not block."""

    def hub_ping(self, head: int) -> None:
        """A heartbeat with this process's committed head. Must not block."""

    def hub_reset(self) -> None:
        """The log started over (new epoch): start over from a snapshot. Must not block."""


@dataclass(frozen=True)
class CatchUp:
    """What a (re)connecting reader is sent: the head it brings the reader to, and either the
    snapshot (its JSON text) or the replayed frames; `more_from` > 0 means the replay continues
    from the database after the frames given."""

    head: int
    epoch: str
    snapshot: str | None = None
    frames: list[str] = field(default_factory=list)
    more_from: int = 0


@dataclass(eq=False)
class _BlogFeed:
    blog_id: int
    subscribers: set = field(default_factory=set)
    # Newest seq handed to subscribers; every seq up to it went out, in order. None until the
    # hub has joined the group and read the committed head.
    head: int | None = None
    # The epoch of those numbers; messages of any other epoch are dropped.
    epoch: str | None = None
    # The newest events, oldest first, ending at `head` (seq, frame text).
    ring: deque = field(default_factory=deque)
    # The encoded snapshot frame at a head, reused by every reader asking at that head; and
    # the read of one under way, which readers arriving meanwhile wait for instead of each
    # reading their own (a thousand new readers at once make one database read, not 1000).
    snapshot: tuple[int, str] | None = None
    snapshot_reading: asyncio.Future | None = None
    pending: dict[int, str] = field(default_factory=dict)
    # Messages that came before the head and epoch were known.
    early: list[dict] = field(default_factory=list)
    fill_upto: int = 0
    started: asyncio.Future | None = None
    filling: asyncio.Task | None = None

    def replay(self, since: int) -> list[str] | None:
        """Frames `since+1 … head` from memory, or None if the ring does not reach back."""
        if since == self.head:
            return []
        if not self.ring or self.ring[0][0] > since + 1:
            return None
        start = since + 1 - self.ring[0][0]
        return [text for _, text in list(self.ring)[start:]]


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.feeds: dict[int, _BlogFeed] = {}
        self.blogs: OrderedDict[str, Blog] = OrderedDict()
        self.channel: str | None = None
        self._membership = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self._ticker: asyncio.Task | None = None

    # --- Blogs by slug ------------------------------------------------------------------------

    async def blog(self, slug: str) -> Blog:
        """The blog for a slug; from memory after the first reader (raises NotFound)."""
        blog = self.blogs.get(slug)
        if blog is None:
            blog = await database_sync_to_async(selectors.blog_get)(slug)
            self.blogs[slug] = blog
            while len(self.blogs) > BLOG_CACHE_SIZE:
                self.blogs.popitem(last=False)
        else:
            self.blogs.move_to_end(slug)
        return blog

    # --- Readers coming and going -------------------------------------------------------------

    async def subscribe(self, blog_id: int, subscriber: Subscriber) -> None:
        """Register a reader. Returns once this process is in the blog's group and knows the
        committed head: whatever the caller reads afterwards (the ring, or the log) overlaps
        what the hub delivers from here on, so nothing falls between a replay and live
        delivery."""
        feed = self.feeds.get(blog_id)
        if feed is None:
            feed = self.feeds[blog_id] = _BlogFeed(blog_id)
            feed.started = asyncio.ensure_future(self._start_feed(feed))
        feed.subscribers.add(subscriber)
        try:
            await asyncio.shield(feed.started)
        except Exception:
            await self.unsubscribe(blog_id, subscriber)
            raise

    async def unsubscribe(self, blog_id: int, subscriber: Subscriber) -> None:
        feed = self.feeds.get(blog_id)
        if feed is None:
            return
        feed.subscribers.discard(subscriber)
        if feed.subscribers:
            return
        async with self._membership:
            if self.feeds.get(blog_id) is not feed or feed.subscribers:
                return  # someone subscribed again meanwhile
            del self.feeds[blog_id]
            if feed.filling:
                feed.filling.cancel()
            await self._layer_call("group_discard", blog_id)
            if not self.feeds:
                self._stop()

    def subscriber_count(self, blog_id: int) -> int:
        feed = self.feeds.get(blog_id)
        return len(feed.subscribers) if feed else 0

    async def _start_feed(self, feed: _BlogFeed) -> None:
        try:
            async with self._membership:
                if self._ticker is None:
                    self._ticker = asyncio.ensure_future(self._tick())
                # A layer that cannot be reached (Redis down), a failed join: both are retried
                # on every heartbeat, and meanwhile the log heals delivery.
                await self._attach()
                await self._layer_call("group_add", feed.blog_id)
            head, epoch, recent = await database_sync_to_async(self._read_tail)(feed.blog_id)
        except Exception:
            # Forget the failed feed so that the next reader starts afresh.
            if self.feeds.get(feed.blog_id) is feed:
                del self.feeds[feed.blog_id]
            raise
        feed.head, feed.epoch = head, epoch
        feed.ring = deque(recent, maxlen=settings.LIVEBLOG_REPLAY_WINDOW)
        for message in feed.early:
            if message.get("type") == EVENT_MESSAGE_TYPE and message.get("epoch") == epoch:
                feed.pending[int(message["seq"])] = str(message["frame"])
        feed.early.clear()
        self._drain(feed)

    @staticmethod
    def _read_tail(blog_id: int) -> tuple[int, str, list[tuple[int, str]]]:
        """The committed head and epoch, and the events of the replay window before it."""
        head, epoch = selectors.blog_position(blog_id)
        window = settings.LIVEBLOG_REPLAY_WINDOW
        return head, epoch, selectors.events_range(blog_id, epoch, max(0, head - window), head)

    async def _attach(self) -> None:
        """Make this process's channel and start receiving on it, unless it has one. When the
        layer cannot be reached, the hub serves readers from the log until a later heartbeat
        attaches it (channels-redis's pub/sub layer subscribes in `new_channel`)."""
        if self.channel is not None:
            return
        try:
            channel = await asyncio.wait_for(
                self.layer.new_channel(), timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT
            )
        except Exception as error:  # noqa: BLE001 - served from the log meanwhile
            logger.warning("channel layer unavailable, delivering from the log: %r", error)
            return
        self.channel = channel
        self._reader = asyncio.ensure_future(self._read())

    def _stop(self) -> None:
        for task in (self._reader, self._ticker):
            if task:
                task.cancel()
        self._reader = self._ticker = self.channel = None

    async def close(self) -> None:
        """Leave every group and stop (tests, shutdown)."""
        async with self._membership:
            for blog_id, feed in list(self.feeds.items()):
                if feed.filling:
                    feed.filling.cancel()
                await self._layer_call("group_discard", blog_id)
            self.feeds.clear()
            self._stop()

    async def _layer_call(self, method: str, blog_id: int) -> None:
        if self.channel is None:
            return
        try:
            await asyncio.wait_for(
                getattr(self.layer, method)(blog_group(blog_id), self.channel),
                timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT,
            )
        except Exception as error:  # noqa: BLE001 - the heartbeat heals membership
            logger.warning("channel layer %s for blog %s failed: %r", method, blog_id, error)

    # --- Catching a reader up -----------------------------------------------------------------

    async def catch_up(self, blog: Blog, *, since: int | None, epoch: str | None) -> CatchUp:
        """What a reader registered with this hub is sent before live events: from memory
        when the ring reaches back to `since` or the snapshot at the current head is cached,
        else from the database."""
        feed = self.feeds[blog.pk]
        current = since is not None and (epoch is None or epoch == feed.epoch)
        if current and since <= feed.head:
            frames = feed.replay(since)
            if frames is not None:
                return CatchUp(head=feed.head, epoch=feed.epoch, frames=frames)
        if selectors.needs_snapshot(
            since=since, epoch=epoch, current_epoch=feed.epoch, head=feed.head
        ):
            return await self._snapshot(feed, blog)
        state = await database_sync_to_async(selectors.catch_up)(
            blog, since=since, epoch=epoch, limit=DB_REPLAY_PAGE
        )
        if state.snapshot is not None:  # the database knew better (a newer epoch, a new head)
            return self._snapshot_catch_up(state.snapshot)
        last = since + len(state.frames)
        return CatchUp(head=state.head, epoch=blog.epoch, frames=state.frames,
                       more_from=last if last < state.head else 0)

    async def _snapshot(self, feed: _BlogFeed, blog: Blog) -> CatchUp:
        """The snapshot at the current head: cached, being read (then wait for it), or read."""
        if feed.snapshot is not None and feed.snapshot[0] == feed.head:
            return CatchUp(head=feed.head, epoch=feed.epoch, snapshot=feed.snapshot[1])
        # Events this reader may already have missed live (delivered before it registered)
        # must be in its snapshot: a read started earlier may not have them.
        registered_at = feed.head
        if feed.snapshot_reading is None or feed.snapshot_reading.done():
            feed.snapshot_reading = asyncio.ensure_future(
                database_sync_to_async(selectors.blog_snapshot)(blog)
            )
        page = await asyncio.shield(feed.snapshot_reading)
        if page.head < registered_at:
            page = await database_sync_to_async(selectors.blog_snapshot)(blog)
        catch_up = self._snapshot_catch_up(page)
        if page.head == feed.head and page.blog.epoch == feed.epoch:
            feed.snapshot = (page.head, catch_up.snapshot)
        return catch_up

    @staticmethod
    def _snapshot_catch_up(page: selectors.PostsPage) -> CatchUp:
        text = protocol.encode(protocol.snapshot_json(
            blog=page.blog, head=page.head, posts=page.posts, next_before=page.next_before
        ))
        return CatchUp(head=page.head, epoch=page.blog.epoch, snapshot=text)

    async def replay_page(self, blog: Blog, *, since: int, head: int) -> list[str]:
        """The next page of a long replay from the database (`since+1 …`, up to `head`)."""
        replay = await database_sync_to_async(selectors.events_since)(
            blog, since, limit=DB_REPLAY_PAGE, head=head
        )
        return replay.frames

    # --- Events in, frames out ----------------------------------------------------------------

    async def _read(self) -> None:
        """Receive the channel layer's messages for this process, for ever."""
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - e.g. Redis down: retry, heal by log
                logger.warning("channel layer receive failed: %r", error)
                await asyncio.sleep(1)
                continue
            try:
                await self._dispatch(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop live delivery
                logger.exception("dropped a channel layer message: %.200r", message)

    async def _dispatch(self, message: dict) -> None:
        feed = self.feeds.get(message.get("blog"))
        if feed is None:
            return
        if feed.head is None:
            feed.early.append(message)  # sorted out once the head and epoch are read
            return
        if message.get("type") == RESET_MESSAGE_TYPE:
            if message.get("epoch") != feed.epoch:
                await self._reset(feed)
        elif message.get("type") == EVENT_MESSAGE_TYPE and message.get("epoch") == feed.epoch:
            self._accept(feed, int(message["seq"]), str(message["frame"]))

    async def _reset(self, feed: _BlogFeed, position: tuple[int, str] | None = None) -> None:
        """The log started over: take the new head and epoch, and restart every reader."""
        if position is None:
            head, epoch, recent = await database_sync_to_async(self._read_tail)(feed.blog_id)
        else:
            (head, epoch), recent = position, []
        feed.head, feed.epoch = head, epoch
        feed.ring = deque(recent, maxlen=settings.LIVEBLOG_REPLAY_WINDOW)
        feed.snapshot = None
        feed.pending.clear()
        feed.fill_upto = 0
        logger.info("blog %s: log reset, epoch %s", feed.blog_id, feed.epoch)
        for subscriber in list(feed.subscribers):
            try:
                subscriber.hub_reset()
            except Exception:  # noqa: BLE001
                logger.exception("resetting a reader of blog %s failed", feed.blog_id)

    def _accept(self, feed: _BlogFeed, seq: int, frame: str) -> None:
        """Deliver `seq` and whatever it unblocks; keep it aside if it comes early."""
        if seq <= feed.head:
            return  # already delivered, or older than this process's first head (in the ring)
        feed.pending[seq] = frame
        self._drain(feed)

    def _drain(self, feed: _BlogFeed) -> None:
        while feed.head + 1 in feed.pending:
            seq = feed.head + 1
            self._deliver(feed, Frame(seq, feed.pending.pop(seq)))
        for seq in [seq for seq in feed.pending if seq <= feed.head]:
            del feed.pending[seq]
        if feed.pending:  # a gap: the layer lost or reordered something
            self._fill_soon(feed, upto=min(feed.pending) - 1)

    def _deliver(self, feed: _BlogFeed, frame: Frame) -> None:
        feed.head = frame.seq
        feed.ring.append((frame.seq, frame.text))
        feed.snapshot = None
        for subscriber in list(feed.subscribers):
            try:
                subscriber.hub_event(frame)
            except Exception:  # noqa: BLE001 - one broken reader must not stop the others
                logger.exception("delivering blog %s seq %s failed", feed.blog_id, frame.seq)
        # The frames are out: a full collection now delays nobody (gcpolicy.py).
        asyncio.get_running_loop().call_soon(gcpolicy.collect_if_due)

    # --- Healing from the log -----------------------------------------------------------------

    def _fill_soon(self, feed: _BlogFeed, *, upto: int) -> None:
        feed.fill_upto = max(feed.fill_upto, upto)
        if feed.filling is None or feed.filling.done():
            feed.filling = asyncio.ensure_future(self._fill(feed, grace=GAP_GRACE_SECONDS))

    async def _fill(self, feed: _BlogFeed, *, grace: float = 0) -> None:
        """Deliver from the database everything up to `feed.fill_upto` that the layer lost."""
        if grace:
            await asyncio.sleep(grace)
        while feed.head is not None and feed.fill_upto > feed.head:
            epoch = feed.epoch
            try:
                rows = await database_sync_to_async(selectors.events_range)(
                    feed.blog_id, epoch, feed.head, feed.fill_upto
                )
            except Exception as error:  # noqa: BLE001 - the next heartbeat tries again
                logger.warning("filling blog %s from the log failed: %r", feed.blog_id, error)
                return
            if not rows or feed.epoch != epoch:
                return  # nothing there yet, or the log started over while we read
            logger.info(
                "blog %s: %d event(s) from the log after seq %s",
                feed.blog_id, len(rows), feed.head,
            )
            for seq, frame in rows:
                self._accept(feed, seq, frame)

    async def _tick(self) -> None:
        """Every heartbeat: one query for the committed heads of this process's blogs, a
        re-join of their groups, catch-up from the log, and a ping to every reader."""
        interval = settings.LIVEBLOG_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a heartbeat must never kill the ticker
                logger.exception("heartbeat failed")

    async def heartbeat(self) -> None:
        gcpolicy.collect_if_due()  # a quiet blog still gets its collections
        if self._reader is not None and self._reader.done():
            logger.error("the channel layer reader stopped; restarting it")
            self._reader = asyncio.ensure_future(self._read())
        feeds = [feed for feed in self.feeds.values() if feed.head is not None]
        if not feeds:
            return
        async with self._membership:
            await self._attach()
        try:
            positions = await database_sync_to_async(selectors.blog_positions)(
                [feed.blog_id for feed in feeds]
            )
        except Exception as error:  # noqa: BLE001
            logger.warning("heartbeat could not read heads: %r", error)
            positions = {}
        for feed in feeds:
            await self._layer_call("group_add", feed.blog_id)
            committed, epoch = positions.get(feed.blog_id, (feed.head, feed.epoch))
            if epoch != feed.epoch:  # the reset message was lost, or came from elsewhere
                await self._reset(feed, (committed, epoch))
            elif committed > feed.head:
                feed.fill_upto = max(feed.fill_upto, committed)
                await self._fill(feed)
            for subscriber in list(feed.subscribers):
                try:
                    subscriber.hub_ping(feed.head)
                except Exception:  # noqa: BLE001
                    logger.exception("ping to a reader of blog %s failed", feed.blog_id)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """This process's hub (one per event loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(get_channel_layer())
        broadcast.serve_on(loop)
    return hub


def forget_hubs() -> None:
    """Drop every hub without closing it (tests reset the channel layer between tests)."""
    _hubs.clear()
