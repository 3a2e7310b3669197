"""stack: scale-out through Redis, once per channels-redis layer (pubsub and lists).

One run of one layer: a fresh Redis on loopback, a fresh site (a database of its own on one
private PostgreSQL cluster for the whole scenario, as in production; devstack/postgres.py)
and `daphnes` daphne processes (bench.launch_daphne, as in the other scenarios) with REDIS_URL and
LIVEBLOG_REDIS_LAYER; `readers` readers split evenly over the processes (a load generator per
process). With every reader live, Redis is read (INFO stats, cpu, commandstats, errorstats),
nothing happens for `stack_idle` seconds and Redis is read again: the idle cost. Then `posts`
posts, one per `interval`, made alternately through each process; Redis is read just before the
first post and `posts × interval` seconds after it (the same window for both layers, whatever
the delivery): the cost per event. Latency per frame as in fan-out (from just before the create
call to each reader's receipt, whichever process served the post and the reader), lost =
readers × posts − arrivals.

`stack_runs` runs of every (processes, readers, layer), interleaved (pubsub, lists, pubsub, …) so
that a noisy neighbour hits both; the row gives the medians over the runs (losses: the sum).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from devstack.daphne import Site, feed_url
from devstack.postgres import PostgresServer, postgres_server

from . import seed
from .idle import warm_up
from .loadgen import merge
from .processes import cpu_seconds, liveblog_server, loadgen
from .redisstats import RedisStats, bench_redis, stats_delta
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


def stack_once(config: Config, postgres: PostgresServer, layer: str, daphnes: int, readers: int,
               name: str) -> dict[str, Any]:
    """One run of one layer; the row of that run (fan-out's, plus Redis's numbers)."""
    directory = fresh_dir(config.work / name)
    site = Site.create(directory, DATABASE_URL=postgres.create_database(name.replace("-", "_")))
    with ExitStack() as stack:
        redis = stack.enter_context(bench_redis(directory))
        env = {"REDIS_URL": redis.url, "LIVEBLOG_REDIS_LAYER": layer}
        servers = [stack.enter_context(liveblog_server(site, **env)) for _ in range(daphnes)]
        for server in servers:  # the hub (and its channel layer) starts with a first reader,
            warm_up(feed_url(server.ws_url, site.slug), server.url)
        apis = [liveblog_author(server, site) for server in servers]  # and its publisher here
        stats = stack.enter_context(RedisStats(redis.port))
        version = stats.server().get("redis_version")
        procs = max(1, config.procs // daphnes)
        split = shares(readers, daphnes)
        loads = [stack.enter_context(loadgen(
            feed_url(server.ws_url, site.slug), origin=server.url, readers=share, procs=procs,
            out=directory / f"loadgen-{index}.json"))
            for index, (server, share) in enumerate(zip(servers, split, strict=True))]
        live = sum(load.wait_ready(CONNECT_TIMEOUT)["live"] for load in loads)
        if live < readers:
            print(f"    only {live} of {readers} readers went live", file=sys.stderr)
        time.sleep(SETTLE_SECONDS)
        log_offset = redis.log_path.stat().st_size

        idle_before = stats.read()
        time.sleep(config.stack_idle)
        idle = stats_delta(idle_before, stats.read())

        def publish(number: int) -> int:
            return apis[(number - 1) % daphnes].post(site.slug, seed.body(number))["seq"]

        queries_before = [server.queries() for server in servers]
        cpu_before = [cpu_seconds(server.pid) for server in servers]
        before = stats.read()
        sent = paced(config.posts, config.interval, publish)
        time.sleep(max(0.0, sent[0].started + len(sent) * config.interval - time.monotonic()))
        window = stats_delta(before, stats.read())
        cpu = [cpu_seconds(server.pid) - was for server, was in zip(servers, cpu_before,
                                                                      strict=True)]
        queries = sum_queries([query_delta(was, server.queries())
                               for server, was in zip(servers, queries_before, strict=True)])
        result = merge([load.finish(events=len(sent), timeout=config.drain_timeout)
                        for load in loads])
        warnings = redis_warnings(redis.log_path, log_offset)
        errors_total = {key.removeprefix("errorstat_"): int(value.get("count", 0))
                        for key, value in stats.read()["info"].items()
                        if key.startswith("errorstat_")}
    row = fanout_row(f"{layer} ×{daphnes}", readers, sent, result, config,
                     [server.log_path for server in servers], scenario="stack", queries=queries)
    events = len(sent)
    row.update({
        "layer": layer, "daphnes": daphnes, "readers_per_daphne": split,
        "loadgen_procs_per_daphne": procs,
        "redis": {"version": version, "idle": idle, "window": window,
                  "per_event": per_event(window, idle, events), "idle_per_second":
                  per_second(idle), "warnings": warnings,
                  "errors_since_start": errors_total},
        "daphne_cpu_s": [round(seconds, 2) for seconds in cpu],
        "daphne_cpu_ms_per_event": round(sum(cpu) * 1000 / events, 1),
    })
    return row


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


def stack(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every (processes, readers) with every layer, `stack_runs` times, interleaved."""
    if "liveblog" not in config.servers:
        return []
    combos = [(daphnes, readers, layer) for daphnes in config.stack_daphnes
              for readers in config.stack_readers for layer in config.stack_layers]
    runs: dict[tuple[int, int, str], list[dict[str, Any]]] = {combo: [] for combo in combos}
    with postgres_server(database="bench") as postgres:
        _stack_runs(config, postgres, combos, runs, progress)
    return [stack_row(f"{layer} ×{daphnes}", readers, runs[daphnes, readers, layer])
            for daphnes, readers, layer in combos]


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
