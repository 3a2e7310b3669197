"""One blog on this process: its feed, its readers, its snapshots, and healing from the log.

Events reach a stream from the channel layer (`on_message`) and, when the layer lost or delayed
some, from the database log (`fill`, and the heartbeat's `heal`). The stream passes them through
its `Feed`, which puts them in order, and hands the ordered events to every reader in a *pass*:
a reader's outgoing side never makes the stream wait (see wire.py).

A pass goes over the readers in slices of `PASS_SLICE` and gives the event loop a turn between
slices, so a fan-out to thousands of readers does not hold back what else is ready (the author's
answer to the very create that made the event, a reader connecting). Events that arrive during a
pass wait for the next one, which hands them to each reader together: in a burst a reader gets
several events in one write, not one write each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Protocol

from ..errors import Unavailable
from . import gcpolicy
from .broadcast import EVENT_MESSAGE_TYPE, RESET_MESSAGE_TYPE
from .catchup import CatchUp
from .feed import Feed, Frame
from .log import Log
from .snapshots import SnapshotCache

logger = logging.getLogger(__name__)

# Two writers' broadcasts can arrive in either order; wait this long for the missing one
# before asking the database for it.
GAP_GRACE_SECONDS = 0.05
# Readers handed the events of a pass before the loop gets a turn: a few milliseconds of writes.
PASS_SLICE = 256


class Reader(Protocol):
    """What a stream hands its readers. None of these may block."""

    def hub_events(self, frames: list[Frame]) -> None:
        """Live events, in order: a gapless run, following the ones handed over before."""

    def hub_ping(self, head: int) -> None:
        """A heartbeat with this process's committed head."""

    def hub_reset(self) -> None:
        """The log started over (new epoch): start over from a snapshot."""


class BlogStream:
    def __init__(self, blog_id: int, *, log: Log, window: int) -> None:
        self.blog_id = blog_id
        self._log = log
        self._window = window
        self._readers: set[Reader] = set()
        # None until `start` has read the committed head (messages meanwhile wait in _early).
        self._feed: Feed | None = None
        self._early: list[dict] = []
        self._snapshots = SnapshotCache(functools.partial(log.snapshot, blog_id))
        self._fill_upto = 0
        self._filling: asyncio.Task | None = None
        # A reset message was seen and the new head is being read: messages wait in _early.
        self._resetting: asyncio.Task | None = None
        # Events for the next pass, and the pass under way (see `_deliver`).
        self._outgoing: list[Frame] = []
        self._pass: _Pass | None = None

    # --- Readers ------------------------------------------------------------------------------

    def add(self, reader: Reader) -> None:
        self._readers.add(reader)

    def discard(self, reader: Reader) -> None:
        self._readers.discard(reader)

    @property
    def reader_count(self) -> int:
        return len(self._readers)

    # --- Life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the committed head, epoch and the recent events (the ring). Call once this
        process is in the blog's group: every event after that head then reaches the stream,
        live or by `fill`. Raises NotFound when the blog is gone."""
        head, epoch, recent = await self._log.tail(self.blog_id, self._window)
        self._feed = Feed(head=head, epoch=epoch, recent=recent, window=self._window)
        early, self._early = self._early, []
        for message in early:
            self.on_message(message)

    @property
    def started(self) -> bool:
        return self._feed is not None

    def stop(self) -> None:
        for task in (self._filling, self._resetting):
            if task is not None:
                task.cancel()
        if self._pass is not None:
            self._pass.cancel()
            self._pass = None
        self._outgoing = []

    @property
    def head(self) -> int | None:
        return self._feed.head if self._feed else None

    @property
    def feed(self) -> Feed | None:
        return self._feed

    # --- Events in ----------------------------------------------------------------------------

    def on_message(self, message: dict) -> None:
        """A channel-layer message for this blog."""
        feed = self._feed
        if feed is None or self._resetting is not None:
            self._early.append(message)  # sorted out once the head and epoch are read
        elif message.get("type") == RESET_MESSAGE_TYPE:
            if message.get("epoch") != feed.epoch:
                self._resetting = asyncio.ensure_future(self._reset_from_log())
        elif message.get("type") == EVENT_MESSAGE_TYPE and message.get("epoch") == feed.epoch:
            self._accept(int(message["seq"]), str(message["frame"]))

    def _accept(self, seq: int, text: str) -> None:
        for frame in self._feed.accept(seq, text):
            self._deliver(frame)
        missing = self._feed.missing_upto
        if missing is not None:  # a gap: the layer lost or reordered something
            self._fill_soon(upto=missing)

    def _deliver(self, frame: Frame) -> None:
        """Hand an ordered event to every reader: in a pass of its own, started now, or in the
        next one when a pass is under way."""
        self._outgoing.append(frame)
        if self._pass is None:
            self._next_pass()

    def _next_pass(self) -> None:
        frames, self._outgoing = self._outgoing, []
        self._pass = _Pass(self, frames, list(self._readers))
        self._pass.step()

    def _pass_done(self) -> None:
        self._pass = None
        if self._outgoing:
            self._next_pass()
        else:
            # The frames are out: a full collection now delays nobody (gcpolicy.py).
            asyncio.get_running_loop().call_soon(gcpolicy.collect_if_due)

    def flush(self) -> None:
        """Finish the pass under way and any waiting events now (before a ping or a reset,
        which must follow every event handed out before them)."""
        while self._pass is not None:
            self._pass.finish()

    def is_reader(self, reader: Reader) -> bool:
        return reader in self._readers

    # --- Healing from the log -----------------------------------------------------------------

    def _fill_soon(self, *, upto: int) -> None:
        self._fill_upto = max(self._fill_upto, upto)
        if self._filling is None or self._filling.done():
            self._filling = asyncio.ensure_future(self._fill(grace=GAP_GRACE_SECONDS))

    async def _fill(self, *, grace: float = 0) -> None:
        """Deliver from the log everything up to `_fill_upto` that the layer lost."""
        if grace:
            await asyncio.sleep(grace)
        feed = self._feed
        while self._fill_upto > feed.head:
            epoch, after = feed.epoch, feed.head
            try:
                rows = await self._log.events(self.blog_id, epoch, after, self._fill_upto)
            except Unavailable as error:  # the next heartbeat tries again
                logger.warning("filling blog %s from the log failed: %r", self.blog_id, error)
                return
            if not rows or feed.epoch != epoch:
                return  # nothing there yet, or the log started over while we read
            logger.info("blog %s: %d event(s) from the log after seq %s",
                        self.blog_id, len(rows), after)
            for seq, text in rows:
                self._accept(seq, text)

    async def heal(self, *, committed: int, epoch: str) -> None:
        """The heartbeat read this committed position: deliver what the layer lost, or start
        over if the log was reset (its message lost, or sent by another process)."""
        feed = self._feed
        if epoch != feed.epoch:
            self._reset(head=committed, epoch=epoch, recent=[])
        elif committed > feed.head:
            self._fill_upto = max(self._fill_upto, committed)
            await self._fill()

    async def _reset_from_log(self) -> None:
        try:
            head, epoch, recent = await self._log.tail(self.blog_id, self._window)
        except Exception as error:  # noqa: BLE001 - the heartbeat notices the epoch later
            logger.warning("blog %s: reading the reset log failed: %r", self.blog_id, error)
        else:
            if epoch != self._feed.epoch:
                self._reset(head=head, epoch=epoch, recent=recent)
        finally:
            self._resetting = None
        early, self._early = self._early, []
        for message in early:
            self.on_message(message)

    def _reset(self, *, head: int, epoch: str, recent: list[tuple[int, str]]) -> None:
        """The log started over: take the new head and epoch, and restart every reader."""
        self.flush()
        self._feed.restart(head=head, epoch=epoch, recent=recent)
        self._snapshots.forget()
        self._fill_upto = 0
        logger.info("blog %s: log reset, epoch %s", self.blog_id, epoch)
        for reader in list(self._readers):
            try:
                reader.hub_reset()
            except Exception:  # noqa: BLE001
                logger.exception("resetting a reader of blog %s failed", self.blog_id)

    def ping(self) -> None:
        self.flush()  # a ping's head never runs ahead of the events its reader was handed
        for reader in list(self._readers):
            try:
                reader.hub_ping(self._feed.head)
            except Exception:  # noqa: BLE001
                logger.exception("ping to a reader of blog %s failed", self.blog_id)

    # --- Catching a reader up -----------------------------------------------------------------

    def catch_up(self, *, since: int | None, epoch: str | None) -> CatchUp:
        """What a reader registered with this stream is sent before live events."""
        feed = self._feed
        return CatchUp.plan(
            feed, since=since, epoch=epoch, window=self._window,
            snapshot=functools.partial(self._snapshots.at, head=feed.head, epoch=feed.epoch),
            events=functools.partial(self._log.events, self.blog_id, feed.epoch),
        )


class _Pass:
    """One hand-out of `frames` to the readers a stream had when it started, `PASS_SLICE` at a
    time with a turn of the event loop between slices. A reader that joins meanwhile gets these
    frames from its catch-up (they are in the feed already); one that left is skipped."""

    __slots__ = ("_stream", "_frames", "_readers", "_next", "_handle")

    def __init__(self, stream: BlogStream, frames: list[Frame], readers: list[Reader]) -> None:
        self._stream = stream
        self._frames = frames
        self._readers = readers
        self._next = 0
        self._handle: asyncio.Handle | None = None

    def step(self) -> None:
        """Hand the frames to the next slice of readers; schedule the slice after it."""
        self._handle = None
        start, stream = self._next, self._stream
        self._next = end = start + PASS_SLICE
        for reader in self._readers[start:end]:
            if start and not stream.is_reader(reader):
                continue  # it left during the pass
            try:
                reader.hub_events(self._frames)
            except Exception:  # noqa: BLE001 - one broken reader must not stop the others
                logger.exception("delivering blog %s seqs %s-%s failed", stream.blog_id,
                                 self._frames[0].seq, self._frames[-1].seq)
        if end < len(self._readers):
            self._handle = asyncio.get_running_loop().call_soon(self.step)
        else:
            stream._pass_done()

    def finish(self) -> None:
        """Hand the frames to every remaining reader now."""
        self.cancel()
        while self._stream._pass is self:
            self.step()
            self.cancel()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
