"""Per-process fan-out: one channel-layer subscription per blog per process.

Readers of a blog on this process register here; the hub is the only member of the blog's group
for this process, so each event crosses the channel layer once per process (not once per reader)
and reaches every local reader as the same encoded frame.

The hub hands its readers a gapless, ordered run of events. The channel layer is lossy (capacity,
expiry, a Redis restart) and may reorder two writers' broadcasts, so the hub fills any gap from
the database log, and on every heartbeat it compares its head with the committed head, re-joins
its groups and catches up from the log: live delivery heals by itself.
"""

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import selectors
from .broadcast import EVENT_MESSAGE_TYPE, RESET_MESSAGE_TYPE, blog_group

logger = logging.getLogger(__name__)

# Two writers' broadcasts can arrive in either order; wait this long for the missing one
# before asking the database for it.
GAP_GRACE_SECONDS = 0.05


class Subscriber(Protocol):
    async def hub_event(self, seq: int, frame: str) -> None: ...

    async def hub_ping(self, head: int) -> None: ...

    def hub_reset(self) -> None:
        """The log started over (new epoch): start over from a snapshot. Must not block."""


@dataclass(eq=False)
class _BlogFeed:
    blog_id: int
    subscribers: set = field(default_factory=set)
    # Newest seq handed to subscribers; every seq up to it went out, in order. None until the
    # hub has joined the group and read the committed head.
    head: int | None = None
    # The epoch of those numbers; messages of any other epoch are dropped.
    epoch: str | None = None
    pending: dict[int, str] = field(default_factory=dict)
    # Messages that came before the head and epoch were known.
    early: list[dict] = field(default_factory=list)
    fill_upto: int = 0
    started: asyncio.Future | None = None
    filling: asyncio.Task | None = None
    # Held while frames go out, so that two deliveries never interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Hub:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.feeds: dict[int, _BlogFeed] = {}
        self.channel: str | None = None
        self._membership = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self._ticker: asyncio.Task | None = None

    # --- Readers coming and going -----------------------------------------------------------

    async def subscribe(self, blog_id: int, subscriber: Subscriber) -> None:
        """Register a reader. Returns once this process is in the blog's group and knows the
        committed head: whatever the caller reads from the log afterwards overlaps what the
        hub delivers from here on, so nothing falls between a replay and live delivery."""
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
                if self.channel is None:
                    self.channel = await self.layer.new_channel()
                    self._reader = asyncio.ensure_future(self._read())
                    self._ticker = asyncio.ensure_future(self._tick())
                # A failed join is retried on every heartbeat; meanwhile the log heals delivery.
                await self._layer_call("group_add", feed.blog_id)
            head, epoch = await database_sync_to_async(selectors.blog_position)(feed.blog_id)
        except Exception:
            # Forget the failed feed so that the next reader starts afresh.
            if self.feeds.get(feed.blog_id) is feed:
                del self.feeds[feed.blog_id]
            raise
        async with feed.lock:
            feed.head, feed.epoch = head, epoch
            for message in feed.early:
                if message.get("type") == EVENT_MESSAGE_TYPE and message.get("epoch") == epoch:
                    feed.pending[int(message["seq"])] = str(message["frame"])
            feed.early.clear()
            await self._drain(feed)

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
            async with feed.lock:
                await self._accept(feed, int(message["seq"]), str(message["frame"]))

    async def _reset(self, feed: _BlogFeed, position: tuple[int, str] | None = None) -> None:
        """The log started over: take the new head and epoch, and restart every reader."""
        if position is None:
            position = await database_sync_to_async(selectors.blog_position)(feed.blog_id)
        async with feed.lock:
            feed.head, feed.epoch = position
            feed.pending.clear()
            feed.fill_upto = 0
            logger.info("blog %s: log reset, epoch %s", feed.blog_id, feed.epoch)
            for subscriber in list(feed.subscribers):
                try:
                    subscriber.hub_reset()
                except Exception:  # noqa: BLE001
                    logger.exception("resetting a reader of blog %s failed", feed.blog_id)

    async def _accept(self, feed: _BlogFeed, seq: int, frame: str) -> None:
        """Deliver `seq` and whatever it unblocks; keep it aside if it comes early."""
        if feed.head is not None and seq <= feed.head:
            return  # already delivered, or older than this process's first head (in the log)
        feed.pending[seq] = frame
        if feed.head is not None:
            await self._drain(feed)

    async def _drain(self, feed: _BlogFeed) -> None:
        while feed.head + 1 in feed.pending:
            seq = feed.head + 1
            await self._deliver(feed, seq, feed.pending.pop(seq))
        for seq in [seq for seq in feed.pending if seq <= feed.head]:
            del feed.pending[seq]
        if feed.pending:  # a gap: the layer lost or reordered something
            self._fill_soon(feed, upto=min(feed.pending) - 1)

    async def _deliver(self, feed: _BlogFeed, seq: int, frame: str) -> None:
        feed.head = seq
        for subscriber in list(feed.subscribers):
            try:
                await subscriber.hub_event(seq, frame)
            except Exception:  # noqa: BLE001 - one broken reader must not stop the others
                logger.exception("delivering blog %s seq %s failed", feed.blog_id, seq)

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
            if not rows:
                return
            logger.info(
                "blog %s: %d event(s) from the log after seq %s",
                feed.blog_id, len(rows), feed.head,
            )
            async with feed.lock:
                if feed.epoch != epoch:
                    return  # the log started over while we read
                for seq, frame in rows:
                    await self._accept(feed, seq, frame)

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
        if self._reader is not None and self._reader.done():
            logger.error("the channel layer reader stopped; restarting it")
            self._reader = asyncio.ensure_future(self._read())
        feeds = [feed for feed in self.feeds.values() if feed.head is not None]
        if not feeds:
            return
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
            async with feed.lock:
                for subscriber in list(feed.subscribers):
                    try:
                        await subscriber.hub_ping(feed.head)
                    except Exception:  # noqa: BLE001
                        logger.exception("ping to a reader of blog %s failed", feed.blog_id)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """This process's hub (one per event loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(get_channel_layer())
    return hub


def forget_hubs() -> None:
    """Drop every hub without closing it (tests reset the channel layer between tests)."""
    _hubs.clear()
