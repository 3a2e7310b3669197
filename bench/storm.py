"""storm: `storm_readers` live, caught-up readers all drop their sockets at once and reconnect at
once with since = head − `storm_missed` (and the blog's epoch, as the browser client does).

Per reader: the time from the drop to its `live`; the total: from the drop to the last reader's
`live`. Every reader must get exactly the missed events (head − missed + 1 … head, gapless) and
then `live`; `lost` counts the readers that did not. For Liveblog, the number of database
queries daphne ran between just before the drop and the moment every reader was live again
(bench.launch_daphne counts them). The bare reference has no log: its storm is a plain
reconnect. Socket.IO's readers get `storm_missed` + 1 broadcasts while live (seq 1 … missed + 1,
each with its offset), and reconnect asking to recover their session from seq 1's offset
(`40{"pid":…,"offset":…}`): connection state recovery must replay exactly 2 … missed + 1 before
the connect acknowledgement, its `live`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as sync_connect

from devstack.daphne import Site, feed_url

from . import gctrace, seed
from .processes import (
    BenchError,
    LoadGen,
    listen_drops,
    liveblog_server,
    loadgen,
    log_issues,
    reference_server,
    socketio_server,
)
from .reference import event_frame
from .report import summary
from .scenarios import (
    CONNECT_TIMEOUT,
    SETTLE_SECONDS,
    Config,
    QueryProbe,
    fresh_dir,
    liveblog_author,
    query_delta,
)


def _drops_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in before}


def run_storm(url: str, storm_url: str, origin: str | None, config: Config, name: str,
              probe: QueryProbe | None = None, transport: str = "ws",
              when_live: Callable[[LoadGen], None] | None = None) -> dict[str, Any]:
    """Readers up, `when_live()` (if any), settled, then the storm; its numbers, the queries it
    cost (with a probe) and what the kernel's listen queues dropped meanwhile."""
    out = config.work / f"{name}.json"
    extra = ("--storm-concurrency", str(config.storm_concurrency), "--transport", transport)
    with loadgen(url, origin=origin, readers=config.storm_readers, procs=config.procs,
                 out=out, extra=extra) as load:
        ready = load.wait_ready(CONNECT_TIMEOUT)
        if ready["live"] < config.storm_readers:
            raise BenchError(f"only {ready['live']} of {config.storm_readers} readers went live "
                             "before the storm")
        if when_live:
            when_live(load)
        time.sleep(SETTLE_SECONDS)
        before, drops = (probe() if probe else None), listen_drops()
        storm = load.storm(storm_url, timeout=CONNECT_TIMEOUT)
        after, drops_after = (probe() if probe else None), listen_drops()
        result = load.finish(events=0, timeout=0)
    return {"storm": storm, "result": result, "listen_drops": _drops_delta(drops, drops_after),
            "concurrency": config.storm_concurrency,
            "queries": query_delta(before, after) if probe else None}


def storm_row(server: str, run: dict[str, Any], expected_run: str, log: Path) -> dict[str, Any]:
    storm, readers = run["storm"], run["storm"]["readers"]
    exact = storm["catch_up"].get(expected_run, 0)
    started, last = storm["storm_started"], storm["last_live"]
    collections = gctrace.overlapping(gctrace.pauses(log), started, last or started)
    return {
        "scenario": "storm", "server": server, "readers": readers,
        "concurrency": run["concurrency"],
        "latency_ms": summary(storm["since_drop_ms"]),
        "connect_to_live_ms": summary(storm["connect_to_live_ms"]),
        "total_s": round(last - started, 3) if last and storm["live"] == readers else None,
        "live": storm["live"], "expected_catch_up": expected_run, "exact": exact,
        "lost": readers - exact, "catch_up": storm["catch_up"],
        "failed_attempts": storm["failed_attempts"], "errors": storm["errors"],
        "closed_early": run["result"]["closed_early"], "listen_drops": run["listen_drops"],
        "queries": run["queries"], "server_log": log_issues(log),
        "server_gc": {"full_collections": len(collections),
                      "ms": round(sum(collections), 1)},
    }


def storm_liveblog(site: Site, config: Config) -> dict[str, Any]:
    with liveblog_server(site) as server:
        api = liveblog_author(server, site)
        for number in range(config.storm_missed):
            api.post(site.slug, seed.body(number + 1))
        _, blog = api.request("GET", f"/api/liveblog/{site.slug}/")
        head, missed = blog["head"], min(config.storm_missed, blog["head"])
        url = feed_url(server.ws_url, site.slug)
        storm_url = feed_url(server.ws_url, site.slug, since=head - missed, epoch=blog["epoch"])
        run = run_storm(url, storm_url, server.url, config, "storm-liveblog", server.queries)
    return storm_row("liveblog", run, f"{head - missed + 1}..{head}", server.log_path)


def storm_reference(config: Config) -> dict[str, Any]:
    log = config.work / "reference-storm.log"
    with reference_server(log) as server:
        url = f"{server.ws_url}/"
        run = run_storm(url, url, None, config, "storm-reference")
    return storm_row("reference", run, "none", server.log_path)


def storm_socketio(config: Config, frame_bytes: int) -> dict[str, Any]:
    log = config.work / "socketio-storm.log"
    head = config.storm_missed + 1
    with socketio_server(log) as server, sync_connect(f"{server.ws_url}/control") as control:

        def broadcast(load: LoadGen) -> None:
            for seq in range(1, head + 1):
                control.send(event_frame(seq, frame_bytes))
            arrived = load.wait_for(head, timeout=config.drain_timeout)
            if arrived["complete"] < config.storm_readers:
                raise BenchError(f"only {arrived['complete']} of {config.storm_readers} readers "
                                 f"had the {head} events before the storm")

        url = server.readers_url
        run = run_storm(url, f"{url}?since=1", None, config, "storm-socketio",
                        transport="socketio", when_live=broadcast)
    return storm_row("socketio", run, f"2..{head}" if head > 1 else "none", server.log_path)


def storm(config: Config, progress: Callable[[str], None],
          frame_bytes: int | None = None) -> list[dict[str, Any]]:
    rows = []
    if "liveblog" in config.servers:
        progress(f"storm: liveblog, {config.storm_readers} readers reconnect with "
                 f"since = head - {config.storm_missed}")
        rows.append(storm_liveblog(Site.create(fresh_dir(config.work / "storm")), config))
    if "reference" in config.servers:
        progress(f"storm: reference, {config.storm_readers} readers reconnect")
        rows.append(storm_reference(config))
    if "socketio" in config.servers:
        progress(f"storm: socketio, {config.storm_readers} readers recover their sessions "
                 f"{config.storm_missed} events behind")
        rows.append(storm_socketio(config, frame_bytes or config.frame_bytes))
    return rows
