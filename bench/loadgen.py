"""Load generator: N readers of one feed, in processes of their own, over websockets, Server-Sent
Events or Socket.IO (bench.streams).

    python -m bench.loadgen --url ws://127.0.0.1:8000/ws/liveblog/demo/ \\
        --origin http://127.0.0.1:8000 --readers 1000 --procs 2 --out result.json
    python -m bench.loadgen --transport sse --url http://127.0.0.1:8000/sse/liveblog/demo/ \\
        --readers 1000 --procs 2 --out result.json
    python -m bench.loadgen --transport socketio --url ws://127.0.0.1:3000/ \\
        --readers 1000 --procs 2 --out result.json

Every transport carries the same frames (an SSE message's data is the websocket frame's JSON; a
Socket.IO `event` packet's payload is one, its connect acknowledgement is `live`), and everything
below is the same for all.

Each reader connects and reads until `live` (hello → snapshot or replay → live). When every
reader is live (or has given up after its retries) one line goes to stdout:

    ready {"readers": 1000, "live": 1000, ...}

From then on every `event` frame's arrival is stamped with time.monotonic() (CLOCK_MONOTONIC,
shared by every process on Linux, so the poster's clock and ours agree). A line on stdin

    finish <events> <timeout>

waits until every live reader has <events> events (at most <timeout> seconds), closes the
sockets and writes the JSON result to --out. Before that, any number of

    wait <events> <timeout>

lines wait the same way and answer `arrived {"readers": …, "complete": …}` (how many live readers
have <events> events), and any number of

    storm <url>

lines drop every reader's socket at once (the TCP connection is aborted, as when a phone loses
its network) and reconnect every reader to <url> at once (at most --storm-concurrency connects
in flight per process; default: all), each reading hello → replay → live again (a Socket.IO
reader asks to recover its session from the offset of the event whose seq is the `since` of
<url>, or else of the last event it saw). When all are live again (or gave up) one line goes to
stdout: `stormed {…}`. With --procs > 1 this process only spawns `--procs` copies of itself with
--procs 1, relays the protocol and merges their results.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
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
from urllib.parse import urlsplit

import websockets

from .streams import TRANSPORTS, Refused, SocketIOSession, Stream, StreamEnded, open_stream

# Readers per source address on loopback: Liveblog caps sockets per client address
# (LIVEBLOG_MAX_SOCKETS_PER_ADDRESS, 128), so readers come from 127.1.0.1, 127.1.0.2, … as
# many clients behind a few office NATs would, never from the address a flood uses (127.0.0.1).
READERS_PER_ADDRESS = 64
FIRST_SOURCE = ipaddress.IPv4Address("127.1.0.1")


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
    """One reader and what it saw."""

    index: int
    live_seconds: float | None = None  # connect started → `live` received (last attempt)
    live_at: float | None = None  # when `live` came (time.monotonic())
    catch_up_events: int = 0  # `event` frames between hello and `live`
    catch_up_seqs: str = ""  # "first..last" of those (" with gaps" if they were not a run)
    failed_attempts: int = 0
    error: str | None = None  # why the last attempt failed, if it never went live
    closed_early: str | None = None  # the socket closed before we closed it
    arrivals: dict[int, float] = field(default_factory=dict)  # seq → first arrival
    duplicates: int = 0
    out_of_order: int = 0
    last_seq: int = 0
    session: SocketIOSession | None = None  # a Socket.IO reader's, kept across reconnects


@dataclass
class Options:
    url: str
    origin: str | None
    readers: int
    concurrency: int
    attempts: int
    live_timeout: float
    storm_concurrency: int = 0  # 0: every reader at once
    first_reader: int = 0  # this process's first reader among all processes' readers
    transport: str = "ws"  # "ws" or "sse" (bench.streams)


class Worker:
    """All readers of one process, on one event loop."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.readers = [Reader(index) for index in range(options.readers)]
        self.sockets: list[Stream] = []
        self.tasks: list[asyncio.Task] = []
        self.frame_bytes: Counter[int] = Counter()
        self.closing = False
        self.first_connect: float | None = None
        self.last_live: float | None = None

    async def run(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(self.options.concurrency)
        self.tasks = await self._connect_all(self.options.url, gate)
        self._freeze()
        print("ready " + json.dumps(self._ready_summary()), flush=True)
        while (command := await _next_command())[0] != "finish":
            if command[0] == "storm":
                print("stormed " + json.dumps(await self._storm(command[1])), flush=True)
            else:
                print("arrived " + json.dumps(await self._wait_for(*command[1:])), flush=True)
        _, expected, timeout = command
        await self._wait_for(expected, timeout)
        await self._close_all()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return self.result()

    @staticmethod
    def _freeze() -> None:
        # The connections are here to stay: take them out of the garbage collector's sight,
        # so that a full collection in this process cannot stall the arrival stamps.
        gc.collect()
        gc.freeze()

    async def _connect_all(self, url: str, gate: asyncio.Semaphore) -> list[asyncio.Task]:
        """A reading task per reader; returns once every reader is live or has given up."""
        settled = [asyncio.Event() for _ in self.readers]
        tasks = [asyncio.create_task(self._read(reader, url, gate, settled[reader.index]))
                 for reader in self.readers]
        await asyncio.gather(*(event.wait() for event in settled))
        return tasks

    async def _storm(self, url: str) -> dict[str, Any]:
        """Drop every socket at once, reconnect every reader to `url`; the storm's numbers."""
        for task in self.tasks:
            task.cancel()
        for stream in self.sockets:
            stream.abort()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.sockets.clear()
        started = time.monotonic()
        for reader in self.readers:
            reader.live_seconds = reader.live_at = reader.error = None
            reader.failed_attempts, reader.catch_up_seqs = 0, ""
        gate = asyncio.Semaphore(self.options.storm_concurrency or len(self.readers))
        self.tasks = await self._connect_all(url, gate)
        self._freeze()
        return self._storm_summary(started)

    def _storm_summary(self, started: float) -> dict[str, Any]:
        live = [reader for reader in self.readers if reader.live_at is not None]
        return {
            "readers": len(self.readers), "live": len(live), "storm_started": started,
            "last_live": max((reader.live_at for reader in live), default=None),
            "since_drop_ms": [(reader.live_at - started) * 1000 for reader in live],
            "connect_to_live_ms": [reader.live_seconds * 1000 for reader in live],
            "catch_up": dict(Counter(reader.catch_up_seqs for reader in live)),
            "failed_attempts": sum(reader.failed_attempts for reader in self.readers),
            "errors": dict(Counter(r.error for r in self.readers if r.error)),
        }

    def _ready_summary(self) -> dict[str, Any]:
        live = sum(reader.live_seconds is not None for reader in self.readers)
        return {"readers": len(self.readers), "live": live,
                "first_connect": self.first_connect, "last_live": self.last_live}

    async def _read(self, reader: Reader, url: str, gate: asyncio.Semaphore,
                    settled: asyncio.Event) -> None:
        async with gate:
            stream = await self._open(reader, url)
        settled.set()
        if stream is None:
            return
        try:
            while True:
                frame, size, at = await stream.frame()
                if frame.get("type") == "event":
                    self._arrived(reader, frame["seq"], at)
                    self.frame_bytes[size] += 1
        except StreamEnded as ended:
            if not self.closing:
                reader.closed_early = str(ended)

    @staticmethod
    def _arrived(reader: Reader, seq: int, now: float) -> None:
        if seq in reader.arrivals:
            reader.duplicates += 1
            return
        if seq != reader.last_seq + 1 and reader.last_seq:
            reader.out_of_order += 1
        reader.arrivals[seq] = now
        reader.last_seq = max(reader.last_seq, seq)

    async def _open(self, reader: Reader, url: str) -> Stream | None:
        """Connect and read up to `live`, with retries; None if every attempt failed."""
        source = source_address(self.options.url, self.options.first_reader + reader.index)
        if self.options.transport == "socketio" and reader.session is None:
            reader.session = SocketIOSession()
        for attempt in range(self.options.attempts):
            started = time.monotonic()
            if self.first_connect is None:
                self.first_connect = started
            stream = None
            try:
                stream = await open_stream(self.options.transport, url,
                                           origin=self.options.origin, source=source,
                                           session=reader.session)
                async with asyncio.timeout(self.options.live_timeout):
                    seqs = await self._catch_up(stream)
            except (OSError, TimeoutError, websockets.WebSocketException, Refused,
                    CatchUpError) as error:
                reader.error = f"{type(error).__name__}: {error}"[:200]
                reader.failed_attempts += 1
                if stream is not None:
                    stream.abort()
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            now = time.monotonic()
            reader.live_seconds, reader.live_at, reader.error = now - started, now, None
            reader.catch_up_events, reader.catch_up_seqs = len(seqs), _run_of(seqs)
            self.last_live = max(self.last_live or now, now)
            self.sockets.append(stream)
            return stream
        return None

    async def _catch_up(self, stream: Stream) -> list[int]:
        """Frames up to `live`; returns the seqs of the `event` frames that came before it."""
        seqs = []
        while True:
            try:
                frame, size, _ = await stream.frame()
            except StreamEnded as ended:
                raise CatchUpError(f"ended before live: {ended}") from None
            kind = frame.get("type")
            if kind == "live":
                return seqs
            if kind == "event":
                seqs.append(frame["seq"])
                self.frame_bytes[size] += 1
            elif kind == "error":
                raise CatchUpError(f"error frame {frame}")

    async def _wait_for(self, expected: int, timeout: float) -> dict[str, int]:
        """Until every live reader has `expected` events (at most `timeout` s); how many do."""
        deadline = time.monotonic() + timeout
        while True:
            readers = [reader for reader in self.readers
                       if reader.live_seconds is not None and reader.closed_early is None]
            complete = sum(len(reader.arrivals) >= expected for reader in readers)
            if complete == len(readers) or time.monotonic() >= deadline:
                return {"readers": len(readers), "complete": complete}
            await asyncio.sleep(0.05)

    async def _close_all(self) -> None:
        self.closing = True
        closes = [stream.close() for stream in self.sockets]
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*closes, return_exceptions=True)
        except TimeoutError:
            for stream in self.sockets:
                stream.abort()

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
            "catch_up": dict(Counter(reader.catch_up_seqs for reader in live)),
            "frame_bytes": {str(size): count for size, count in self.frame_bytes.items()},
            "arrivals": arrivals,
            "first_connect": self.first_connect,
            "last_live": self.last_live,
        }


def source_address(url: str, number: int) -> str | None:
    """The loopback address reader `number` connects from (None: the server is not on 127/8,
    let the system choose)."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.IPv4Address(host) in ipaddress.IPv4Network("127.0.0.0/8")
    except ValueError:
        return None
    return str(FIRST_SOURCE + number // READERS_PER_ADDRESS) if loopback else None


def _run_of(seqs: list[int]) -> str:
    """"first..last" of a catch-up's seqs, " with gaps" if they are not one gapless run."""
    if not seqs:
        return "none"
    gapless = seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    return f"{seqs[0]}..{seqs[-1]}" + ("" if gapless else " with gaps")


def parse_command(line: str) -> tuple | None:
    """`storm <url>` → ("storm", url); `finish <events> <timeout>` → ("finish", n, s);
    `wait <events> <timeout>` → ("wait", n, s)."""
    words = line.split()
    if len(words) == 2 and words[0] == "storm":
        return "storm", words[1]
    if len(words) == 3 and words[0] in ("finish", "wait"):
        return words[0], int(words[1]), float(words[2])
    return None


async def _next_command() -> tuple:
    """Block (in a thread) until `storm …`, `wait …` or `finish …` arrives on stdin."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:  # our parent went away: finish now
            return "finish", 0, 0.0
        if command := parse_command(line):
            return command


# --- Several processes -------------------------------------------------------------------------

_EARLIEST = {"first_connect", "storm_started"}
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
        first = sum(shares[:index])
        command = [
            sys.executable, "-m", "bench.loadgen", "--url", args.url, "--readers", str(share),
            "--procs", "1", "--concurrency", str(args.concurrency),
            "--attempts", str(args.attempts), "--live-timeout", str(args.live_timeout),
            "--storm-concurrency", str(args.storm_concurrency), "--first-reader", str(first),
            "--transport", args.transport,
            "--out", str(directory / f"worker-{index}.json"),
        ]
        if args.origin:
            command += ["--origin", args.origin]
        workers.append(subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True))
    return workers


def _replies(workers: list[subprocess.Popen], word: str) -> list[dict[str, Any]]:
    """One `<word> {json}` line from every worker."""
    replies = []
    for worker in workers:
        line = worker.stdout.readline()
        if not line.startswith(f"{word} "):
            raise SystemExit(f"a loadgen worker failed (exit {worker.wait()})")
        replies.append(json.loads(line.removeprefix(f"{word} ")))
    return replies


def _relay_commands(workers: list[subprocess.Popen]) -> None:
    """Pass every command on to the workers, with one merged answer per storm or wait, until
    finish."""
    while True:
        line = sys.stdin.readline() or "finish 0 0\n"
        command = parse_command(line)
        if command is None:
            continue
        for worker in workers:
            worker.stdin.write(line)
            worker.stdin.flush()
        if command[0] == "finish":
            return
        word = "stormed" if command[0] == "storm" else "arrived"
        print(f"{word} " + json.dumps(merge(_replies(workers, word))), flush=True)


def _relay(args: argparse.Namespace) -> dict[str, Any]:
    """Run --procs workers, print one merged `ready`, pass `finish` on, merge the results."""
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        workers = _spawn_workers(args, Path(tmp))
        try:
            ready = _replies(workers, "ready")
            print("ready " + json.dumps(merge(ready)), flush=True)
            _relay_commands(workers)
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
    parser.add_argument("--url", required=True,
                        help="the feed's URL: ws://…/ws/liveblog/<slug>/ for websockets, "
                             "http://…/sse/liveblog/<slug>/ for SSE, ws://host:port/ for "
                             "Socket.IO")
    parser.add_argument("--transport", choices=TRANSPORTS, default="ws",
                        help="ws: websocket readers (default); sse: Server-Sent Events readers "
                             "(raw HTTP/1.1, text/event-stream); socketio: Socket.IO readers "
                             "(Engine.IO 4 over a websocket)")
    parser.add_argument("--origin", help="Origin header (Liveblog requires its own origin: "
                        "scheme, host and port, e.g. http://127.0.0.1:8000)")
    parser.add_argument("--readers", type=int, required=True)
    parser.add_argument("--procs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=25,
                        help="connects in flight per process (default 25; daphne listens "
                             "with Twisted's backlog of 50)")
    parser.add_argument("--attempts", type=int, default=3, help="tries per reader (default 3)")
    parser.add_argument("--live-timeout", type=float, default=60.0,
                        help="seconds from handshake to `live` (default 60)")
    parser.add_argument("--storm-concurrency", type=int, default=0,
                        help="reconnects in flight per process in a storm (default 0: all)")
    parser.add_argument("--first-reader", type=int, default=0,
                        help="the number of this process's first reader among all (its source "
                             "address follows from it; set by the process that spawns workers)")
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
                          live_timeout=args.live_timeout,
                          storm_concurrency=args.storm_concurrency,
                          first_reader=args.first_reader, transport=args.transport)
        result = asyncio.run(Worker(options).run())
    else:
        result = _relay(args)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
