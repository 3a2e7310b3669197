"""The websocket consumer: translates frames to hub/selector/service calls and back. No logic of its
own beyond the ordering rule of the protocol: register with the hub before reading the log (or
the hub's ring), hold live events back while a snapshot or replay goes out, then drop those
already sent.

Every frame leaves through one outgoing side (`self.wire`, see wire.py), in order, without
awaiting: the hub hands events over synchronously, so one slow reader never holds up the rest. A
reader too far behind is closed (4008) and comes back with `since`.
"""

import asyncio
import copy
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from . import protocol, services
from .auth import user_of
from .errors import Invalid, LiveblogError, NotFound
from .hub import Frame, get_hub
from .models import Blog
from .wire import wire_for

logger = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_UNAVAILABLE = 1011


def _heartbeat() -> float | int:
    seconds = settings.LIVEBLOG_HEARTBEAT_SECONDS
    return int(seconds) if float(seconds).is_integer() else seconds


class LiveblogConsumer(AsyncWebsocketConsumer):
    # No per-socket channel: the process's hub receives for every reader of a blog.
    channel_layer_alias = None

    blog = None
    hub = None
    restart = None
    wire = None
    # True while a snapshot or replay is being sent: live events wait in `held`.
    catching_up = True
    # Live delivery stopped after an impossible gap; the next ping makes the client resync.
    stalled = False
    # Closed for being too slow: nothing more is sent.
    cut_loose = False
    last_seq = 0

    async def __call__(self, scope, receive, send) -> None:
        # Leave the hub however this consumer ends (a disconnect, an error, a cancellation), so
        # that it never keeps a reader that is gone.
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.restart is not None:
                self.restart.cancel()
            if self.hub is not None:
                await self.hub.unsubscribe(self.blog.pk, self)

    async def connect(self) -> None:
        """Accept, find the blog, register with the hub, then send hello + catch-up + live."""
        self.held: list[Frame] = []
        # One catch-up at a time: a resync and a log reset must not interleave their frames.
        self.catching_up_lock = asyncio.Lock()
        await self.accept()
        self.wire = wire_for(
            self.base_send,
            max_backlog_bytes=settings.LIVEBLOG_MAX_BACKLOG_BYTES,
            max_queued=settings.LIVEBLOG_REPLAY_WINDOW + settings.LIVEBLOG_MAX_QUEUED_FRAMES,
        )
        hub = get_hub()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        try:
            blog = await hub.blog(slug)
        except NotFound as error:
            await self.refuse(error.code, error.detail, CLOSE_NOT_FOUND)
            return
        since, epoch = self._position_from_query()
        try:
            await hub.subscribe(blog.pk, self)
        except Blog.DoesNotExist:  # deleted since it was looked up
            hub.blogs.pop(slug, None)
            await self.refuse("not_found", f"no blog {slug!r}", CLOSE_NOT_FOUND)
            return
        except Exception:
            logger.exception("could not subscribe a reader to blog %s", blog.pk)
            await self.refuse("unavailable", "try again shortly", CLOSE_UNAVAILABLE)
            return
        self.blog, self.hub = blog, hub
        await self.catch_up(since=since, epoch=epoch, hello=True)

    async def refuse(self, code: str, detail: str, close_code: int) -> None:
        self.out(protocol.error_frame(code, detail))
        await self.close_after_frames(close_code)

    async def close_after_frames(self, code: int) -> None:
        if self.wire.direct:
            await self.close(code=code)  # the frames before it are already written
        else:
            self.wire.close(code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: `resync` or `post`; anything else is answered with an error."""
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.LIVEBLOG_MAX_FRAME_BYTES:
            self.out(protocol.error_frame(
                "too_large", f"frames are limited to {settings.LIVEBLOG_MAX_FRAME_BYTES} bytes"
            ))
            return
        if self.blog is None:
            return  # closing
        if text_data is None:
            self.out(protocol.error_frame("invalid", "frames must be JSON text"))
            return
        try:
            request = protocol.parse_client_frame(text_data)
        except Invalid as error:
            self.out(protocol.error_frame(error.code, error.detail))
            return
        if isinstance(request, protocol.ResyncRequest):
            await self.catch_up(since=request.since, epoch=request.epoch, hello=False)
        else:
            await self.publish(request)

    def out(self, text: str) -> None:
        """Send one frame (in order after everything sent before)."""
        if not self.cut_loose:
            self.wire.write(text)

    def _position_from_query(self) -> tuple[int | None, str | None]:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        epoch = query.get("epoch", [None])[0] or None
        raw_since = query.get("since", [None])[0]
        if raw_since in (None, ""):
            return None, epoch
        try:
            return protocol.int_param(raw_since, "since"), epoch
        except Invalid as error:
            # Not fatal: the reader gets a snapshot, and the error says why.
            self.out(protocol.error_frame(error.code, error.detail))
            return None, epoch

    # --- Catch-up and live delivery -----------------------------------------------------------

    async def catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """Send a snapshot or the replay `since+1 … head`, then `live`, then the live events
        that arrived meanwhile and were not in the replay. Frames from the hub wait meanwhile."""
        async with self.catching_up_lock:
            await self._catch_up(since=since, epoch=epoch, hello=hello)

    async def _catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        self.catching_up, self.held, self.stalled = True, [], False
        try:
            state = await self.hub.catch_up(copy.copy(self.blog), since=since, epoch=epoch)
            if hello:
                self.out(protocol.hello_frame(
                    slug=self.blog.slug, epoch=state.epoch, head=state.head,
                    heartbeat=_heartbeat(),
                ))
            if state.snapshot is not None:
                self.out(state.snapshot)
            for frame in state.frames:
                self.out(frame)
            sent = state.more_from
            while sent:  # a long replay from the database, page by page
                frames = await self.hub.replay_page(self.blog, since=sent, head=state.head)
                for frame in frames:
                    self.out(frame)
                sent = sent + len(frames) if frames and sent + len(frames) < state.head else 0
        except DatabaseError:
            logger.exception("catch-up for blog %s failed", self.blog.pk)
            await self.refuse("unavailable", "try again shortly", CLOSE_UNAVAILABLE)
            return  # the client reconnects with its since
        self.last_seq = state.head
        self.out(protocol.live_frame(state.head))
        for frame in self.held:
            self._send_event(frame)
        self.held = []
        self.catching_up = False

    def hub_event(self, frame: Frame) -> None:
        if self.catching_up:
            self.held.append(frame)
        else:
            self._send_event(frame)

    def hub_reset(self) -> None:
        """The blog's log started over: nothing of the old epoch goes out any more; a snapshot
        of the new one follows (the snapshot covers whatever is held meanwhile)."""
        self.catching_up = True
        self.restart = asyncio.ensure_future(self.catch_up(since=None, epoch=None, hello=False))

    def hub_ping(self, head: int) -> None:
        if not self.catching_up:  # a heartbeat never lands inside a replay
            self.out(protocol.ping_frame(head))

    def _send_event(self, frame: Frame) -> None:
        if frame.seq <= self.last_seq or self.stalled or self.cut_loose:
            return  # already sent in the replay
        if frame.seq != self.last_seq + 1:
            # The hub hands out gapless runs, so this is a bug; never send a gap. The client
            # sees ping.head ahead of its last seq and resyncs, which restarts delivery.
            logger.error("blog %s: seq %s after %s; stalling until resync",
                         self.blog.pk, frame.seq, self.last_seq)
            self.stalled = True
            return
        self.last_seq = frame.seq
        if not self.wire.write(frame.text, frame.prepared(self.wire), bounded=True):
            self._cut_loose()

    def _cut_loose(self) -> None:
        """Too far behind (or gone): stop sending and close; a live reader reconnects with
        `since` and is replayed from the ring, without holding up anyone else."""
        if self.cut_loose:
            return
        self.cut_loose = True
        logger.info("blog %s: a reader fell behind at seq %s; closing it to resync",
                    self.blog.pk, self.last_seq)
        if self.wire.direct:
            self.wire.protocol.sendClose(code=CLOSE_TOO_SLOW)
        else:
            self.wire.queue.clear()  # what it missed comes back by replay
            self.wire.close(CLOSE_TOO_SLOW)

    # --- Authors ------------------------------------------------------------------------------

    async def publish(self, request: protocol.PostRequest) -> None:
        """A signed-in author's `post`: the same service as the HTTP API, answered with `ack`."""
        try:
            written = await database_sync_to_async(services.post_create)(
                actor=await user_of(self.scope),
                blog=self.blog,
                client_id=request.client_id,
                body=request.body,
                key_event=request.key_event,
                pinned=request.pinned,
            )
        except LiveblogError as error:
            self.out(protocol.error_frame(error.code, error.detail))
            return
        except DatabaseError:
            logger.exception("post over the websocket failed")
            self.out(protocol.error_frame("unavailable", "not saved; send it again"))
            return
        self.out(protocol.ack_frame(
            client_id=str(request.client_id), seq=written.seq, post=written.data
        ))
