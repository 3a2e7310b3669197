"""abuse: issue 14's flood beside well-behaved readers, on one Liveblog daphne process.

One anonymous client that never reads (devstack.abuse.flood) writes `abuse_resyncs` resyncs
(since=0) and `abuse_junk` junk frames, opening a new socket whenever the server shuts the last,
while `abuse_readers` readers get `posts` posts, one per `interval` seconds. The same thing runs
twice, each time on a fresh process over a freshly seeded blog: a quiet run (no flood) and a
flood run (the flood starts just before the first post). The row compares the readers' latency
and losses in both, and gives daphne's VmRSS just before the flood and its peak (VmHWM) until
the flood has ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.abuse import FloodReport, flood
from devstack.common import memory_kib, reset_peak_memory
from devstack.daphne import Site, feed_url

from . import seed
from .processes import BenchError, QuietDaphne, liveblog_server
from .scenarios import (
    Config,
    Sent,
    fanout_row,
    fresh_dir,
    liveblog_author,
    paced,
    run_readers,
    seed_site,
)

POSTS_BEFORE = 300  # the blog of the measurement
# Resyncs and junk frames each, before the readers connect, in both runs: the flood's code
# paths and the allocator's pools are warm when the measured flood starts (as in
# tests/test_abuse.py), and both processes have the same history.
WARM_UP_FRAMES = 1000
FLOOD_JOIN_TIMEOUT = 600.0
MIB = 1024


@dataclass
class Flood:
    """devstack.abuse.flood in a thread of its own, and when it ended (time.monotonic())."""

    url: str
    origin: str
    resyncs: int
    junk: int
    started: float = 0.0
    ended: float | None = None
    report: FloodReport | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> Flood:
        self.thread = threading.Thread(target=self._run, name="flood", daemon=True)
        self.started = time.monotonic()
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.report = flood(self.url, origin=self.origin, resyncs=self.resyncs,
                                junk=self.junk)
        except BaseException as error:  # noqa: BLE001 - handed to the bench's thread in join
            self.error = error
        self.ended = time.monotonic()

    def join(self) -> FloodReport:
        self.thread.join(FLOOD_JOIN_TIMEOUT)
        if self.thread.is_alive():
            raise BenchError(f"the flood was still running after {FLOOD_JOIN_TIMEOUT:.0f} s")
        if self.error is not None:
            raise BenchError(f"the flood failed: {self.error!r}") from self.error
        return self.report


@dataclass
class Memory:
    """daphne's VmRSS and VmHWM (KiB) at the moments the row reports."""

    cold: int = 0  # before the warm-up
    before: int = 0  # just before the first post (and the flood)
    peak: int = 0  # VmHWM once the posts were delivered and the flood had ended
    after: int = 0  # VmRSS then
    peak_since: str = "process start"  # or "first post", when VmHWM could be reset there

    def as_dict(self) -> dict[str, Any]:
        return {"cold": self.cold, "before": self.before, "peak": self.peak,
                "after": self.after, "peak_since": self.peak_since,
                "growth_mib": round((self.peak - self.before) / MIB, 2)}


def seeded_site(config: Config, name: str) -> Site:
    site = Site.create(fresh_dir(config.work / name))
    seed_site(site, POSTS_BEFORE)
    return site


def abuse_run(site: Site, config: Config, *, flooding: bool) -> dict[str, Any]:
    """One run on a fresh process: warm-up, readers live, posts (with the flood if
    `flooding`); fan-out's row with daphne's memory and, for the flood run, the flood's."""
    name = "flood" if flooding else "quiet"
    memory = Memory()
    with liveblog_server(site) as server:
        api = liveblog_author(server, site)
        url = feed_url(server.ws_url, site.slug)
        memory.cold = memory_kib(server.pid, "VmRSS")
        flood(url, origin=server.url, resyncs=WARM_UP_FRAMES, junk=WARM_UP_FRAMES)
        flooder = Flood(url, server.url, config.abuse_resyncs, config.abuse_junk)

        def publish(number: int) -> int:
            return api.post(site.slug, seed.body(number))["seq"]

        def post_all() -> list[Sent]:
            _measure_before(server, memory)
            if flooding:
                flooder.start()
            return paced(config.posts, config.interval, publish)

        sent, result, queries = run_readers(url, server.url, config.abuse_readers, config,
                                            f"abuse-{name}", post_all, server.queries)
        report = flooder.join() if flooding else None
        memory.peak = memory_kib(server.pid, "VmHWM")
        memory.after = memory_kib(server.pid, "VmRSS")
    row = fanout_row("liveblog", config.abuse_readers, sent, result, config, server.log_path,
                     scenario="abuse", queries=queries)
    row.update(run=name, memory_kib=memory.as_dict(),
               flood=_flood_summary(flooder, report, sent) if report else None)
    return row


def _measure_before(server: QuietDaphne, memory: Memory) -> None:
    memory.before = memory_kib(server.pid, "VmRSS")
    if reset_peak_memory(server.pid):
        memory.peak_since = "first post"


def _flood_summary(flooder: Flood, report: FloodReport, sent: list[Sent]) -> dict[str, Any]:
    """What the flood wrote, and whether it outlasted the posts (else the last ones went out
    with no flood beside them)."""
    last_done = max(post.started + post.call_ms / 1000 for post in sent)
    return {
        "resyncs": flooder.resyncs, "junk": flooder.junk,
        "frames_written": report.frames_written, "sockets": report.connections,
        "refused": report.refused[:5],
        "seconds": round(flooder.ended - flooder.started, 1),
        "ended_before_last_post": flooder.ended < last_done,
        "after_last_post_s": round(flooder.ended - last_done, 1),
    }


def abuse_row(quiet: dict[str, Any], flooded: dict[str, Any]) -> dict[str, Any]:
    """One row: the flood run's latency in the table's columns, both runs in full beside.
    The peaks compared too: a fresh process's VmRSS before the first post varies by a few MiB
    from one process to the next, which moves the growth as much as the flood does."""
    peaks = flooded["memory_kib"]["peak"] - quiet["memory_kib"]["peak"]
    return {
        "scenario": "abuse", "server": "liveblog", "readers": flooded["readers"],
        "posts": flooded["posts"], "interval_s": flooded["interval_s"],
        "latency_ms": flooded["latency_ms"], "queries": flooded["queries"],
        "expected": flooded["expected"], "lost": flooded["lost"],
        "memory_kib": flooded["memory_kib"], "flood": flooded["flood"],
        "peak_over_quiet_mib": round(peaks / MIB, 2),
        "server_log": flooded["server_log"],
        "runs": {"quiet": quiet, "flood": flooded},
    }


def abuse(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Liveblog only: the reference server has no protocol to abuse."""
    if "liveblog" not in config.servers:
        return []
    label = (f"{config.abuse_readers} readers, {config.posts} posts, "
             f"{POSTS_BEFORE} seeded before")
    progress(f"abuse: quiet run, {label}")
    quiet = abuse_run(seeded_site(config, "abuse-quiet"), config, flooding=False)
    progress(f"abuse: flood run, {label}, {config.abuse_resyncs} resyncs and "
             f"{config.abuse_junk} junk frames from a socket that never reads")
    flooded = abuse_run(seeded_site(config, "abuse-flood"), config, flooding=True)
    return [abuse_row(quiet, flooded)]
