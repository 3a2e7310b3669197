"""The websocket consumer: translates frames to hub, selector and service calls and back. No logic
of its own beyond the ordering rule of the protocol: register with the hub before the catch-up
is read, hold live events back while the catch-up goes out, then drop those it already covered.

Every frame leaves through one outgoing side (`self.wire`, see live/wire.py), in order, without
awaiting: the hub hands events over synchronously, so one slow reader never holds up the rest. A
reader too far behind is cut loose (4008) and comes back with `since`.

What a client can cost is bounded whatever it sends (README, "Security"): every frame it is sent
counts against LIVEBLOG_MAX_BACKLOG_BYTES, a catch-up is paced on what the socket takes, a resync
during a catch-up is answered by that catch-up, incoming frames spend a token bucket, and an
address has at most LIVEBLOG_MAX_SOCKETS_PER_ADDRESS sockets on this process. Catch-ups run as
tasks of their own, so incoming frames are read (and refused) while one goes out.
"""

import asyncio
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import protocol, services
from .auth import user_of
from .errors import Invalid, LiveblogError, NotFound, Unavailable
from .live.feed import Frame
from .live.hub import Hub, get_hub
from .live.limits import FrameBudget, address_slots, retry_after_seconds
from .live.log import in_db_thread
from .live.wire import Wire, wait_for_room, wire_for

logger = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_UNAVAILABLE = 1011
# RFC 6455: a policy violation (a client that kept sending past its budget), and "try again
# later" (its address has too many sockets here).
CLOSE_ABUSIVE = 1008
CLOSE_TRY_LATER = 1013
# A catch-up to a socket that takes nothing for this many heartbeats is given up on: the
# client's own rule for a dead socket (DESIGN.md).
STALL_HEARTBEATS = 2.5
# A catch-up's next frame waits until the socket holds at most this much unsent (or a quarter of
# the backlog bound, if less): the kernel's own buffer keeps a good link busy meanwhile, and a
# client that does not read pins no more than this plus one frame.
CATCH_UP_LOW_WATER = 64 * 1024
# How long a client over the per-address cap is asked to wait before it tries again.
BUSY_RETRY_AFTER_SECONDS = 30


def _heartbeat() -> float | int:
    seconds = settings.LIVEBLOG_HEARTBEAT_SECONDS
    return int(seconds) if float(seconds).is_integer() else seconds


def _client_address(scope: dict) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class LiveblogConsumer(AsyncWebsocketConsumer):
    # No per-socket channel: the process's hub receives for every reader of a blog.
    channel_layer_alias = None

    slug: str = ""
    blog_id: int | None = None
    # Set once subscribed: the hub to leave when this consumer ends.
    hub: Hub | None = None
    wire: Wire | None = None
    # The address holding one of its slots (released when this consumer ends).
    address: str | None = None
    holds_slot = False
    # A catch-up frame waits while the socket holds more than this unsent (see `_paced`).
    low_water = CATCH_UP_LOW_WATER
    # True while a catch-up is being sent: live events wait in `held`, and a resync is answered
    # by the catch-up under way.
    catching_up = True
    # Live delivery stopped after an impossible gap; the next ping makes the client resync.
    stalled = False
    # Cut loose for being too slow, or closed for abuse: nothing more is sent or read.
    cut_loose = False
    last_seq = 0

    async def __call__(self, scope, receive, send) -> None:
        # Leave the hub however this consumer ends (a disconnect, an error, a cancellation), so
        # that it never keeps a reader that is gone.
        self.tasks: set[asyncio.Task] = set()
        try:
            await super().__call__(scope, receive, send)
        finally:
            for task in self.tasks:
                task.cancel()
            if self.hub is not None:
                await self.hub.unsubscribe(self.blog_id, self)
            if self.holds_slot:
                address_slots().release(self.address)

    async def connect(self) -> None:
        """Accept, find the blog, register with the hub, then send hello + catch-up + live."""
        self.held: list[Frame] = []
        # One catch-up at a time: a log reset waits for the one under way.
        self.catching_up_lock = asyncio.Lock()
        self.budget = FrameBudget(rate=settings.LIVEBLOG_FRAME_RATE,
                                  burst=settings.LIVEBLOG_FRAME_BURST)
        self.low_water = min(settings.LIVEBLOG_MAX_BACKLOG_BYTES // 4, CATCH_UP_LOW_WATER)
        await self.accept()
        self.wire = wire_for(self.base_send)
        self.address = _client_address(self.scope)
        if not address_slots().acquire(self.address):
            self.out(protocol.error_frame(
                "rate_limited", "too many connections from your address",
                retry_after=BUSY_RETRY_AFTER_SECONDS,
            ))
            self.wire.close(CLOSE_TRY_LATER)
            return
        self.holds_slot = True
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        hub = get_hub()
        try:
            blog_id = await hub.blog_id(self.slug)
            since, epoch = self._position_from_query()
            await hub.subscribe(blog_id, self)
        except LiveblogError as error:  # NotFound, or Unavailable
            self.refuse(error)
            return
        except Exception:  # noqa: BLE001 - a bug must not leave a reader hanging
            logger.exception("could not subscribe a reader to blog %r", self.slug)
            self.refuse(Unavailable("try again shortly"))
            return
        self.blog_id, self.hub = blog_id, hub
        self._start_catch_up(since=since, epoch=epoch, hello=True)

    def refuse(self, error: LiveblogError) -> None:
        """A fatal error: its frame, then the close that goes with it."""
        self.out(protocol.error_frame(error.code, error.detail))
        self.wire.close(CLOSE_NOT_FOUND if isinstance(error, NotFound) else CLOSE_UNAVAILABLE)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: `resync` or `post`; anything else is answered with an error."""
        if self.cut_loose:
            return
        self.wire.pace_input()
        if not self._within_budget():
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.LIVEBLOG_MAX_FRAME_BYTES:
            self.out(protocol.error_frame(
                "too_large", f"frames are limited to {settings.LIVEBLOG_MAX_FRAME_BYTES} bytes"
            ))
            return
        if self.hub is None:
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
            if not self.catching_up:  # else the catch-up under way answers it
                self._start_catch_up(since=request.since, epoch=request.epoch, hello=False)
        else:
            await self.publish(request)

    def _within_budget(self) -> bool:
        """Spend a token for this frame. Over budget: a `rate_limited` error, and a close (1008)
        for a client that keeps going regardless."""
        wait = self.budget.take()
        if not wait:
            return True
        if self.budget.exhausted:
            logger.info("closing a websocket from %s that kept sending past its budget",
                        self.address)
            self.cut_loose = True
            self.wire.shut(CLOSE_ABUSIVE)
        else:
            self.out(protocol.error_frame(
                "rate_limited", "too many frames; slow down",
                retry_after=retry_after_seconds(wait),
            ))
        return False

    def out(self, text: str) -> None:
        """Send one frame (in order after everything sent before); a socket that is too far
        behind to take it is cut loose."""
        if not self.cut_loose and not self.wire.send(text):
            self._cut_loose()

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

    def _start_catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """Run a catch-up beside the reading of incoming frames (which it must not hold up)."""
        self.catching_up = True
        task = asyncio.ensure_future(self.catch_up(since=since, epoch=epoch, hello=hello))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """Send a snapshot or the replay `since+1 … head`, then `live`, then the live events
        that arrived meanwhile and were not in the catch-up. Frames from the hub wait meanwhile."""
        async with self.catching_up_lock:
            await self._catch_up(since=since, epoch=epoch, hello=hello)

    async def _catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        self.catching_up, self.held, self.stalled = True, [], False
        catch_up = self.hub.catch_up(self.blog_id, since=since, epoch=epoch)
        frames = aiter(catch_up)
        try:
            # `hello` carries the head of the first frame (a snapshot's is known once read).
            first = await anext(frames, None)
            if hello:
                self.out(protocol.hello_frame(slug=self.slug, epoch=catch_up.epoch,
                                              head=catch_up.head, heartbeat=_heartbeat()))
            if first is not None and not await self._paced(first):
                return
            async for text in frames:
                if not await self._paced(text):
                    return
        except Unavailable as error:
            logger.warning("catch-up for blog %s failed: %r", self.blog_id, error.__cause__)
            self.refuse(Unavailable("try again shortly"))
            return  # the client reconnects with its since
        self.last_seq = catch_up.head
        self.out(protocol.live_frame(catch_up.head))
        for frame in self.held:
            self._send_event(frame)
        self.held = []
        self.catching_up = False

    async def _paced(self, text: str) -> bool:
        """Send one catch-up frame once the socket has room for it. False when the client
        stopped taking bytes (it is cut loose): a catch-up never piles up in memory."""
        if self.cut_loose:
            return False
        # Awaited only when the socket is full: a replay to a reader that keeps up (a reconnect
        # storm is thousands of them) goes out without a coroutine per frame.
        if self.wire.backlog() > self.low_water and not await wait_for_room(
            self.wire, low_water=self.low_water, stall_seconds=_heartbeat() * STALL_HEARTBEATS
        ):
            self._cut_loose()
            return False
        self.out(text)
        return not self.cut_loose

    def hub_event(self, frame: Frame) -> None:
        if self.catching_up:
            self.held.append(frame)
            if len(self.held) > settings.LIVEBLOG_REPLAY_WINDOW:
                self._cut_loose()  # its catch-up stalled: it comes back with since
        else:
            self._send_event(frame)

    def hub_reset(self) -> None:
        """The blog's log started over: nothing of the old epoch goes out any more; a snapshot
        of the new one follows (the snapshot covers whatever is held meanwhile)."""
        if not self.cut_loose:
            self._start_catch_up(since=None, epoch=None, hello=False)

    def hub_ping(self, head: int) -> None:
        if not self.catching_up:  # a heartbeat never lands inside a replay
            self.out(protocol.ping_frame(head))

    def _send_event(self, frame: Frame) -> None:
        if frame.seq <= self.last_seq or self.stalled or self.cut_loose:
            return  # already sent in the catch-up
        if frame.seq != self.last_seq + 1:
            # The hub hands out gapless runs, so this is a bug; never send a gap. The client
            # sees ping.head ahead of its last seq and resyncs, which restarts delivery.
            logger.error("blog %s: seq %s after %s; stalling until resync",
                         self.blog_id, frame.seq, self.last_seq)
            self.stalled = True
            return
        self.last_seq = frame.seq
        if not self.wire.send(frame):
            self._cut_loose()

    def _cut_loose(self) -> None:
        """Too far behind (or gone): stop sending and close; a live reader reconnects with
        `since` and is replayed from the ring, without holding up anyone else."""
        if self.cut_loose:
            return
        self.cut_loose = True
        self.held = []
        logger.info("blog %s: a reader fell behind at seq %s; closing it to resync",
                    self.blog_id, self.last_seq)
        self.wire.abandon(CLOSE_TOO_SLOW)

    # --- Authors ------------------------------------------------------------------------------

    async def publish(self, request: protocol.PostRequest) -> None:
        """A signed-in author's `post`: the same service as the HTTP API, answered with `ack`.
        Who may post is decided by the service, against the rows it reads in its transaction."""
        try:
            written = await in_db_thread(self._post_create, request)
        except LiveblogError as error:
            if isinstance(error, Unavailable):
                logger.warning("post over the websocket failed: %r", error.__cause__)
            self.out(protocol.error_frame(error.code, error.detail))
            return
        self.out(protocol.ack_frame(
            client_id=str(request.client_id), seq=written.seq, post=written.data
        ))

    def _post_create(self, request: protocol.PostRequest) -> services.Written:
        return services.post_create(
            actor=user_of(self.scope),
            blog_id=self.blog_id,
            client_id=request.client_id,
            body=request.body,
            key_event=request.key_event,
            pinned=request.pinned,
            publish_at=request.publish_at,
        )
