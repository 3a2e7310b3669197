"""Load generator: N websocket readers of one feed, in processes of their own.

    python -m bench.loadgen --url ws://127.0.0.1:8000/ws/liveblog/demo/ \\
        --origin http://127.0.0.1:8000 --readers 1000 --procs 2 --out result.json

Each reader connects and reads until `live` (hello → snapshot or replay → live). When every
reader is live (or has given up after its retries) one line goes to stdout:

    ready {"readers": 1000, "live": 1000, ...}

From then on every `event` frame's arrival is stamped with time.monotonic() (CLOCK_MONOTONIC,
shared by every process on Linux, so the poster's clock and ours agree). A line on stdin

    finish <events> <timeout>

waits until every live reader has <events> events (at most <timeout> seconds), closes the
sockets and writes the JSON result to --out. With --procs > 1 this process only spawns
`--procs` copies of itself with --procs 1, relays the protocol and merges their results.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

OPEN_TIMEOUT = 20.0


class CatchUpError(Exception):
    """The server answered something other than hello → snapshot/replay → live."""


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Reader:
    """One websocket reader and what it saw."""

    index: int
    live_seconds: float | None = None  # connect started → `live` received (last attempt)
    catch_up_events: int = 0  # `event` frames between hello and `live`
    failed_attempts: int = 0
    error: str | None = None  # why the last attempt failed, if it never went live
    closed_early: str | None = None  # the socket closed before we closed it
    arrivals: dict[int, float] = field(default_factory=dict)  # seq → first arrival
    duplicates: int = 0
    out_of_order: int = 0
    last_seq: int = 0


@dataclass
class Options:
    url: str
    origin: str | None
    readers: int
    concurrency: int
    attempts: int
    live_timeout: float


class Worker:
    """All readers of one process, on one event loop."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.readers = [Reader(index) for index in range(options.readers)]
        self.sockets: list[ClientConnection] = []
        self.frame_bytes: Counter[int] = Counter()
        self.closing = False
        self.first_connect: float | None = None
        self.last_live: float | None = None

    async def run(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(self.options.concurrency)
        settled = [asyncio.Event() for _ in self.readers]
        tasks = [asyncio.create_task(self._read(reader, gate, settled[reader.index]))
                 for reader in self.readers]
        await asyncio.gather(*(event.wait() for event in settled))
        # The connections are here to stay: take them out of the garbage collector's sight,
        # so that a full collection in this process cannot stall the arrival stamps.
        gc.collect()
        gc.freeze()
        print("ready " + json.dumps(self._ready_summary()), flush=True)
        expected, timeout = await _finish_command()
        await self._wait_for(expected, timeout)
        await self._close_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.result()

    def _ready_summary(self) -> dict[str, Any]:
        live = sum(reader.live_seconds is not None for reader in self.readers)
        return {"readers": len(self.readers), "live": live,
                "first_connect": self.first_connect, "last_live": self.last_live}

    async def _read(self, reader: Reader, gate: asyncio.Semaphore, settled: asyncio.Event) -> None:
        async with gate:
            ws = await self._open(reader)
        settled.set()
        if ws is None:
            return
        try:
            async for raw in ws:
                now = time.monotonic()
                frame = json.loads(raw)
                if frame.get("type") == "event":
                    self._arrived(reader, frame["seq"], now)
                    self.frame_bytes[len(raw.encode())] += 1
        except websockets.ConnectionClosed as closed:
            if not self.closing:
                reader.closed_early = f"{type(closed).__name__}: {closed}"
        else:
            if not self.closing:
                reader.closed_early = f"closed by the server: {ws.close_code} {ws.close_reason}"

    @staticmethod
    def _arrived(reader: Reader, seq: int, now: float) -> None:
        if seq in reader.arrivals:
            reader.duplicates += 1
            return
        if seq != reader.last_seq + 1 and reader.last_seq:
            reader.out_of_order += 1
        reader.arrivals[seq] = now
        reader.last_seq = max(reader.last_seq, seq)

    async def _open(self, reader: Reader) -> ClientConnection | None:
        """Connect and read up to `live`, with retries; None if every attempt failed."""
        for attempt in range(self.options.attempts):
            started = time.monotonic()
            if self.first_connect is None:
                self.first_connect = started
            ws = None
            try:
                ws = await connect(
                    self.options.url, origin=self.options.origin, open_timeout=OPEN_TIMEOUT,
                    ping_interval=None, max_size=None, max_queue=None, compression=None,
                    proxy=None,
                )
                async with asyncio.timeout(self.options.live_timeout):
                    reader.catch_up_events = await self._catch_up(ws)
            except (OSError, TimeoutError, websockets.WebSocketException, CatchUpError) as error:
                reader.error = f"{type(error).__name__}: {error}"[:200]
                reader.failed_attempts += 1
                if ws is not None:
                    ws.transport.abort()
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            now = time.monotonic()
            reader.live_seconds, reader.error = now - started, None
            self.last_live = max(self.last_live or now, now)
            self.sockets.append(ws)
            return ws
        return None

    async def _catch_up(self, ws: ClientConnection) -> int:
        """Frames up to `live`; returns how many `event` frames came before it."""
        events = 0
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "live":
                return events
            if kind == "event":
                events += 1
                self.frame_bytes[len(raw.encode())] += 1
            elif kind == "error":
                raise CatchUpError(f"error frame {frame}")
        raise CatchUpError(f"closed before live: {ws.close_code} {ws.close_reason}")

    async def _wait_for(self, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(reader.arrivals) >= expected for reader in self.readers
                   if reader.live_seconds is not None and reader.closed_early is None):
                return
            await asyncio.sleep(0.05)

    async def _close_all(self) -> None:
        self.closing = True
        closes = [ws.close() for ws in self.sockets]
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*closes, return_exceptions=True)
        except TimeoutError:
            for ws in self.sockets:
                ws.transport.abort()

    def result(self) -> dict[str, Any]:
        live = [reader for reader in self.readers if reader.live_seconds is not None]
        arrivals: dict[str, list[float]] = {}
        for reader in live:
            for seq, moment in reader.arrivals.items():
                arrivals.setdefault(str(seq), []).append(moment)
        return {
            "readers": len(self.readers),
            "live": len(live),
            "failed_attempts": sum(reader.failed_attempts for reader in self.readers),
            "duplicates": sum(reader.duplicates for reader in live),
            "out_of_order": sum(reader.out_of_order for reader in live),
            "errors": dict(Counter(r.error for r in self.readers if r.error)),
            "closed_early": dict(Counter(r.closed_early for r in live if r.closed_early)),
            "live_seconds": [reader.live_seconds for reader in live],
            "catch_up_events": [reader.catch_up_events for reader in live],
            "frame_bytes": {str(size): count for size, count in self.frame_bytes.items()},
            "arrivals": arrivals,
            "first_connect": self.first_connect,
            "last_live": self.last_live,
        }


async def _finish_command() -> tuple[int, float]:
    """Block (in a thread) until `finish <events> <timeout>` arrives on stdin."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:  # our parent went away: finish now
            return 0, 0.0
        words = line.split()
        if len(words) == 3 and words[0] == "finish":
            return int(words[1]), float(words[2])


# --- Several processes -------------------------------------------------------------------------

_EARLIEST = {"first_connect"}
_LATEST = {"last_live"}


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge worker results: counts add up, lists concatenate, times take the extreme."""
    merged: dict[str, Any] = {}
    for result in results:
        for key, value in result.items():
            merged[key] = _merge_value(key, merged.get(key), value)
    return merged


def _merge_value(key: str, old: Any, new: Any) -> Any:
    if old is None or new is None:
        return new if old is None else old
    if key in _EARLIEST:
        return min(old, new)
    if key in _LATEST:
        return max(old, new)
    if isinstance(new, dict):
        return {k: _merge_value(k, old.get(k), new.get(k)) for k in old.keys() | new.keys()}
    return old + new  # numbers add, lists concatenate


def _spawn_workers(args: argparse.Namespace, directory: Path) -> list[subprocess.Popen]:
    shares = [args.readers // args.procs + (i < args.readers % args.procs)
              for i in range(args.procs)]
    workers = []
    for index, share in enumerate(shares):
        command = [
            sys.executable, "-m", "bench.loadgen", "--url", args.url, "--readers", str(share),
            "--procs", "1", "--concurrency", str(args.concurrency),
            "--attempts", str(args.attempts), "--live-timeout", str(args.live_timeout),
            "--out", str(directory / f"worker-{index}.json"),
        ]
        if args.origin:
            command += ["--origin", args.origin]
        workers.append(subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True))
    return workers


def _relay(args: argparse.Namespace) -> dict[str, Any]:
    """Run --procs workers, print one merged `ready`, pass `finish` on, merge the results."""
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        workers = _spawn_workers(args, Path(tmp))
        try:
            ready = []
            for worker in workers:
                line = worker.stdout.readline()
                if not line.startswith("ready "):
                    raise SystemExit(f"a loadgen worker failed (exit {worker.wait()})")
                ready.append(json.loads(line.removeprefix("ready ")))
            print("ready " + json.dumps(merge(ready)), flush=True)
            command = sys.stdin.readline() or "finish 0 0\n"
            for worker in workers:
                worker.stdin.write(command)
                worker.stdin.flush()
            for worker in workers:
                worker.wait()
            return merge([json.loads((Path(tmp) / f"worker-{index}.json").read_text())
                          for index in range(len(workers))])
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="websocket URL of the feed")
    parser.add_argument("--origin", help="Origin header (Liveblog requires its own URL)")
    parser.add_argument("--readers", type=int, required=True)
    parser.add_argument("--procs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=25,
                        help="connects in flight per process (default 25; daphne listens "
                             "with Twisted's backlog of 50)")
    parser.add_argument("--attempts", type=int, default=3, help="tries per reader (default 3)")
    parser.add_argument("--live-timeout", type=float, default=60.0,
                        help="seconds from handshake to `live` (default 60)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)
    args.procs = max(1, min(args.procs, args.readers))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_nofile_limit()
    if args.procs == 1:
        options = Options(url=args.url, origin=args.origin, readers=args.readers,
                          concurrency=args.concurrency, attempts=args.attempts,
                          live_timeout=args.live_timeout)
        result = asyncio.run(Worker(options).run())
    else:
        result = _relay(args)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
