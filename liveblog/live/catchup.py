"""What a (re)connecting reader is sent before live events, decided in one place.

A reader brings a position (`since`, `epoch`) or none. It gets either a snapshot (no position,
another epoch's numbers, a seq beyond the head, or further behind than the replay window) or the
replay `since+1 … head`: from the feed's ring when it reaches back that far, else from the log in
pages (memory stays flat however long the replay). The caller iterates the frames and then knows
the head it brought the reader to:

    catch_up = await stream.catch_up(since=since, epoch=epoch)
    async for frame in catch_up:
        send(frame)
    send(live_frame(catch_up.head))

Each item is a `Frame` (its seq and epoch are what an SSE message's id carries): the ring's and a
snapshot's are shared with every other reader sent them, so their encoded bytes are made once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from .. import protocol
from .feed import Feed, Frame
from .snapshots import Snapshot

# A replay from the database goes out in pages of this many events.
LOG_PAGE = 1000

ReadEvents = Callable[[int, int], Awaitable[list[tuple[int, str]]]]  # (after, upto) -> frames
ReadSnapshot = Callable[[], Awaitable[Snapshot]]


class CatchUp:
    """An async iterable of frames, with the `epoch` and `head` they bring a reader to."""

    def __init__(self, *, epoch: str, head: int, frames: list[Frame],
                 since: int = 0, read_events: ReadEvents | None = None,
                 read_snapshot: ReadSnapshot | None = None) -> None:
        self.epoch = epoch
        self.head = head
        self._frames = frames
        self._since = since
        self._read_events = read_events
        self._read_snapshot = read_snapshot

    @classmethod
    def plan(cls, feed: Feed, *, since: int | None, epoch: str | None, window: int,
             snapshot: ReadSnapshot, events: ReadEvents) -> CatchUp:
        """The catch-up for a reader at (`since`, `epoch`) of a feed it is registered with:
        whatever it reads here overlaps what the feed hands it live from now on."""
        if protocol.needs_snapshot(since=since, epoch=epoch, current_epoch=feed.epoch,
                                   head=feed.head, window=window):
            return cls(epoch=feed.epoch, head=feed.head, frames=[], read_snapshot=snapshot)
        frames = feed.replay(since)
        if frames is not None:
            return cls(epoch=feed.epoch, head=feed.head, frames=frames)
        return cls(epoch=feed.epoch, head=feed.head, frames=[], since=since,
                   read_events=events, read_snapshot=snapshot)

    async def __aiter__(self) -> AsyncIterator[Frame]:
        async for page in self.pages():
            for frame in page:
                yield frame

    async def pages(self) -> AsyncIterator[list[Frame]]:
        """The same frames in runs (the ring's at once, the log's a page at a time), so that a
        sender can write several in one go."""
        if self._frames:
            yield self._frames
        if self._read_events is not None:
            async for page in self._from_log():
                yield page
        elif self._read_snapshot is not None:
            yield [await self._snapshot()]

    async def _snapshot(self) -> Frame:
        snapshot = await self._read_snapshot()
        self.epoch, self.head = snapshot.epoch, snapshot.head
        return snapshot.frame

    async def _from_log(self) -> AsyncIterator[list[Frame]]:
        """`since+1 … head` from the database, page by page. A page that comes back short means
        the log started over meanwhile (a reset): the reader gets a snapshot of the new epoch
        instead, which replaces whatever it was sent."""
        sent = self._since
        while sent < self.head:
            upto = min(sent + LOG_PAGE, self.head)
            rows = await self._read_events(sent, upto)
            if [seq for seq, _ in rows] != list(range(sent + 1, upto + 1)):
                yield [await self._snapshot()]
                return
            yield [Frame(seq, text, self.epoch) for seq, text in rows]
            sent = upto
