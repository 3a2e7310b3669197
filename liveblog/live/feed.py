"""One blog's events in order: a plain object, no I/O, no event loop.

The channel layer may lose, repeat or reorder events (two writers' broadcasts cross; Redis drops
what exceeds a queue). A `Feed` takes whatever arrives, as `(seq, text)`, and hands back only a
gapless, ordered run: each seq once, right after the one before. What it cannot hand out yet
waits; the gap it leaves is reported (`missing_upto`) for the caller to fill from the log.

It also keeps the newest events (a ring as long as the replay window), so that a reconnecting
reader is replayed from memory: `replay(since)`. The ring holds the same `Frame`s that went out
live, so a thousand readers replayed together share each frame's encoded bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any


class Frame:
    """One event (or a snapshot: `seq` is then its head) as it goes out: its position and JSON
    text, plus the bytes each transport makes of it (a websocket frame, see wire.py; an SSE
    message, see eventstream.py), made once for every reader of the process."""

    __slots__ = ("seq", "text", "epoch", "_framed", "_streamed")

    def __init__(self, seq: int, text: str, epoch: str = "") -> None:
        self.seq = seq
        self.text = text
        self.epoch = epoch
        self._framed: Any = None
        self._streamed: dict[Callable, Any] | None = None

    def framed(self, make: Callable[[str], Any]) -> Any:
        """`make(text)` for a websocket, computed by the first caller and shared by the rest."""
        if self._framed is None:
            self._framed = make(self.text)
        return self._framed

    def streamed(self, make: Callable[[Frame], Any]) -> Any:
        """`make(self)` for an event stream (one result per `make`: with or without HTTP's
        chunked coding), computed by the first caller and shared by the rest."""
        if self._streamed is None:
            self._streamed = {}
        made = self._streamed.get(make)
        if made is None:
            made = self._streamed[make] = make(self)
        return made


class Feed:
    """The ordered events of one blog in one epoch, from `head` on."""

    def __init__(self, *, head: int, epoch: str, recent: Iterable[tuple[int, str]],
                 window: int) -> None:
        """`recent`: the events just before `head` (oldest first, ending at `head`) that seed the
        ring; `window`: how many events the ring keeps."""
        self._window = window
        self._restart(head, epoch, recent)

    def _restart(self, head: int, epoch: str, recent: Iterable[tuple[int, str]]) -> None:
        self._head = head
        self._epoch = epoch
        self._ring: deque[Frame] = deque(
            (Frame(seq, text, epoch) for seq, text in recent), maxlen=self._window
        )
        # Events that came early: they wait for the ones before them.
        self._pending: dict[int, str] = {}

    @property
    def head(self) -> int:
        """The newest seq handed out; every seq up to it went out, in order."""
        return self._head

    @property
    def epoch(self) -> str:
        return self._epoch

    def restart(self, *, head: int, epoch: str, recent: Iterable[tuple[int, str]] = ()) -> None:
        """The log started over (a new epoch): forget everything of the old one."""
        self._restart(head, epoch, recent)

    def accept(self, seq: int, text: str) -> list[Frame]:
        """Take one event; return the run it completes, in order (often just itself; nothing
        when it comes early or is a duplicate)."""
        if seq <= self._head:
            return []  # already handed out (or older than this feed's start: in the ring)
        self._pending[seq] = text
        run = []
        while self._head + 1 in self._pending:
            self._head += 1
            frame = Frame(self._head, self._pending.pop(self._head), self._epoch)
            self._ring.append(frame)
            run.append(frame)
        return run

    @property
    def missing_upto(self) -> int | None:
        """The end of the gap before the events waiting here (they came early: something before
        them was lost or is late), or None when nothing waits."""
        return min(self._pending) - 1 if self._pending else None

    def replay(self, since: int) -> list[Frame] | None:
        """Events `since+1 … head` from memory, or None when the ring does not reach back that
        far (or `since` is ahead of the head)."""
        if since == self._head:
            return []
        if since > self._head or not self._ring or self._ring[0].seq > since + 1:
            return None
        start = since + 1 - self._ring[0].seq
        return list(self._ring)[start:]

    def ring_seqs(self) -> list[int]:
        """The seqs the ring holds, oldest first (for tests and diagnostics)."""
        return [frame.seq for frame in self._ring]
