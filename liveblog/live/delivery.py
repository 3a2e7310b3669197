"""One reader's delivery: what a connected reader is sent, in order, over its wire, whatever the
transport (a websocket, liveblog/consumers.py; an SSE response, liveblog/sse.py).

The ordering rule of the protocol lives here, once: register with the hub before the catch-up
is read, hold live events back while the catch-up goes out, then drop those it already covered.
Every frame leaves through the wire (`wire.py`, `eventstream.py`) in order, without awaiting:
the hub hands events over synchronously, so one slow reader never holds up the rest. A reader
too far behind is cut loose (the transport closes) and comes back with `since`.

Bounds (README, "Security"): every frame sent counts against LIVEBLOG_MAX_BACKLOG_BYTES; a
catch-up is paced on what the socket takes and given up when it takes nothing for 2.5
heartbeats; a resync during a catch-up is answered by that catch-up; live events held during a
catch-up are capped at the replay window.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from .. import protocol
from ..errors import LiveblogError, NotFound, Unavailable
from .feed import Frame
from .hub import Hub
from .wire import Wire, wait_for_room

logger = logging.getLogger(__name__)

# Close codes (a websocket's; an event stream just ends, see eventstream.py).
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_UNAVAILABLE = 1011
# A catch-up to a socket that takes nothing for this many heartbeats is given up on: the
# client's own rule for a dead socket (DESIGN.md).
STALL_HEARTBEATS = 2.5
# A catch-up's next frame waits until the socket holds at most this much unsent (or a quarter of
# the backlog bound, if less): the kernel's own buffer keeps a good link busy meanwhile, and a
# client that does not read pins no more than this plus one frame.
CATCH_UP_LOW_WATER = 64 * 1024


def heartbeat_seconds() -> float | int:
    seconds = settings.LIVEBLOG_HEARTBEAT_SECONDS
    return int(seconds) if float(seconds).is_integer() else seconds


class Delivery:
    """A reader of one blog on this process, as the hub sees it (`stream.Reader`). Thousands are
    held per process for hours, so it keeps little: slots, and the catch-up's task set and lock
    only while a catch-up runs or waits."""

    __slots__ = ("wire", "slug", "hub", "blog_id", "held", "low_water", "catching_up", "stalled",
                 "cut_loose", "last_seq", "_tasks", "_catching_up_lock")

    def __init__(self, wire: Wire, *, slug: str) -> None:
        self.wire = wire
        self.slug = slug
        self.hub: Hub | None = None
        self.blog_id: int | None = None
        self.held: list[Frame] = []
        # A catch-up frame waits while the socket holds more than this unsent (see `_paced`).
        self.low_water = min(settings.LIVEBLOG_MAX_BACKLOG_BYTES // 4, CATCH_UP_LOW_WATER)
        # True while a catch-up is being sent: live events wait in `held`, and a resync is
        # answered by the catch-up under way.
        self.catching_up = True
        # Live delivery stopped after an impossible gap; the next ping makes the client resync.
        self.stalled = False
        # Cut loose for being too slow, or closed for abuse: nothing more is sent.
        self.cut_loose = False
        self.last_seq = 0
        # The catch-ups running or waiting for the one under way (None when there are none),
        # and the lock that runs them one at a time (a log reset waits for the one under way).
        self._tasks: set[asyncio.Task] | None = None
        self._catching_up_lock: asyncio.Lock | None = None

    # --- Life -----------------------------------------------------------------------------------

    async def follow(self, hub: Hub, blog_id: int, *, since: int | None,
                     epoch: str | None) -> None:
        """Register with the hub, then send hello + catch-up + live. Raises what `subscribe`
        raises (NotFound, Unavailable)."""
        await hub.subscribe(blog_id, self)
        self.hub, self.blog_id = hub, blog_id
        self._start_catch_up(since=since, epoch=epoch, hello=True)

    async def leave(self) -> None:
        """Stop: cancel the catch-up under way and leave the hub (however the transport ended)."""
        for task in list(self._tasks or ()):
            task.cancel()
        if self.hub is not None:
            hub, self.hub = self.hub, None
            await hub.unsubscribe(self.blog_id, self)

    @property
    def following(self) -> bool:
        return self.hub is not None

    def resync(self, *, since: int | None, epoch: str | None) -> None:
        """The client asks for what follows `since`; a catch-up under way answers it."""
        if not self.catching_up:
            self._start_catch_up(since=since, epoch=epoch, hello=False)

    # --- Sending --------------------------------------------------------------------------------

    def out(self, text: str) -> None:
        """Send one frame (in order after everything sent before); a socket that is too far
        behind to take it is cut loose."""
        if not self.cut_loose and not self.wire.send(text):
            self.cut_off()

    def refuse(self, error: LiveblogError) -> None:
        """A fatal error: its frame, then the close that goes with it."""
        self.out(protocol.error_frame(error.code, error.detail))
        self.wire.close(CLOSE_NOT_FOUND if isinstance(error, NotFound) else CLOSE_UNAVAILABLE)

    def cut_off(self) -> None:
        """Too far behind (or gone): stop sending and close; a live reader reconnects with
        `since` and is replayed from the ring, without holding up anyone else."""
        if self.cut_loose:
            return
        self.cut_loose = True
        self.held = []
        logger.info("blog %s: a reader fell behind at seq %s; closing it to resync",
                    self.blog_id, self.last_seq)
        self.wire.abandon(CLOSE_TOO_SLOW)

    # --- Catch-up -------------------------------------------------------------------------------

    def _start_catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """Run a catch-up beside the reading of incoming frames (which it must not hold up)."""
        self.catching_up = True
        task = asyncio.ensure_future(self.catch_up(since=since, epoch=epoch, hello=hello))
        if self._tasks is None:
            self._tasks, self._catching_up_lock = set(), asyncio.Lock()
        self._tasks.add(task)
        task.add_done_callback(self._catch_up_done)

    def _catch_up_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not self._tasks:  # none runs or waits: nobody holds the lock or waits for it
            self._tasks = self._catching_up_lock = None

    async def catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """Send a snapshot or the replay `since+1 … head`, then `live`, then the live events
        that arrived meanwhile and were not in the catch-up. Frames from the hub wait meanwhile."""
        async with self._catching_up_lock:
            await self._catch_up(since=since, epoch=epoch, hello=hello)

    async def _catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        self.catching_up, self.held, self.stalled = True, [], False
        catch_up = self.hub.catch_up(self.blog_id, since=since, epoch=epoch)
        pages = aiter(catch_up.pages())
        try:
            # `hello` carries the head of the first frame (a snapshot's is known once read).
            first = await anext(pages, None)
            if hello:
                self.out(protocol.hello_frame(slug=self.slug, epoch=catch_up.epoch,
                                              head=catch_up.head, heartbeat=heartbeat_seconds()))
            if first is not None and not await self._paced(first):
                return
            async for page in pages:
                if not await self._paced(page):
                    return
        except Unavailable as error:
            logger.warning("catch-up for blog %s failed: %r", self.blog_id, error.__cause__)
            self.refuse(Unavailable("try again shortly"))
            return  # the client reconnects with its since
        self.last_seq = catch_up.head
        self.out(protocol.live_frame(catch_up.head))
        if self.held:
            self._send_events(self.held)
        self.held = []
        self.catching_up = False

    async def _paced(self, frames: list[Frame]) -> bool:
        """Send catch-up frames as the socket has room for them. False when the client stopped
        taking bytes (it is cut loose): a catch-up never piles up in memory.

        While the socket holds at most `low_water` unsent, the frames that fill the room left
        (and the one that crosses it) go out in one write: a client that does not read pins no
        more than `low_water` plus one frame, as if they went one by one, and a replay to a
        reader that keeps up costs a socket write per 64 KiB, not per frame."""
        low_water, wire, start = self.low_water, self.wire, 0
        while start < len(frames):
            if self.cut_loose:
                return False
            # Awaited only when the socket is full: a replay to a reader that keeps up (a
            # reconnect storm is thousands of them) goes out without a coroutine per run.
            backlog = wire.backlog()
            if backlog > low_water:
                if not await wait_for_room(wire, low_water=low_water,
                                           stall_seconds=heartbeat_seconds() * STALL_HEARTBEATS):
                    self.cut_off()
                    return False
                backlog = wire.backlog()
            end, room = start, low_water - backlog
            while end < len(frames) and room >= 0:
                room -= len(frames[end].text)
                end += 1
            if not wire.send_many(frames[start:end]):
                self.cut_off()
                return False
            start = end
        return not self.cut_loose

    # --- From the hub (stream.Reader) -----------------------------------------------------------

    def hub_events(self, frames: list[Frame]) -> None:
        if self.catching_up:
            self.held.extend(frames)
            if len(self.held) > settings.LIVEBLOG_REPLAY_WINDOW:
                self.cut_off()  # its catch-up stalled: it comes back with since
        else:
            self._send_events(frames)

    def hub_reset(self) -> None:
        """The blog's log started over: nothing of the old epoch goes out any more; a snapshot
        of the new one follows (the snapshot covers whatever is held meanwhile)."""
        if not self.cut_loose:
            self._start_catch_up(since=None, epoch=None, hello=False)

    def hub_ping(self, head: int) -> None:
        if self.cut_loose:
            return
        if not self.catching_up:  # a heartbeat never lands inside a replay
            self.out(protocol.ping_frame(head))
        else:
            self.wire.keep_alive()  # what a proxy needs to see (an event stream's comment)

    def _send_events(self, frames: list[Frame]) -> None:
        """Send the events this reader has not had yet, in one write when there are several."""
        if self.stalled or self.cut_loose:
            return
        if frames[0].seq <= self.last_seq:  # sent already in the catch-up
            frames = [frame for frame in frames if frame.seq > self.last_seq]
            if not frames:
                return
        if frames[0].seq != self.last_seq + 1:
            # The hub hands out gapless runs, so this is a bug; never send a gap. The client
            # sees ping.head ahead of its last seq and resyncs, which restarts delivery.
            logger.error("blog %s: seq %s after %s; stalling until resync",
                         self.blog_id, frames[0].seq, self.last_seq)
            self.stalled = True
            return
        self.last_seq = frames[-1].seq
        if not self.wire.send_many(frames):
            self.cut_off()
