"""Where a Liveblog server spends its time during a bench row: py-spy, sampling only while a
thread holds the GIL (`--gil`: what the process computes, not what it waits for).

`make bench BENCH_ARGS="--scenarios fanout,burst --servers liveblog --profile var/profiles"`
attaches py-spy to every Liveblog daphne process of a fan-out or burst row for the row's
measured window (from just before the first post until every reader has every post: not the
readers connecting), writes `<scenario>-<port>.raw` (py-spy's collapsed stacks: flamegraph.pl or
speedscope read them) and prints the top costs by the categories below.
`python -m bench.profile var/profiles/*.raw` prints them again.

py-spy is a dev requirement (requirements-dev.txt). Sampling slows the server: profile and
measure in separate runs.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLES_PER_SECOND = 1000

# A sample goes to the first category any frame of its stack matches (so the socket writes of a
# fan-out are not counted in the fan-out's Python, nor the create's queries in its request path).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("socket writes (send syscalls)", ("send_now (", "socket.send", "writeSomeData")),
    ("fan-out: passes, deliveries, wires", ("liveblog/live/stream.py", "liveblog/live/delivery.py",
                                            "liveblog/live/wire.py", "liveblog/live/feed.py")),
    ("the create: service and database", ("liveblog/services.py", "django/db/", "sqlite3")),
    ("the create: Django request path", ("django/core/handlers", "project/handler.py",
                                         "liveblog/views/")),
    ("daphne / Twisted HTTP and websocket protocol", ("daphne/", "twisted/", "autobahn/")),
    ("readers connecting, catching up, leaving", ("liveblog/live/catchup.py", "channels/",
                                                  "liveblog/consumers.py", "liveblog/live/hub.py")),
    ("garbage collection", ("gcpolicy.py", "gc.collect")),
    ("event loop and thread hand-offs", ("asyncio/", "asgiref/", "concurrent/", "threading.py")),
)


# The servers to record in the next measured window: pid -> recording file (bench/processes.py).
servers: dict[int, Path] = {}


@contextmanager
def window() -> Iterator[None]:
    """Record every registered server while the block runs (a row's posts and their delivery)."""
    recorders = [recorder for pid, out in servers.items()
                 if (recorder := start(pid, out)) is not None]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        for recorder in recorders:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()


def start(pid: int, out: Path) -> subprocess.Popen | None:
    """Record `pid` until it exits, into `out`; None (and a note) without py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("    profile: py-spy is not installed (requirements-dev.txt)", file=sys.stderr)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--gil", "--rate", str(SAMPLES_PER_SECOND),
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def categorize(frames: list[str]) -> str:
    # What runs the loop (daphne's reactor, the asyncio loop) is under every callback's stack:
    # a sample is about what the callback it was in does.
    for index in range(len(frames) - 1, -1, -1):
        if "Handle._run (asyncio/events.py" in frames[index]:
            frames = frames[index + 1:]
            break
    else:
        if any("BaseEventLoop._run_once" in frame for frame in frames):
            return "event loop and thread hand-offs"  # the loop's own turn: select, scheduling
    for name, needles in CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return "other"


def read(path: Path) -> tuple[Counter, Counter, int]:
    """Samples by category and by function (inclusive), and the total."""
    categories: Counter = Counter()
    functions: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples, frames = int(count), stack.split(";")
        total += samples
        categories[categorize(frames)] += samples
        for frame in set(frames):
            if "liveblog/" in frame or "project/" in frame:
                functions[frame] += samples
    return categories, functions, total


def summary(path: Path, *, top: int = 12) -> str:
    categories, functions, total = read(path)
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples with the GIL held "
             f"({total / SAMPLES_PER_SECOND:.1f} s of CPU at {SAMPLES_PER_SECOND}/s)"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in categories.most_common()]
    lines.append("  Liveblog's own functions, inclusive:")
    lines += [f"  {count / total:6.1%}  {frame[:110]}"
              for frame, count in functions.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", nargs="+", type=Path, help="py-spy raw files")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    for path in args.raw:
        print(summary(path, top=args.top))


if __name__ == "__main__":
    main()
