"""idle: how many live readers one server process holds, and what each costs in memory.

For each N of `idle_readers`, a fresh server process; one unmeasured reader connects and leaves
(the first websocket imports the consumer and starts the hub); then the server's VmRSS (from
/proc/<pid>/status) is read, N readers connect (gradually: at most 25 connects in flight per load
generator process, so the server's accept backlog of 50 never overflows) and go live, and VmRSS
is read again at once and after `idle_settle` seconds. Nothing is posted. KB per connection =
(settled RSS − RSS before) / readers live. Before the readers connect, N is checked against the
server's open-file limit; an N that cannot fit is cut to the largest that does, and the row says
so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as sync_connect

from devstack.daphne import Site, feed_url

from .loadgen import raise_nofile_limit
from .processes import (
    listen_drops,
    liveblog_server,
    loadgen,
    log_issues,
    nofile_limit,
    open_files,
    reference_server,
    rss_kb,
    socketio_server,
)
from .report import summary
from .scenarios import CONNECT_TIMEOUT, Config, QueryProbe, fresh_dir, query_delta
from .streams import connect_packet, decode_packet, socketio_url

READERS_PER_PROC = 5000  # sockets per load generator process
FD_MARGIN = 64  # files a server needs besides its readers' sockets (logs, database, listeners)


def warm_up(url: str, origin: str | None, transport: str = "ws") -> None:
    """One reader connects, reads up to `live` (Socket.IO: the connect acknowledgement) and
    leaves."""
    if transport == "socketio":
        with sync_connect(socketio_url(url)[0], open_timeout=20, max_size=None) as ws:
            ws.recv(timeout=20)  # Engine.IO's open packet
            ws.send(connect_packet())
            while decode_packet(str(ws.recv(timeout=20))).kind != "connect":
                pass
        return
    with sync_connect(url, origin=origin, open_timeout=20, max_size=None) as ws:
        while '"live"' not in str(ws.recv(timeout=20)):
            pass


def fitting_readers(pid: int, wanted: int) -> tuple[int, str | None]:
    """`wanted`, or the largest count the server's open-file limit leaves room for (and why)."""
    room = nofile_limit(pid) - open_files(pid) - FD_MARGIN
    if wanted <= room:
        return wanted, None
    return room, (f"{wanted} readers do not fit: the server's open-file limit is "
                  f"{nofile_limit(pid)} (the hard limit); measured {room}")


def loadgen_procs(readers: int, config: Config) -> int:
    """Enough load generator processes that none holds more than READERS_PER_PROC sockets (or
    more than its own open-file limit allows)."""
    per_proc = min(READERS_PER_PROC, raise_nofile_limit() - FD_MARGIN)
    return max(config.procs, math.ceil(readers / per_proc))


def measure(pid: int, url: str, origin: str | None, readers: int, config: Config, name: str,
            probe: QueryProbe | None = None, transport: str = "ws") -> dict[str, Any]:
    """Warm up, then RSS before, readers in, RSS after and settled; the raw numbers."""
    warm_up(url, origin, transport)
    time.sleep(0.5)
    readers, capped = fitting_readers(pid, readers)
    procs = loadgen_procs(readers, config)
    before = {"rss_kb": rss_kb(pid), "fds": open_files(pid), "queries": probe() if probe else None,
              "drops": listen_drops()}
    out = config.work / f"{name}.json"
    with loadgen(url, origin=origin, readers=readers, procs=procs, out=out,
                 extra=("--transport", transport)) as load:
        ready = load.wait_ready(CONNECT_TIMEOUT)
        live = {"rss_kb": rss_kb(pid), "fds": open_files(pid)}
        time.sleep(config.idle_settle)
        settled = {"rss_kb": rss_kb(pid), "queries": probe() if probe else None,
                   "drops": listen_drops()}
        result = load.finish(events=0, timeout=0)
    return {"readers": readers, "capped": capped, "procs": procs, "before": before, "live": live,
            "settled": settled, "ready": ready, "result": result}


def idle_row(server: str, wanted: int, raw: dict[str, Any], config: Config,
             log: Path) -> dict[str, Any]:
    before, live, settled, result = raw["before"], raw["live"], raw["settled"], raw["result"]
    held = result["live"] - sum(result["closed_early"].values())
    grown_kb = settled["rss_kb"] - before["rss_kb"]
    queries = (query_delta(before["queries"], settled["queries"])
               if before["queries"] else None)
    return {
        "scenario": "idle", "server": server, "readers": raw["readers"], "wanted": wanted,
        "capped": raw["capped"], "held": held, "live": result["live"], "procs": raw["procs"],
        "latency_ms": {"p50": None, "p99": None, "max": None},
        "rss_kb": {"before": before["rss_kb"], "live": live["rss_kb"],
                   "settled": settled["rss_kb"]},
        "kb_per_connection": round(grown_kb / held, 1) if held else None,
        "server_fds": {"before": before["fds"], "live": live["fds"]},
        "settle_s": config.idle_settle,
        "connect": {"live": result["live"],
                    "wall_s": round((raw["ready"]["last_live"] or 0)
                                    - (raw["ready"]["first_connect"] or 0), 2),
                    "live_ms": summary([seconds * 1000 for seconds in result["live_seconds"]])},
        "failed_attempts": result["failed_attempts"], "errors": result["errors"],
        "closed_early": result["closed_early"],
        "listen_drops": {key: settled["drops"][key] - before["drops"][key]
                         for key in before["drops"]},
        "queries": queries, "server_log": log_issues(log),
    }


def idle_liveblog(site: Site, readers: int, config: Config) -> dict[str, Any]:
    with liveblog_server(site) as server:
        raw = measure(server.pid, feed_url(server.ws_url, site.slug), server.url, readers,
                      config, f"idle-liveblog-{readers}", server.queries)
    return idle_row("liveblog", readers, raw, config, server.log_path)


def idle_reference(readers: int, config: Config) -> dict[str, Any]:
    log = config.work / f"reference-idle-{readers}.log"
    with reference_server(log) as server:
        raw = measure(server.pid, f"{server.ws_url}/", None, readers, config,
                      f"idle-reference-{readers}")
    return idle_row("reference", readers, raw, config, server.log_path)


def idle_socketio(readers: int, config: Config) -> dict[str, Any]:
    log = config.work / f"socketio-idle-{readers}.log"
    with socketio_server(log) as server:
        raw = measure(server.pid, server.readers_url, None, readers, config,
                      f"idle-socketio-{readers}", transport="socketio")
    return idle_row("socketio", readers, raw, config, server.log_path)


def idle(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    site = Site.create(fresh_dir(config.work / "idle")) if "liveblog" in config.servers else None
    for readers in config.idle_readers:
        if site is not None:
            progress(f"idle: liveblog, {readers} readers")
            rows.append(idle_liveblog(site, readers, config))
        if "reference" in config.servers:
            progress(f"idle: reference, {readers} readers")
            rows.append(idle_reference(readers, config))
        if "socketio" in config.servers:
            progress(f"idle: socketio, {readers} readers")
            rows.append(idle_socketio(readers, config))
    return rows
