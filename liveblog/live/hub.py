"""Per-process fan-out: the registry of this process's blog streams, and their heartbeat.

Readers of a blog on this process register here; the process is the only member of the blog's
channel-layer group (one `LayerLink` for all blogs), so each event crosses the layer once per
process, not once per reader, and reaches every local reader as the same frame.

Once per heartbeat the hub reads the committed heads of all its blogs in one query, re-joins
their groups (a Redis restart forgets memberships), lets each stream deliver what the layer lost,
and pings every reader with the head: live delivery heals by itself.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict

from channels.layers import get_channel_layer
from django.conf import settings

from ..errors import NotFound
from . import gcpolicy
from .catchup import CatchUp
from .layer import LayerLink
from .log import Log
from .stream import BlogStream, Reader

logger = logging.getLogger(__name__)

# Blog ids by slug, so that a reconnecting reader costs no query. Bounded: a process serves a
# handful of live blogs at a time. An id is all that is kept: nothing that grants a right.
BLOG_IDS_KEPT = 256


class Hub:
    def __init__(self, layer: object, *, log: Log | None = None) -> None:
        self._log = log or Log()
        self._link = LayerLink(layer, self._on_message)
        self._streams: dict[int, BlogStream] = {}
        self._starting: dict[int, asyncio.Future] = {}
        self._blog_ids: OrderedDict[str, int] = OrderedDict()
        self._ticker: asyncio.Task | None = None
        # Streams whose last reader left: when each ends, unless a reader comes first.
        self._lingering: dict[int, asyncio.TimerHandle] = {}
        self._retiring: set[asyncio.Task] = set()

    @property
    def channel(self) -> str | None:
        """This process's channel-layer channel (None while the layer is unreachable)."""
        return self._link.channel

    # --- Blogs by slug ------------------------------------------------------------------------

    async def blog_id(self, slug: str) -> int:
        """The id of the blog with this slug; from memory after its first reader. Raises
        NotFound."""
        blog_id = self._blog_ids.get(slug)
        if blog_id is None:
            blog_id = await self._log.blog_id(slug)
            self._blog_ids[slug] = blog_id
            while len(self._blog_ids) > BLOG_IDS_KEPT:
                self._blog_ids.popitem(last=False)
        else:
            self._blog_ids.move_to_end(slug)
        return blog_id

    def _forget_blog(self, blog_id: int, *, but: str | None = None) -> None:
        """Forget the slugs of a blog that is gone, or (`but` its current slug) renamed."""
        for slug in [slug for slug, known in self._blog_ids.items()
                     if known == blog_id and slug != but]:
            del self._blog_ids[slug]

    # --- Readers coming and going -------------------------------------------------------------

    async def subscribe(self, blog_id: int, reader: Reader) -> None:
        """Register a reader. Returns once this process is in the blog's group and knows the
        committed head: whatever the reader is sent from `catch_up` then overlaps what the
        stream hands it live, so nothing falls between a replay and live delivery. Raises
        NotFound when the blog is gone (and Unavailable when the database is)."""
        if (ending := self._lingering.pop(blog_id, None)) is not None:
            ending.cancel()  # a reader came back in time: the stream goes on
        stream = self._streams.get(blog_id)
        if stream is None:
            stream = self._streams[blog_id] = BlogStream(
                blog_id, log=self._log, window=settings.LIVEBLOG_REPLAY_WINDOW
            )
            self._starting[blog_id] = asyncio.ensure_future(self._start(stream))
        stream.add(reader)
        try:
            await asyncio.shield(self._starting[blog_id])
        except BaseException:  # a failed start, or the reader went away while waiting
            await self.unsubscribe(blog_id, reader)
            raise

    async def _start(self, stream: BlogStream) -> None:
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        await self._link.join(stream.blog_id)
        try:
            await stream.start()
        except NotFound:
            self._forget_blog(stream.blog_id)
            raise

    async def unsubscribe(self, blog_id: int, reader: Reader) -> None:
        stream = self._streams.get(blog_id)
        if stream is None:
            return
        stream.discard(reader)
        if stream.reader_count or blog_id in self._lingering:
            return
        linger = settings.LIVEBLOG_STREAM_LINGER_SECONDS
        if linger > 0 and stream.started:
            # Kept a while for a reader who comes back (settings.py); ended by `_retire`.
            self._lingering[blog_id] = asyncio.get_running_loop().call_later(
                linger, self._retire_soon, blog_id)
            return
        await self._retire(blog_id)

    def _retire_soon(self, blog_id: int) -> None:
        task = asyncio.ensure_future(self._retire(blog_id))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, blog_id: int) -> None:
        """End a stream that has no reader: forget it now, so that the next reader of this blog
        starts a fresh one, then leave the group (in order with a join that follows)."""
        self._lingering.pop(blog_id, None)
        stream = self._streams.get(blog_id)
        if stream is None or stream.reader_count:
            return
        del self._streams[blog_id]
        self._starting.pop(blog_id).cancel()
        stream.stop()
        await self._link.leave(blog_id)
        if not self._streams:
            self._stop()

    def reader_count(self, blog_id: int) -> int:
        stream = self._streams.get(blog_id)
        return stream.reader_count if stream else 0

    def stream(self, blog_id: int) -> BlogStream | None:
        """The blog's stream on this process, if it has readers here (tests, diagnostics)."""
        return self._streams.get(blog_id)

    def catch_up(self, blog_id: int, *, since: int | None, epoch: str | None) -> CatchUp:
        """What a subscribed reader at (`since`, `epoch`) is sent before live events."""
        return self._streams[blog_id].catch_up(since=since, epoch=epoch)

    def _stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._link.detach()

    async def close(self) -> None:
        """Leave every group and stop (tests, shutdown)."""
        for ending in self._lingering.values():
            ending.cancel()
        self._lingering.clear()
        for blog_id, stream in list(self._streams.items()):
            stream.stop()
            self._starting.pop(blog_id).cancel()
            await self._link.leave(blog_id)
        self._streams.clear()
        self._stop()

    # --- Events in ----------------------------------------------------------------------------

    def _on_message(self, message: dict) -> None:
        stream = self._streams.get(message.get("blog"))
        if stream is not None:
            stream.on_message(message)

    # --- The heartbeat ------------------------------------------------------------------------

    async def _tick(self) -> None:
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
        """One query for the committed heads of this process's blogs, a re-join of their
        groups, healing from the log, and a ping to every reader."""
        gcpolicy.collect_if_due()  # a quiet blog still gets its collections
        streams = [stream for stream in self._streams.values() if stream.started]
        if not streams:
            return
        await self._link.rejoin([stream.blog_id for stream in streams])
        try:
            positions = await self._log.positions([stream.blog_id for stream in streams])
        except Exception as error:  # noqa: BLE001 - readers still get their ping
            logger.warning("heartbeat could not read heads: %r", error)
            positions = None
        for stream in streams:
            if positions is not None:
                await self._heal(stream, positions.get(stream.blog_id))
            stream.ping()

    async def _heal(self, stream: BlogStream, position: tuple[int, str, str] | None) -> None:
        if position is None:  # deleted: its readers stay until they leave; no new ones come
            self._forget_blog(stream.blog_id)
            return
        committed, epoch, slug = position
        self._forget_blog(stream.blog_id, but=slug)
        await stream.heal(committed=committed, epoch=epoch)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


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
