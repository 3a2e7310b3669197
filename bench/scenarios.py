"""The scenarios, and what they share. Each returns one row per server: a dict with the numbers
and how it went. Here: fan-out and replay; burst, storm, idle, stack and abuse have modules of
their own.

fan-out: N readers of one blog, one post per `interval` seconds; latency from just before the
    HTTP create call (reference: the control frame) to each reader's receipt of the event frame.
fan-out sse: the same on Liveblog with Server-Sent Events readers (GET /sse/liveblog/<slug>/).
replay: one reader connects with since=0 to a blog holding `replay_events` events; time from
    the start of the connect to `live`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as sync_connect

from devstack.common import REPO
from devstack.daphne import ApiClient, Site, feed_url

from . import gctrace, profile, seed
from .processes import (
    BenchError,
    QuietDaphne,
    liveblog_server,
    loadgen,
    log_issues,
    logs_issues,
    reference_server,
    socketio_server,
)
from .reference import event_frame
from .report import summary

SETTLE_SECONDS = 1.0  # after every reader is live, before the first post
CONNECT_TIMEOUT = 300.0  # for every reader of a row to be live


@dataclass
class Config:
    readers: list[int]
    posts: int
    interval: float
    procs: int
    servers: list[str]
    replay_events: int
    replay_runs: int
    frame_bytes: int
    drain_timeout: float
    work: Path
    burst_readers: int = 1000
    burst_posts: int = 50
    burst_seconds: float = 1.0
    storm_readers: int = 1000
    storm_missed: int = 20
    storm_concurrency: int = 0  # reconnects in flight per load generator process; 0: all
    idle_readers: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    idle_settle: float = 3.0
    stack_daphnes: list[int] = field(default_factory=lambda: [2])
    stack_readers: list[int] = field(default_factory=lambda: [1000])
    stack_layers: list[str] = field(default_factory=lambda: ["pubsub", "lists"])
    stack_runs: int = 1
    stack_idle: float = 15.0
    stack_per_process: list[int] = field(default_factory=list)  # the p99 curve's rows
    stack_idle_readers: list[int] = field(default_factory=list)  # idle readers through nginx
    abuse_readers: int = 200
    abuse_resyncs: int = 10_000
    abuse_junk: int = 10_000
    push_subscriptions: int = 1000
    push_runs: int = 3
    sse_readers: list[int] = field(default_factory=lambda: [1000])
    page_posts: int = 30
    page_runs: int = 3


@dataclass
class Sent:
    """One post: when its create call started and how long the call took."""

    seq: int
    started: float
    call_ms: float


def paced(count: int, interval: float, publish: Callable[[int], int]) -> list[Sent]:
    """Call `publish(k)` (which returns the seq) once per interval, `count` times, each call
    after the previous one has returned."""
    sent = []
    start = time.monotonic()
    for number in range(count):
        delay = start + number * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        seq = publish(number + 1)
        sent.append(Sent(seq, started, (time.monotonic() - started) * 1000))
    return sent


# --- Database queries (Liveblog's daphne counts them, see bench.launch_daphne) ------------------

QueryProbe = Callable[[], dict[str, Any]]


def query_delta(before: dict[str, Any], after: dict[str, Any], *, top: int = 6) -> dict[str, Any]:
    """The queries run between two probe readings, with the most frequent statements."""
    counts = Counter(after["statements"])
    counts.subtract(before["statements"])
    return {
        "queries": after["queries"] - before["queries"],
        "connections_opened": after["connections"] - before["connections"],
        "top_statements": [{"count": count, "sql": sql[:160]}
                           for sql, count in counts.most_common(top) if count > 0],
    }


# --- fan-out ------------------------------------------------------------------------------


def fanout_row(server: str, readers: int, sent: list[Sent], result: dict[str, Any],
               config: Config, log: Path | list[Path], *, scenario: str = "fan-out",
               queries: dict[str, Any] | None = None, transport: str = "ws") -> dict[str, Any]:
    """The row: latencies from the arrivals, losses, connects, and the server's log (its
    warnings and errors, and the full garbage collections that overlapped a delivery); with
    several server processes (the stack scenario), their logs together."""
    arrivals: dict[str, list[float]] = result["arrivals"]
    logs = log if isinstance(log, list) else [log]
    collections = sorted(span for path in logs for span in gctrace.pauses(path))
    latencies, per_post, gc_hits = [], [], []
    for post in sent:
        moments = arrivals.get(str(post.seq), [])
        times = [(moment - post.started) * 1000 for moment in moments]
        hits = gctrace.overlapping(collections, post.started, max(moments, default=post.started))
        latencies += times
        gc_hits += hits
        per_post.append({"seq": post.seq, "call_ms": round(post.call_ms, 2),
                         "gc_pause_ms": round(sum(hits), 1), **summary(times)})
    expected = readers * len(sent)
    known = {str(post.seq) for post in sent}
    live_ms = [seconds * 1000 for seconds in result["live_seconds"]]
    first, last = result["first_connect"], result["last_live"]
    return {
        "scenario": scenario, "server": server, "transport": transport, "readers": readers,
        "posts": len(sent),
        "interval_s": config.interval, "procs": config.procs,
        "latency_ms": summary(latencies), "expected": expected, "queries": queries,
        "lost": expected - len(latencies),
        "unexpected": sum(len(times) for seq, times in arrivals.items() if seq not in known),
        "duplicates": result["duplicates"], "out_of_order": result["out_of_order"],
        "failed_attempts": result["failed_attempts"], "errors": result["errors"],
        "closed_early": result["closed_early"],
        "connect": {"live": result["live"],
                    "wall_s": round(last - first, 2) if first and last else None,
                    "live_ms": summary(live_ms)},
        "post_call_ms": summary([post.call_ms for post in sent]),
        "frame_bytes": typical_frame_bytes(result),
        "server_log": log_issues(log) if isinstance(log, Path) else logs_issues(logs),
        "server_gc": {"full_collections": len(collections),
                      "posts_hit": sum(1 for post in per_post if post["gc_pause_ms"]),
                      "longest_hit_ms": round(max(gc_hits, default=0), 1)},
        "per_post": per_post,
    }


def typical_frame_bytes(result: dict[str, Any]) -> int | None:
    """The most common size of the event frames the readers got."""
    sizes: dict[str, int] = result["frame_bytes"]
    return int(max(sizes, key=sizes.__getitem__)) if sizes else None


def run_readers(url: str, origin: str | None, readers: int, config: Config, name: str,
                post_all: Callable[[], list[Sent]], probe: QueryProbe | None = None,
                transport: str = "ws",
                ) -> tuple[list[Sent], dict[str, Any], dict[str, Any] | None]:
    """Readers up (over `transport`: ws or sse), posts out, results in; with a probe, the
    queries the server ran from the first post until every reader had every frame and closed."""
    out = config.work / f"{name}.json"
    with loadgen(url, origin=origin, readers=readers, procs=config.procs, out=out,
                 extra=("--transport", transport)) as load:
        ready = load.wait_ready(CONNECT_TIMEOUT)
        if ready["live"] < readers:
            print(f"    only {ready['live']} of {readers} readers went live", file=sys.stderr)
        time.sleep(SETTLE_SECONDS)
        before = probe() if probe else None
        with profile.window():  # with --profile: Liveblog's daphne, posts and delivery
            sent = post_all()
            result = load.finish(events=len(sent), timeout=config.drain_timeout)
    return sent, result, (query_delta(before, probe()) if probe else None)


def liveblog_author(server: QuietDaphne, site: Site) -> ApiClient:
    """The author, signed in, after one unmeasured post (a fresh process's first request
    imports and connects)."""
    api = ApiClient(server.url).login(site.username, site.password)
    api.post(site.slug, seed.body(0))
    return api


def sse_url(http_base: str, slug: str, **query: object) -> str:
    """`http://host:port/sse/liveblog/<slug>/?since=…&epoch=…` (query items left out when
    None): the SSE twin of devstack.daphne.feed_url."""
    params = {key: value for key, value in query.items() if value is not None}
    query_string = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"{http_base}/sse/liveblog/{slug}/{query_string}"


def fanout_liveblog(site: Site, readers: int, config: Config,
                    transport: str = "ws") -> dict[str, Any]:
    """One fan-out row on a fresh daphne, its readers on websockets or (sse) Server-Sent
    Events. SSE readers send no Origin: a browser's same-origin EventSource sends none."""
    with liveblog_server(site) as server:
        api = liveblog_author(server, site)

        def publish(number: int) -> int:
            return api.post(site.slug, seed.body(number))["seq"]

        url, origin = ((sse_url(server.url, site.slug), None) if transport == "sse"
                       else (feed_url(server.ws_url, site.slug), server.url))
        sent, result, queries = run_readers(
            url, origin, readers, config, f"fanout-{transport}-liveblog-{readers}",
            lambda: paced(config.posts, config.interval, publish), server.queries, transport,
        )
    return fanout_row("liveblog", readers, sent, result, config, server.log_path,
                      queries=queries, transport=transport,
                      scenario="fan-out sse" if transport == "sse" else "fan-out")


def fanout_reference(readers: int, frame_bytes: int, config: Config) -> dict[str, Any]:
    log = config.work / f"reference-{readers}.log"
    with reference_server(log) as server, sync_connect(f"{server.ws_url}/control") as control:

        def publish(number: int) -> int:
            control.send(event_frame(number, frame_bytes))
            return number

        sent, result, _ = run_readers(f"{server.ws_url}/", None, readers, config,
                                      f"fanout-reference-{readers}",
                                      lambda: paced(config.posts, config.interval, publish))
    return fanout_row("reference", readers, sent, result, config, server.log_path)


def fanout_socketio(readers: int, frame_bytes: int, config: Config) -> dict[str, Any]:
    """The Socket.IO reference: the same frames on its control socket, each broadcast with
    `io.emit`; its readers speak Engine.IO over a websocket (bench.streams.SocketIOStream)."""
    log = config.work / f"socketio-{readers}.log"
    with socketio_server(log) as server, sync_connect(f"{server.ws_url}/control") as control:

        def publish(number: int) -> int:
            control.send(event_frame(number, frame_bytes))
            return number

        sent, result, _ = run_readers(server.readers_url, None, readers, config,
                                      f"fanout-socketio-{readers}",
                                      lambda: paced(config.posts, config.interval, publish),
                                      transport="socketio")
    return fanout_row("socketio", readers, sent, result, config, server.log_path,
                      transport="socketio")


def fanout(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every reader count, Liveblog first (its frame size is the references' payload size)."""
    rows = []
    site = Site.create(fresh_dir(config.work / "fanout"))
    for readers in config.readers:
        frame_bytes = config.frame_bytes
        if "liveblog" in config.servers:
            progress(f"fan-out: liveblog, {readers} readers, {config.posts} posts")
            rows.append(fanout_liveblog(site, readers, config))
            frame_bytes = rows[-1]["frame_bytes"] or frame_bytes
        if "reference" in config.servers:
            progress(f"fan-out: reference, {readers} readers, {frame_bytes}-byte frames")
            rows.append(fanout_reference(readers, frame_bytes, config))
        if "socketio" in config.servers:
            progress(f"fan-out: socketio, {readers} readers, {frame_bytes}-byte frames")
            rows.append(fanout_socketio(readers, frame_bytes, config))
    return rows


def fanout_sse(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """fan-out on Liveblog with SSE readers, one row per `sse_readers` count (no reference:
    the websocket reference row is the ceiling to compare with)."""
    if "liveblog" not in config.servers:
        return []
    site = Site.create(fresh_dir(config.work / "fanout-sse"))
    rows = []
    for readers in config.sse_readers:
        progress(f"fan-out sse: liveblog, {readers} SSE readers, {config.posts} posts")
        rows.append(fanout_liveblog(site, readers, config, "sse"))
    return rows


# --- replay -------------------------------------------------------------------------------


def per_run(queries: dict[str, Any], runs: int, unit: str) -> dict[str, Any]:
    """Query counts over `runs` runs, as means per run."""
    def mean(count: int) -> float:
        return round(count / runs, 1)

    return {"queries": mean(queries["queries"]),
            "connections_opened": mean(queries["connections_opened"]),
            "top_statements": [{**item, "count": mean(item["count"])}
                               for item in queries["top_statements"]],
            "per": unit, "runs": runs}


def seed_site(site: Site, events: int) -> dict[str, Any]:
    """Fill the site's blog with `events` real events in one `manage.py shell` process."""
    code = f"from bench.seed import main; main({site.slug!r}, {site.username!r}, {events})"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO, env=site.process_env(), capture_output=True, text=True, timeout=1800,
    )
    if done.returncode != 0:
        raise BenchError(f"seeding failed:\n{done.stderr[-4000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if answer["events"] != events:
        raise BenchError(f"seeding made {answer['events']} events, not {events}")
    return answer


def replay_once(url: str, origin: str | None, config: Config, name: str) -> dict[str, Any]:
    """One reader, connect → `live`; its time and how many events came before `live`."""
    out = config.work / f"{name}.json"
    with loadgen(url, origin=origin, readers=1, procs=1, out=out) as load:
        load.wait_ready(CONNECT_TIMEOUT)
        result = load.finish(events=0, timeout=0)
    if not result["live"]:
        raise BenchError(f"the replay reader never went live: {result['errors']}")
    return {"seconds": result["live_seconds"][0], "events": result["catch_up_events"][0],
            "frame_bytes": typical_frame_bytes(result)}


def replay_row(server: str, runs: list[dict[str, Any]], config: Config, log: Path,
               queries: dict[str, Any] | None = None) -> dict[str, Any]:
    latency = {**summary([run["seconds"] * 1000 for run in runs], digits=3), "p99": None}
    seconds = latency["p50"] / 1000  # the median run (nearest rank, as in the table)
    expected = config.replay_events
    return {
        "scenario": "replay", "server": server, "readers": 1, "events": expected,
        "latency_ms": latency, "seconds": seconds, "events_per_second": round(expected / seconds),
        "lost": max(expected - run["events"] for run in runs), "runs": runs,
        "queries": queries, "server_log": log_issues(log),
    }


def _replay_runs(url: str, origin: str | None, config: Config, name: str,
                 probe: QueryProbe | None = None) -> tuple[list[dict], dict | None]:
    """The measured runs, after a warm-up; with a probe, the queries per run (their mean)."""
    warm_up = url.split("?")[0]  # a snapshot connect: the first websocket imports and connects
    replay_once(warm_up, origin, config, f"{name}-warm-up")
    before = probe() if probe else None
    runs = [replay_once(url, origin, config, f"{name}-{run}") for run in range(config.replay_runs)]
    if probe is None:
        return runs, None
    return runs, per_run(query_delta(before, probe()), len(runs), "replay")


def replay(config: Config, progress: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Seed a blog, then replay it from since=0 on each server; rows and the seeding stats."""
    events = config.replay_events
    progress(f"replay: seeding {events} events")
    site = Site.create(fresh_dir(config.work / "replay"),
                       LIVEBLOG_REPLAY_WINDOW=str(events))  # else since=0 gets a snapshot
    seeding = seed_site(site, events)
    rows = []
    if "liveblog" in config.servers:
        progress(f"replay: liveblog, since=0 of {events}, {config.replay_runs} runs")
        with liveblog_server(site) as server:
            url = feed_url(server.ws_url, site.slug, since=0)
            runs, queries = _replay_runs(url, server.url, config, "replay-liveblog",
                                         server.queries)
        rows.append(replay_row("liveblog", runs, config, server.log_path, queries))
    if "reference" in config.servers:
        frame_bytes = seeding["frame_bytes"]
        progress(f"replay: reference, {events} frames of {frame_bytes} bytes")
        log = config.work / "reference-replay.log"
        with reference_server(log, replay_events=events, frame_bytes=frame_bytes) as server:
            runs, _ = _replay_runs(f"{server.ws_url}/?since=0", None, config, "replay-reference")
        rows.append(replay_row("reference", runs, config, server.log_path))
    return rows, seeding


def fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
