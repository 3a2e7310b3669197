"""The websocket consumer: translates frames to selector/service calls and back. No logic of its own
beyond the ordering rule of the protocol: register with the hub before reading the log, hold live
events back while a snapshot or replay goes out, then drop those already sent."""

import asyncio
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from . import protocol, selectors, services
from .errors import Invalid, LiveblogError, NotFound
from .hub import get_hub

logger = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404
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
    # True while a snapshot or replay is being sent: live events wait in `held`.
    catching_up = True
    # Live delivery stopped after an impossible gap; the next ping makes the client resync.
    stalled = False
    last_seq = 0

    async def connect(self) -> None:
        """Accept, find the blog, register with the hub, then send hello + catch-up + live."""
        self.held: list[tuple[int, str]] = []
        # One catch-up at a time: a resync and a log reset must not interleave their frames.
        self.catching_up_lock = asyncio.Lock()
        await self.accept()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        try:
            blog = await database_sync_to_async(selectors.blog_get)(slug)
        except NotFound as error:
            await self.send_error(error)
            await self.close(code=CLOSE_NOT_FOUND)
            return
        since, epoch = await self._position_from_query()
        hub = get_hub()
        try:
            await hub.subscribe(blog.pk, self)
        except Exception:
            logger.exception("could not subscribe a reader to blog %s", blog.pk)
            await self.send(protocol.error_frame("unavailable", "try again shortly"))
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        self.blog, self.hub = blog, hub
        await self.catch_up(since=since, epoch=epoch, hello=True)

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

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: `resync` or `post`; anything else is answered with an error."""
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.LIVEBLOG_MAX_FRAME_BYTES:
            await self.send(protocol.error_frame(
                "too_large", f"frames are limited to {settings.LIVEBLOG_MAX_FRAME_BYTES} bytes"
            ))
            return
        if self.blog is None:
            return  # closing
        if text_data is None:
            await self.send(protocol.error_frame("invalid", "frames must be JSON text"))
            return
        try:
            request = protocol.parse_client_frame(text_data)
        except Invalid as error:
            await self.send_error(error)
            return
        if isinstance(request, protocol.ResyncRequest):
            await self.catch_up(since=request.since, epoch=request.epoch, hello=False)
        else:
            await self.publish(request)

    async def send_error(self, error: LiveblogError) -> None:
        await self.send(protocol.error_frame(error.code, error.detail))

    async def _position_from_query(self) -> tuple[int | None, str | None]:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        epoch = query.get("epoch", [None])[0] or None
        raw_since = query.get("since", [None])[0]
        if raw_since in (None, ""):
            return None, epoch
        try:
            return protocol.int_param(raw_since, "since"), epoch
        except Invalid as error:
            # Not fatal: the reader gets a snapshot, and the error says why.
            await self.send_error(error)
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
            state = await database_sync_to_async(selectors.catch_up)(
                self.blog, since=since, epoch=epoch
            )
        except DatabaseError:
            logger.exception("catch-up for blog %s failed", self.blog.pk)
            await self.send(protocol.error_frame("unavailable", "try again shortly"))
            await self.close(code=CLOSE_UNAVAILABLE)  # the client reconnects with its since
            return
        if hello:
            await self.send(protocol.hello_frame(
                blog=self.blog, head=state.head, heartbeat=_heartbeat()
            ))
        if state.snapshot is not None:
            page = state.snapshot
            await self.send(protocol.encode(protocol.snapshot_json(
                blog=page.blog, head=page.head, posts=page.posts, next_before=page.next_before,
            )))
        else:
            for frame in state.frames:
                await self.send(frame)
        self.last_seq = state.head
        await self.send(protocol.live_frame(state.head))
        while self.held:  # more may arrive while these go out
            seq, frame = self.held.pop(0)
            await self._send_event(seq, frame)
        self.catching_up = False

    async def hub_event(self, seq: int, frame: str) -> None:
        if self.catching_up:
            self.held.append((seq, frame))
        else:
            await self._send_event(seq, frame)

    def hub_reset(self) -> None:
        """The blog's log started over: nothing of the old epoch goes out any more; a snapshot
        of the new one follows (the snapshot covers whatever is held meanwhile)."""
        self.catching_up = True
        self.restart = asyncio.ensure_future(self.catch_up(since=None, epoch=None, hello=False))

    async def hub_ping(self, head: int) -> None:
        if not self.catching_up:  # a heartbeat never lands inside a replay
            await self.send(protocol.ping_frame(head))

    async def _send_event(self, seq: int, frame: str) -> None:
        if seq <= self.last_seq or self.stalled:
            return  # already sent in the replay
        if seq != self.last_seq + 1:
            # The hub hands out gapless runs, so this is a bug; never send a gap. The client
            # sees ping.head ahead of its last seq and resyncs, which restarts delivery.
            logger.error("blog %s: seq %s after %s; stalling until resync",
                         self.blog.pk, seq, self.last_seq)
            self.stalled = True
            return
        self.last_seq = seq
        await self.send(frame)

    # --- Authors ------------------------------------------------------------------------------

    async def publish(self, request: protocol.PostRequest) -> None:
        """A signed-in author's `post`: the same service as the HTTP API, answered with `ack`."""
        try:
            written = await database_sync_to_async(services.post_create)(
                actor=self.scope.get("user"),
                blog=self.blog,
                client_id=request.client_id,
                body=request.body,
                key_event=request.key_event,
                pinned=request.pinned,
            )
        except LiveblogError as error:
            await self.send_error(error)
            return
        except DatabaseError:
            logger.exception("post over the websocket failed")
            await self.send(protocol.error_frame("unavailable", "not saved; send it again"))
            return
        await self.send(protocol.ack_frame(
            client_id=str(request.client_id), seq=written.seq, post=written.data
        ))
