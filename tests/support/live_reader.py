"""A Python twin of the browser's feed client, for tests that need many readers that reconnect.

It keeps the last applied seq and epoch, applies events strictly in order (a duplicate is
counted and ignored; a gap is never applied: it asks for a resync), resyncs when a ping's head is
ahead, and reconnects with `since` whenever its socket closes. Every applied seq is recorded, so
a test can check that each reader ended with every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

import websockets


class LiveReader:
    def __init__(self, ws_base: str, slug: str, *, origin: str, name: str = "") -> None:
        self.ws_base = ws_base
        self.slug = slug
        self.origin = origin
        self.name = name
        self.seq: int | None = None
        self.epoch: str | None = None
        self.applied: list[int] = []  # every event seq applied, in order
        self.arrived: dict[int, float] = {}  # seq -> time.monotonic() when it was applied
        self.duplicates = 0
        self.gaps = 0
        self.snapshots = 0
        self.connections = 0
        self.live = asyncio.Event()
        self.changed = asyncio.Event()
        self.heartbeat = 15.0
        self._task: asyncio.Task | None = None
        self._socket = None
        self._stopping = False

    def url(self) -> str:
        query = "" if self.seq is None else f"?since={self.seq}&epoch={self.epoch}"
        return f"{self.ws_base}/ws/liveblog/{self.slug}/{query}"

    def start(self) -> LiveReader:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self) -> None:
        self._stopping = True
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                async with websockets.connect(self.url(), origin=self.origin,
                                              open_timeout=10, max_size=None) as socket:
                    self._socket = socket
                    self.connections += 1
                    attempt = 0
                    await self._read(socket)
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            self._socket = None
            self.live.clear()
            self._changed()
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2 ** attempt)))

    async def _read(self, socket) -> None:
        while True:
            # A socket silent for 2.5 heartbeats is dead (the browser client's rule).
            raw = await asyncio.wait_for(socket.recv(), timeout=self.heartbeat * 2.5)
            frame = json.loads(raw)
            kind = frame["type"]
            if kind == "hello":
                self.heartbeat = float(frame["heartbeat"])
            elif kind == "snapshot":
                self.snapshots += 1
                self.epoch, self.seq = frame["epoch"], frame["head"]
            elif kind == "event":
                await self._apply(socket, frame)
            elif kind == "live":
                self.live.set()
            elif kind == "ping" and self.seq is not None and frame["head"] > self.seq:
                await socket.send(json.dumps({"type": "resync", "since": self.seq}))
            self._changed()

    async def _apply(self, socket, frame: dict) -> None:
        if self.seq is None or frame["seq"] <= self.seq:
            self.duplicates += 1
        elif frame["seq"] != self.seq + 1:
            self.gaps += 1
            await socket.send(json.dumps({"type": "resync", "since": self.seq}))
        else:
            self.seq = frame["seq"]
            self.applied.append(frame["seq"])
            self.arrived[frame["seq"]] = time.monotonic()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait_for(self, condition, *, timeout: float, what: str) -> float:
        """Wait until condition(self) holds; returns how long it took."""
        started = time.monotonic()
        deadline = started + timeout
        while not condition(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"reader {self.name}: {what} not reached in {timeout}s "
                    f"(seq {self.seq}, {len(self.applied)} applied, live={self.live.is_set()})"
                )
            changed = self.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.5))
        return time.monotonic() - started


async def all_reach(readers: list[LiveReader], seq: int, *, timeout: float) -> float:
    """Wait until every reader has applied `seq`; returns the time the last one took."""
    times = await asyncio.gather(*[
        reader.wait_for(lambda r: (r.seq or 0) >= seq, timeout=timeout, what=f"seq {seq}")
        for reader in readers
    ])
    return max(times, default=0.0)
