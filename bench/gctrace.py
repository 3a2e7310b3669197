"""Full garbage collections of a server process, written to its log and read back.

A generation-2 collection walks every tracked object, so its pause grows with the number of
open connections and stops the event loop meanwhile. Each server under test (daphne through
bench.launch_daphne, and bench.reference) logs one line per full collection:

    bench-gc generation=2 ms=139.5 end=2261.337

with `end` on time.monotonic(), the clock the load generator stamps arrivals with.
"""

import gc
import re
import sys
import time
from pathlib import Path

LINE = re.compile(r"^bench-gc generation=2 ms=(?P<ms>[\d.]+) end=(?P<end>[\d.]+)", re.M)
_started: list[float] = []


def _callback(phase: str, info: dict[str, int]) -> None:
    if info["generation"] != 2:
        return
    now = time.monotonic()
    if phase == "start":
        _started[:] = [now]
    elif _started:
        print(f"bench-gc generation=2 ms={(now - _started[0]) * 1000:.1f} end={now:.3f}",
              file=sys.stderr, flush=True)


def install() -> None:
    """Log every full collection of this process to stderr."""
    gc.callbacks.append(_callback)


def pauses(log: Path) -> list[tuple[float, float]]:
    """The full collections logged in `log`, as (start, end) on time.monotonic()."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [(float(m["end"]) - float(m["ms"]) / 1000, float(m["end"]))
            for m in LINE.finditer(text)]


def overlapping(spans: list[tuple[float, float]], start: float, end: float) -> list[float]:
    """The durations (ms) of the spans that overlap [start, end]."""
    return [(stop - begin) * 1000 for begin, stop in spans if begin < end and stop > start]
