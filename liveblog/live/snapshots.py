"""The snapshot a (re)connecting reader starts from, read once for everyone asking together.

A snapshot at a given (epoch, head) never changes (every visible change moves the head), so the
newest one read is kept and reused until the head moves on. A thousand readers arriving at once
(a deploy, a network blip) make one database read between them: a reader arriving while a read is
under way waits for that read instead of starting its own, unless the read began before events
this reader has already missed were delivered (then it would lack them; it reads again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property

from .feed import Frame


@dataclass(frozen=True)
class Snapshot:
    epoch: str
    head: int
    text: str  # the encoded `snapshot` frame

    @cached_property
    def frame(self) -> Frame:
        """The snapshot as it goes out (its seq is the head): encoded once for every reader
        that starts from it."""
        return Frame(self.head, self.text, self.epoch)


class SnapshotCache:
    def __init__(self, read: Callable[[], Awaitable[Snapshot]]) -> None:
        """`read()` reads a consistent snapshot from the database (head and posts agree)."""
        self._read = read
        self._newest: Snapshot | None = None
        self._reading: asyncio.Future[Snapshot] | None = None

    async def at(self, *, head: int, epoch: str) -> Snapshot:
        """A snapshot at `head` or later: the kept one when it is at exactly this position, else
        the read under way (if it started late enough to hold `head`), else a new read."""
        newest = self._newest
        if newest is not None and (newest.epoch, newest.head) == (epoch, head):
            return newest
        if self._reading is None or self._reading.done():
            self._reading = reading = asyncio.ensure_future(self._read())
            # Kept the moment it is read, not when its first waiter resumes: a reader arriving
            # in between finds it instead of starting a read of its own.
            reading.add_done_callback(self._read_done)
        snapshot = await asyncio.shield(self._reading)
        if snapshot.head < head:  # the shared read began before `head` was delivered
            snapshot = await self._read()
            self._keep(snapshot)
        return snapshot

    def _read_done(self, reading: asyncio.Future[Snapshot]) -> None:
        if reading is self._reading and not reading.cancelled() and reading.exception() is None:
            self._keep(reading.result())

    def _keep(self, snapshot: Snapshot) -> None:
        kept = self._newest
        if kept is None or kept.epoch != snapshot.epoch or snapshot.head >= kept.head:
            self._newest = snapshot

    def forget(self) -> None:
        """The log started over: nothing kept belongs to the new epoch."""
        self._newest = None
        self._reading = None
