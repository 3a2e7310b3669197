"""stack: scale-out through Redis and nginx, once per channels-redis layer (pubsub and lists).

One run of one layer: a fresh Redis on loopback, a fresh site (a database of its own on one
private PostgreSQL cluster for the whole scenario, as in production; devstack/postgres.py),
`daphnes` daphne processes (bench.launch_daphne, as in the other scenarios) with REDIS_URL,
LIVEBLOG_REDIS_LAYER and LIVEBLOG_TRUSTED_PROXIES=127.0.0.1, and Debian's nginx in front of them
with the README's configuration (devstack/nginx.py: the template's loopback rendering). Every
reader and the author come through nginx, whose round robin spreads the `readers` over the
processes (the row says how many each got). With every reader live, Redis is read (INFO
stats, cpu, commandstats, errorstats), nothing happens for `stack_idle` seconds and Redis is
read again: the idle cost. Then `posts` posts, one per `interval`, made through nginx (so
alternately on each process); Redis is read just before the first post and `posts × interval`
seconds after it (the same window for both layers, whatever the delivery): the cost per event.
Latency per frame as in fan-out (from just before the create call to each reader's receipt,
whichever process served the post and the reader), lost = readers × posts − arrivals.
daphne's and nginx's CPU per event are read from /proc.

`stack_per_process` adds rows of that many readers per process (the curve of p99 against readers
per process, `format_stack_curve`). `stack_idle_readers`: for each N, N idle readers through
nginx and nothing posted; the memory each holds in the daphne processes and in nginx (VmRSS of
every process, before the readers and `idle_settle` seconds after all were live), as two rows of
the idle scenario ("stack daphnes", "stack nginx").

`stack_runs` runs of every (processes, readers, layer), interleaved (pubsub, lists, pubsub, …) so
that a noisy neighbour hits both; the row gives the medians over the runs (losses: the sum).
"""

from __future__ import annotations

import math
import os
import re
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from devstack.daphne import Site, feed_url
from devstack.nginx import NginxServer, nginx_server, upstream_connections
from devstack.postgres import PostgresServer, postgres_server

from . import seed
from .idle import READERS_PER_PROC, warm_up
from .processes import (
    cpu_seconds,
    listen_drops,
    liveblog_server,
    loadgen,
    log_issues,
    open_files,
    rss_kb,
)
from .redisstats import RedisStats, bench_redis, stats_delta
from .report import _aligned, _ms, summary
from .scenarios import (
    CONNECT_TIMEOUT,
    SETTLE_SECONDS,
    Config,
    fanout_row,
    fresh_dir,
    liveblog_author,
    paced,
    query_delta,
)

LAYERS = ("pubsub", "lists")
# Readers per load generator process in a row with posts (at least `procs` processes).
LIVE_READERS_PER_PROC = 2000
# What daphne processes behind nginx need: they believe nginx's X-Forwarded-For (the per-address
# limits count the readers' 127.1.0.x addresses, not nginx's 127.0.0.1).
BEHIND_NGINX = {"LIVEBLOG_TRUSTED_PROXIES": "127.0.0.1"}
# A warning in Redis's log: "pid:role date time # message" ('*' notice, '-' verbose).
REDIS_WARNING = re.compile(r"^\d+:[A-Z] .+? # ")


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` as evenly as can be."""
    return [total // parts + (index < total % parts) for index in range(parts)]


def sum_queries(deltas: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' query_delta, added up."""
    statements: Counter[str] = Counter()
    for delta in deltas:
        for item in delta["top_statements"]:
            statements[item["sql"]] += item["count"]
    return {"queries": sum(delta["queries"] for delta in deltas),
            "connections_opened": sum(delta["connections_opened"] for delta in deltas),
            "top_statements": [{"count": count, "sql": sql}
                               for sql, count in statements.most_common(6)]}


def redis_warnings(path: Path, offset: int = 0) -> list[str]:
    """The warning lines of a Redis log from byte `offset` on (Redis logs its start-up and
    shutdown at warning level too: the bench reads only what came while readers were live)."""
    with open(path, "rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return [line for line in lines if REDIS_WARNING.match(line)]


def per_event(window: dict[str, Any], idle: dict[str, Any], events: int) -> dict[str, Any]:
    """The window's Redis work per event, as measured and net of what the same time costs
    idle (the lists layer's polling, heartbeats)."""
    idle_share = window["seconds"] / idle["seconds"] if idle["seconds"] else 0
    return {
        "commands": round(window["commands"] / events, 2),
        "commands_above_idle": round((window["commands"] - idle["commands"] * idle_share)
                                     / events, 2),
        "command_us": round(sum(window["usec_by_command"].values()) / events, 1),
        "cpu_us": round(window["cpu_s"] * 1e6 / events, 1),
        "cpu_us_above_idle": round((window["cpu_s"] - idle["cpu_s"] * idle_share) * 1e6
                                   / events, 1),
        "net_in_bytes": round(window["net_in_bytes"] / events),
        "net_out_bytes": round(window["net_out_bytes"] / events),
        "by_command": {name: round(count / events, 2)
                       for name, count in window["by_command"].items()},
    }


def per_second(idle: dict[str, Any]) -> dict[str, Any]:
    seconds = idle["seconds"] or 1
    return {"seconds": idle["seconds"], "commands": round(idle["commands"] / seconds, 3),
            "cpu_ms": round(idle["cpu_s"] * 1000 / seconds, 3),
            "by_command": {name: round(count / seconds, 3)
                           for name, count in idle["by_command"].items()}}


def front(stack: ExitStack, directory: Path, site: Site, servers: list,
          readers: int) -> NginxServer:
    """nginx on the site's front port (its origin is the one the site trusts) over `servers`.
    One worker per core, or more when the readers' two descriptors each would not fit in the
    workers' open-file limit (the hard limit here; reuseport spreads them evenly, ± a few %)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    needed = math.ceil(2 * readers * 1.5 / nofile)
    workers: int | str = needed if needed > (os.cpu_count() or 1) else "auto"
    return stack.enter_context(nginx_server([server.port for server in servers],
                                            port=site.front_port, directory=directory / "nginx",
                                            workers=workers))


def nginx_memory_kib(nginx: NginxServer) -> int:
    """VmRSS of nginx's master and workers together."""
    return sum(rss_kb(pid) for pid in (nginx.pid, *nginx.worker_pids()))


def nginx_cpu_seconds(nginx: NginxServer) -> float:
    return sum(cpu_seconds(pid) for pid in (nginx.pid, *nginx.worker_pids()))


def stack_once(config: Config, postgres: PostgresServer, layer: str, daphnes: int, readers: int,
               name: str) -> dict[str, Any]:
    """One run of one layer; the row of that run (fan-out's, plus Redis's numbers)."""
    directory = fresh_dir(config.work / name)
    site = Site.create(directory, DATABASE_URL=postgres.create_database(name.replace("-", "_")))
    with ExitStack() as stack:
        redis = stack.enter_context(bench_redis(directory))
        env = {"REDIS_URL": redis.url, "LIVEBLOG_REDIS_LAYER": layer, **BEHIND_NGINX}
        servers = [stack.enter_context(liveblog_server(site, **env)) for _ in range(daphnes)]
        for server in servers:  # the hub (and its channel layer) starts with a first reader,
            warm_up(feed_url(server.ws_url, site.slug), server.url)
            liveblog_author(server, site)  # and its publisher with a first post
        nginx = front(stack, directory, site, servers, readers)
        api = liveblog_author(nginx, site)  # the author, through nginx
        stats = stack.enter_context(RedisStats(redis.port))
        version = stats.server().get("redis_version")
        procs = max(config.procs, math.ceil(readers / LIVE_READERS_PER_PROC))
        load = stack.enter_context(loadgen(
            feed_url(nginx.ws_url, site.slug), origin=nginx.url, readers=readers, procs=procs,
            out=directory / "loadgen.json"))
        live = load.wait_ready(CONNECT_TIMEOUT)["live"]
        if live < readers:
            print(f"    only {live} of {readers} readers went live", file=sys.stderr)
        time.sleep(SETTLE_SECONDS)
        split = [upstream_connections(server.port) for server in servers]
        log_offset = redis.log_path.stat().st_size

        idle_before = stats.read()
        time.sleep(config.stack_idle)
        idle = stats_delta(idle_before, stats.read())

        def publish(number: int) -> int:
            return api.post(site.slug, seed.body(number))["seq"]

        queries_before = [server.queries() for server in servers]
        cpu_before = [cpu_seconds(server.pid) for server in servers]
        nginx_cpu_before = nginx_cpu_seconds(nginx)
        before = stats.read()
        sent = paced(config.posts, config.interval, publish)
        time.sleep(max(0.0, sent[0].started + len(sent) * config.interval - time.monotonic()))
        window = stats_delta(before, stats.read())
        cpu = [cpu_seconds(server.pid) - was for server, was in zip(servers, cpu_before,
                                                                      strict=True)]
        nginx_cpu = nginx_cpu_seconds(nginx) - nginx_cpu_before
        queries = sum_queries([query_delta(was, server.queries())
                               for server, was in zip(servers, queries_before, strict=True)])
        result = load.finish(events=len(sent), timeout=config.drain_timeout)
        warnings = redis_warnings(redis.log_path, log_offset)
        errors_total = {key.removeprefix("errorstat_"): int(value.get("count", 0))
                        for key, value in stats.read()["info"].items()
                        if key.startswith("errorstat_")}
        nginx_log = nginx.log()
    row = fanout_row(f"{layer} ×{daphnes}", readers, sent, result, config,
                     [server.log_path for server in servers], scenario="stack", queries=queries)
    events = len(sent)
    row.update({
        "layer": layer, "daphnes": daphnes, "readers_per_daphne": split,
        "readers_per_process": readers // daphnes, "through": "nginx", "loadgen_procs": procs,
        "redis": {"version": version, "idle": idle, "window": window,
                  "per_event": per_event(window, idle, events), "idle_per_second":
                  per_second(idle), "warnings": warnings,
                  "errors_since_start": errors_total},
        "daphne_cpu_s": [round(seconds, 2) for seconds in cpu],
        "daphne_cpu_ms_per_event": round(sum(cpu) * 1000 / events, 1),
        "nginx_cpu_ms_per_event": round(nginx_cpu * 1000 / events, 1),
        "nginx_log_issues": [line for line in nginx_log.splitlines()
                             if "[alert]" in line or "[error]" in line or "[crit]" in line][:8],
    })
    return row


def stack_idle_once(config: Config, postgres: PostgresServer, daphnes: int, readers: int,
                    name: str) -> list[dict[str, Any]]:
    """`readers` idle readers through nginx over `daphnes` processes (pubsub): two idle rows,
    the daphne processes' memory per connection and nginx's."""
    directory = fresh_dir(config.work / name)
    site = Site.create(directory, DATABASE_URL=postgres.create_database(name.replace("-", "_")))
    with ExitStack() as stack:
        redis = stack.enter_context(bench_redis(directory))
        env = {"REDIS_URL": redis.url, "LIVEBLOG_REDIS_LAYER": "pubsub", **BEHIND_NGINX}
        servers = [stack.enter_context(liveblog_server(site, **env)) for _ in range(daphnes)]
        for server in servers:
            warm_up(feed_url(server.ws_url, site.slug), server.url)
        nginx = front(stack, directory, site, servers, readers)
        for _ in servers:  # through nginx too: its workers' first connections
            warm_up(feed_url(nginx.ws_url, site.slug), nginx.url)
        time.sleep(0.5)
        pids = [server.pid for server in servers]
        procs = max(config.procs, math.ceil(readers / READERS_PER_PROC))
        before = {"daphne_kb": [rss_kb(pid) for pid in pids], "nginx_kb": nginx_memory_kib(nginx),
                  "fds": [open_files(pid) for pid in pids], "drops": listen_drops()}
        load = stack.enter_context(loadgen(
            feed_url(nginx.ws_url, site.slug), origin=nginx.url, readers=readers, procs=procs,
            out=directory / "loadgen.json"))
        ready = load.wait_ready(CONNECT_TIMEOUT)
        live = {"daphne_kb": [rss_kb(pid) for pid in pids], "nginx_kb": nginx_memory_kib(nginx),
                "fds": [open_files(pid) for pid in pids]}
        time.sleep(config.idle_settle)
        settled = {"daphne_kb": [rss_kb(pid) for pid in pids],
                   "nginx_kb": nginx_memory_kib(nginx), "drops": listen_drops(),
                   "split": [upstream_connections(port) for port in nginx.upstream_ports],
                   "workers": len(nginx.worker_pids())}
        result = load.finish(events=0, timeout=0)
        nginx_log = nginx.log()
    held = result["live"] - sum(result["closed_early"].values())
    common = {
        "scenario": "idle", "readers": readers, "wanted": readers, "capped": None, "held": held,
        "live": result["live"], "procs": procs, "latency_ms": {"p50": None, "p99": None,
                                                                "max": None},
        "settle_s": config.idle_settle, "through": "nginx", "daphnes": daphnes,
        "readers_per_daphne": settled["split"],
        "connect": {"live": result["live"],
                    "wall_s": round((ready["last_live"] or 0) - (ready["first_connect"] or 0), 2),
                    "live_ms": summary([seconds * 1000 for seconds in result["live_seconds"]])},
        "failed_attempts": result["failed_attempts"], "errors": result["errors"],
        "closed_early": result["closed_early"],
        "listen_drops": {key: settled["drops"][key] - before["drops"][key]
                         for key in before["drops"]},
        "queries": None,
    }

    def per_connection(grown_kb: int) -> float | None:
        return round(grown_kb / held, 1) if held else None

    daphne_rss = {"before": sum(before["daphne_kb"]), "live": sum(live["daphne_kb"]),
                  "settled": sum(settled["daphne_kb"])}
    nginx_rss = {"before": before["nginx_kb"], "live": live["nginx_kb"],
                 "settled": settled["nginx_kb"]}
    daphne_row = {
        **common, "server": f"stack: {daphnes} daphnes", "rss_kb": daphne_rss,
        "rss_kb_per_daphne": {"before": before["daphne_kb"], "settled": settled["daphne_kb"]},
        "kb_per_connection": per_connection(daphne_rss["settled"] - daphne_rss["before"]),
        "server_fds": {"before": sum(before["fds"]), "live": sum(live["fds"])},
        "server_log": logs_of(servers),
    }
    issues = [line for line in nginx_log.splitlines()
              if "[alert]" in line or "[error]" in line or "[crit]" in line]
    nginx_row = {
        **common, "server": f"stack: nginx ({settled['workers']} workers)", "rss_kb": nginx_rss,
        "kb_per_connection": per_connection(nginx_rss["settled"] - nginx_rss["before"]),
        "server_fds": {"before": "-", "live": "-"},
        "server_log": {"issues": len(issues), "sample": issues[:8]},
    }
    return [daphne_row, nginx_row]


def logs_of(servers: list) -> dict[str, Any]:
    """The daphne processes' logs' warnings and errors, added up."""
    each = [log_issues(server.log_path) for server in servers]
    return {"issues": sum(item["issues"] for item in each),
            "sample": [line for item in each for line in item["sample"]][:8]}


def format_stack_curve(rows: list[dict[str, Any]]) -> str:
    """p99 against readers per process, per layer and process count (the stack rows)."""
    stack = sorted((row for row in rows if row["scenario"] == "stack" and not row.get("failed")),
                   key=lambda row: (row["layer"], row["daphnes"], row["readers"]))
    if len(stack) < 2:
        return ""
    lines = [["layer", "daphnes", "readers/process", "readers", "p50 ms", "p99 ms", "max ms",
              "lost", "create ms p50", "daphne CPU ms/event", "nginx CPU ms/event"]]
    for row in stack:
        latency = row["latency_ms"]
        lines.append([row["layer"], str(row["daphnes"]), str(row["readers"] // row["daphnes"]),
                      str(row["readers"]), _ms(latency["p50"]), _ms(latency["p99"]),
                      _ms(latency["max"]), f"{row['lost']}/{row['expected']}",
                      _ms(row["post_call_ms"]["p50"]), _ms(row["daphne_cpu_ms_per_event"]),
                      _ms(row.get("nginx_cpu_ms_per_event"))])
    return _aligned(lines, left=1)


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def stack_row(server: str, readers: int, all_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for the runs of one (layer, processes, readers): medians over the runs that
    completed, losses added up, every run kept (and a failed run's reason)."""
    runs = [run for run in all_runs if not run.get("failed")]
    failures = [run["error"] for run in all_runs if run.get("failed")]
    if not runs:
        return {"scenario": "stack", "server": server, "readers": readers, "failed": True,
                "error": failures[0], "latency_ms": {"p50": None, "p99": None, "max": None}}
    first = runs[0]

    def median(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
        return _median([pick(run) for run in runs])

    per = [run["redis"]["per_event"] for run in runs]
    idle = [run["redis"]["idle_per_second"] for run in runs]
    commands = sorted({name for item in per for name in item["by_command"]})
    idle_commands = sorted({name for item in idle for name in item["by_command"]})
    totals = ("expected", "lost", "unexpected", "duplicates", "out_of_order", "failed_attempts")
    return {
        "scenario": "stack", "server": first["server"], "readers": first["readers"],
        "layer": first["layer"], "daphnes": first["daphnes"], "posts": first["posts"],
        "runs": len(runs), "failed_runs": failures,
        "latency_ms": {key: median(lambda run, key=key: run["latency_ms"][key])
                       for key in ("p50", "p99", "max")},
        **{key: sum(run[key] for run in runs) for key in totals},
        "queries": {"queries": median(lambda run: run["queries"]["queries"]),
                    "connections_opened": median(
                        lambda run: run["queries"]["connections_opened"]),
                    "top_statements": first["queries"]["top_statements"], "per": "run"},
        "redis_per_event": {
            **{key: _median([item[key] for item in per]) for key in per[0]
               if key != "by_command"},
            "by_command": {name: _median([item["by_command"].get(name, 0) for item in per])
                           for name in commands},
        },
        "redis_idle_per_second": {
            "commands": _median([item["commands"] for item in idle]),
            "cpu_ms": _median([item["cpu_ms"] for item in idle]),
            "by_command": {name: _median([item["by_command"].get(name, 0) for item in idle])
                           for name in idle_commands},
        },
        "daphne_cpu_ms_per_event": median(lambda run: run["daphne_cpu_ms_per_event"]),
        "nginx_cpu_ms_per_event": median(lambda run: run["nginx_cpu_ms_per_event"]),
        "through": "nginx", "readers_per_daphne": [run["readers_per_daphne"] for run in runs],
        "nginx_log_issues": [line for run in runs for line in run["nginx_log_issues"]][:8],
        "post_call_ms": {"p50": median(lambda run: run["post_call_ms"]["p50"]),
                         "max": median(lambda run: run["post_call_ms"]["max"])},
        "errors": [run["errors"] for run in runs if run["errors"]],
        "closed_early": [run["closed_early"] for run in runs if run["closed_early"]],
        "server_log": {"issues": sum(run["server_log"]["issues"] for run in runs),
                       "sample": [line for run in runs for line in run["server_log"]["sample"]]
                       [:8]},
        "redis_warnings": sorted({re.sub(r"^\d+:[A-Z] [^#]+# ", "", line)
                                  for run in runs for line in run["redis"]["warnings"]}),
        "redis_errors": [{**run["redis"]["idle"]["errors"], **run["redis"]["window"]["errors"]}
                         for run in runs
                         if run["redis"]["window"]["errors"] or run["redis"]["idle"]["errors"]],
        "redis_errors_since_start": [run["redis"]["errors_since_start"] for run in runs
                                     if run["redis"]["errors_since_start"]],
        "runs_detail": runs,
    }


def readers_for(config: Config, daphnes: int) -> list[int]:
    """The reader counts of `daphnes` processes: `stack_readers`, then `stack_per_process`
    readers per process (the curve), each once."""
    counts = [*config.stack_readers, *(per * daphnes for per in config.stack_per_process)]
    return list(dict.fromkeys(counts))


def stack(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every (processes, readers) with every layer, `stack_runs` times, interleaved; then the
    idle rows."""
    if "liveblog" not in config.servers:
        return []
    combos = [(daphnes, readers, layer) for daphnes in config.stack_daphnes
              for readers in readers_for(config, daphnes) for layer in config.stack_layers]
    runs: dict[tuple[int, int, str], list[dict[str, Any]]] = {combo: [] for combo in combos}
    rows: list[dict[str, Any]] = []
    with postgres_server(database="bench") as postgres:
        _stack_runs(config, postgres, combos, runs, progress)
        rows += [stack_row(f"{layer} ×{daphnes}", readers, runs[daphnes, readers, layer])
                 for daphnes, readers, layer in combos]
        for readers in config.stack_idle_readers:
            daphnes = config.stack_daphnes[0]
            progress(f"stack: {readers} idle readers through nginx, {daphnes} daphne processes")
            name = f"stack-idle-{daphnes}-{readers}"
            try:
                rows += stack_idle_once(config, postgres, daphnes, readers, name)
            except Exception as error:  # noqa: BLE001 - the other rows still count
                progress(f"{name} failed: {type(error).__name__}: {error}")
                rows.append({"scenario": "idle", "server": f"stack: {daphnes} daphnes + nginx",
                             "readers": readers, "failed": True,
                             "error": f"{type(error).__name__}: {error}"[:2000],
                             "latency_ms": {"p50": None, "p99": None, "max": None}})
    return rows


def _stack_runs(config: Config, postgres: PostgresServer, combos: list[tuple[int, int, str]],
                runs: dict[tuple[int, int, str], list[dict[str, Any]]],
                progress: Callable[[str], None]) -> None:
    for number in range(config.stack_runs):
        for daphnes, readers, layer in combos:
            progress(f"stack: {layer}, {daphnes} daphne processes, {readers} readers, "
                     f"{config.posts} posts (run {number + 1} of {config.stack_runs})")
            name = f"stack-{layer}-{daphnes}-{readers}-{number}"
            try:
                run = stack_once(config, postgres, layer, daphnes, readers, name)
            except Exception as error:  # noqa: BLE001 - the other runs still count
                progress(f"{name} failed: {type(error).__name__}: {error}")
                run = {"failed": True, "error": f"{type(error).__name__}: {error}"[:2000]}
            runs[daphnes, readers, layer].append(run)
