"""`python -m bench` (or `make bench BENCH_ARGS="…"`): run the scenarios, print one table and
write bench/results/latest.json. Numbers, not pass/fail. See bench/README.md."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import profile
from .abuse import abuse
from .burst import burst
from .idle import idle
from .loadgen import raise_nofile_limit
from .page import page
from .processes import PROFILE_DIRECTORY, PROFILE_ROW, socketio_missing
from .push import push
from .report import (
    comparisons,
    failed_row,
    format_abuse_table,
    format_comparisons,
    format_stack_table,
    format_table,
    machine,
    notes,
    server_code,
    write_json,
)
from .scenarios import Config, fanout, fanout_sse, replay
from .stack import LAYERS, format_stack_curve, stack
from .storm import storm

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("fanout", "fanout-sse", "burst", "storm", "idle", "replay", "abuse", "push",
             "page", "stack")
# stack: on request
DEFAULT_SCENARIOS = ("fanout", "fanout-sse", "burst", "storm", "idle", "replay", "abuse", "push",
                     "page")
# socketio: fan-out, burst, storm and idle (the other scenarios have no Socket.IO row)
SERVERS = ("liveblog", "reference", "socketio")


def _int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def _choices(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        if unknown := set(chosen) - set(allowed):
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
        return chosen

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--readers", type=_int_list, default=_int_list(os.environ.get("N") or
                                                                       "1000,2000"),
                        help="fan-out reader counts, comma-separated (default: $N or 1000,2000)")
    parser.add_argument("--sse-readers", type=_int_list,
                        help="fanout-sse reader counts, comma-separated (default: the first "
                             "fan-out count, 1000)")
    parser.add_argument("--posts", type=int, default=20, help="posts per fan-out row (20)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between posts (1)")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (2)")
    parser.add_argument("--scenarios", type=_choices(SCENARIOS), default=list(DEFAULT_SCENARIOS),
                        help="comma-separated: fanout,fanout-sse,burst,storm,idle,replay,abuse,"
                             "push,page,stack (default all but stack)")
    parser.add_argument("--servers", type=_choices(SERVERS), default=list(SERVERS),
                        help="comma-separated: liveblog,reference,socketio (default all; "
                             "socketio rows in fanout, burst, storm and idle only)")
    parser.add_argument("--burst-readers", type=int, default=1000,
                        help="readers in the burst (1000)")
    parser.add_argument("--burst-posts", type=int, default=50, help="posts in the burst (50)")
    parser.add_argument("--burst-seconds", type=float, default=1.0,
                        help="the burst's posts are spread over this many seconds (1)")
    parser.add_argument("--storm-readers", type=int, default=1000,
                        help="readers that drop and reconnect at once (1000)")
    parser.add_argument("--storm-missed", type=int, default=20,
                        help="events each storm reader reconnects behind (20)")
    parser.add_argument("--storm-concurrency", type=int, default=0,
                        help="storm reconnects in flight per load generator process "
                             "(default 0: all at once)")
    parser.add_argument("--idle-readers", type=_int_list, default=[1000, 5000, 10_000],
                        help="idle reader counts, comma-separated (1000,5000,10000)")
    parser.add_argument("--idle-settle", type=float, default=3.0,
                        help="seconds between all idle readers live and the settled RSS (3)")
    parser.add_argument("--replay-events", type=int, default=10_000,
                        help="events in the replayed blog (10000)")
    parser.add_argument("--replay-runs", type=int, default=3, help="replays per server (3)")
    parser.add_argument("--stack-daphnes", type=_int_list, default=[2],
                        help="stack: daphne processes sharing Redis and the database, "
                             "comma-separated (2)")
    parser.add_argument("--stack-readers", type=_int_list, default=[1000],
                        help="stack: readers in all, split evenly over the processes (1000)")
    parser.add_argument("--stack-layers", type=_choices(LAYERS), default=list(LAYERS),
                        help="stack: channels-redis layers, comma-separated (pubsub,lists)")
    parser.add_argument("--stack-runs", type=int, default=1,
                        help="stack: runs of each layer, interleaved; the row gives medians (1)")
    parser.add_argument("--stack-idle", type=float, default=15.0,
                        help="stack: seconds of the idle Redis measurement (15: one heartbeat "
                             "per process)")
    parser.add_argument("--stack-per-process", type=_int_list, default=[],
                        help="stack: also rows of this many readers per process, "
                             "comma-separated (the p99 curve: 500,1000,2000,4000)")
    parser.add_argument("--stack-idle-readers", type=_int_list, default=[],
                        help="stack: idle readers through nginx, comma-separated (20000): "
                             "memory per connection in daphne and nginx")
    parser.add_argument("--abuse-readers", type=int, default=200,
                        help="abuse: well-behaved readers beside the flood (200)")
    parser.add_argument("--abuse-resyncs", type=int, default=10_000,
                        help="abuse: resyncs (since=0) the never-reading client sends (10000)")
    parser.add_argument("--abuse-junk", type=int, default=10_000,
                        help="abuse: junk frames it sends, interleaved with the resyncs (10000)")
    parser.add_argument("--push-subscriptions", type=int, default=1000,
                        help="push: subscriptions a key event is pushed to (1000)")
    parser.add_argument("--push-runs", type=int, default=3,
                        help="push: measured key events (3)")
    parser.add_argument("--page-posts", type=int, default=30,
                        help="page: posts on the reader page, every third a photo (30)")
    parser.add_argument("--page-runs", type=int, default=3,
                        help="page: cold and warm starts measured; medians and spread (3)")
    parser.add_argument("--frame-bytes", type=int, default=800,
                        help="reference payload size when no Liveblog row measured one (800)")
    parser.add_argument("--drain-timeout", type=float, default=15.0,
                        help="seconds to wait for the last frames after the last post (15)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                        help="JSON results (default bench/results/latest.json)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record every Liveblog daphne with py-spy into DIR/<scenario>-<port>"
                             ".raw and print its costs by category (bench/profile.py); it slows"
                             " the server: profile and measure in separate runs")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (sites, server logs, raw loadgen results)")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `with`, which stops the servers


def config_from(args: argparse.Namespace, work: Path) -> Config:
    return Config(
        readers=args.readers, posts=args.posts, interval=args.interval, procs=args.procs,
        servers=args.servers, replay_events=args.replay_events, replay_runs=args.replay_runs,
        frame_bytes=args.frame_bytes, drain_timeout=args.drain_timeout, work=work,
        burst_readers=args.burst_readers, burst_posts=args.burst_posts,
        burst_seconds=args.burst_seconds, storm_readers=args.storm_readers,
        storm_missed=args.storm_missed, storm_concurrency=args.storm_concurrency,
        idle_readers=args.idle_readers,
        idle_settle=args.idle_settle, stack_daphnes=args.stack_daphnes,
        stack_readers=args.stack_readers, stack_layers=args.stack_layers,
        stack_runs=args.stack_runs, stack_idle=args.stack_idle,
        stack_per_process=args.stack_per_process, stack_idle_readers=args.stack_idle_readers,
        abuse_readers=args.abuse_readers, abuse_resyncs=args.abuse_resyncs,
        abuse_junk=args.abuse_junk, push_subscriptions=args.push_subscriptions,
        push_runs=args.push_runs, sse_readers=args.sse_readers or args.readers[:1],
        page_posts=args.page_posts, page_runs=args.page_runs,
    )


def _liveblog_frame_bytes(rows: list[dict[str, Any]]) -> int | None:
    """The event frame size the Liveblog fan-out rows measured (the reference's payload)."""
    sizes = [row["frame_bytes"] for row in rows if row["server"] == "liveblog"
             and row.get("frame_bytes")]
    return sizes[-1] if sizes else None


def _scenarios(config: Config, chosen: list[str], rows: list[dict[str, Any]],
               seeding: dict[str, Any]) -> Iterator[tuple[str, Callable[[], list[dict]]]]:
    """(name, run) of each chosen scenario, in the order of SCENARIOS. The burst runs after
    fan-out, whose Liveblog frame size becomes the references' payload."""
    def replay_rows() -> list[dict[str, Any]]:
        replay_rows, stats = replay(config, _progress)
        seeding.update(stats)
        return replay_rows

    table: dict[str, Callable[[], list[dict]]] = {
        "fanout": lambda: fanout(config, _progress),
        "fanout-sse": lambda: fanout_sse(config, _progress),
        "burst": lambda: burst(config, _progress, _liveblog_frame_bytes(rows)),
        "storm": lambda: storm(config, _progress, _liveblog_frame_bytes(rows)),
        "idle": lambda: idle(config, _progress),
        "replay": replay_rows,
        "stack": lambda: stack(config, _progress),
        "abuse": lambda: abuse(config, _progress),
        "push": lambda: push(config, _progress),
        "page": lambda: page(config, _progress),
    }
    return ((name, table[name]) for name in SCENARIOS if name in chosen)


def _stamped(row: dict[str, Any], code: str, load: tuple[float, ...]) -> dict[str, Any]:
    """The row with the load average before its scenario and, for Liveblog, the server code's
    hash (before → after, if it changed on disk while the scenario ran)."""
    row = {**row, "load_average_before": load}
    if row["server"] not in ("reference", "socketio"):
        now = server_code()
        row["server_code"] = code if now == code else f"{code}→{now}"
    return row


def run(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], dict | None, bool]:
    """The scenarios' rows (a failed scenario gives one row saying why, and the others still
    run), the replay seeding stats, and whether every scenario ran."""
    config = config_from(args, work)
    rows: list[dict[str, Any]] = []
    seeding: dict[str, Any] = {}
    try:
        for name, scenario in _scenarios(config, args.scenarios, rows, seeding):
            os.environ[PROFILE_ROW] = name
            code, load = server_code(), os.getloadavg()
            try:
                new_rows = scenario()
            except Exception as error:  # noqa: BLE001 - one broken scenario, not the whole run
                _progress(f"{name} failed: {type(error).__name__}: {error}")
                new_rows = [failed_row(name, error)]
            rows += [_stamped(row, code, load) for row in new_rows]
    except KeyboardInterrupt:
        _progress("interrupted: servers stopped; partial results below, no JSON written")
        return rows, seeding or None, False
    return rows, seeding or None, True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "socketio" in args.servers and (missing := socketio_missing()):
        _progress(f"{missing}; or leave Socket.IO out: --servers liveblog,reference")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    raise_nofile_limit()  # inherited by the servers and the load generators
    info = machine()
    _progress(f"{info['cpu_count']} × {info['cpu_model']}, Python {info['python']}")
    started = time.monotonic()
    if args.profile:
        os.environ[PROFILE_DIRECTORY] = str(args.profile.resolve())
    work = Path(tempfile.mkdtemp(prefix="liveblog-bench-"))
    try:
        rows, seeding, complete = run(args, work)
    finally:
        if args.keep:
            _progress(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(format_table(rows))
    if compared := format_comparisons(rows):
        print("\nLiveblog against the references of this run (Liveblog ÷ reference):\n"
              + compared + "\n")
    if stack_table := format_stack_table(rows):
        print("\nRedis layers (stack; medians over the runs):\n" + stack_table)
    if stack_curve := format_stack_curve(rows):
        print("\np99 against readers per process (stack, through nginx):\n" + stack_curve)
    if abuse_table := format_abuse_table(rows):
        print("\nabuse: the same readers and posts without and with the flood:\n" + abuse_table)
    print("\n".join(notes(rows, seeding)))
    if args.profile:
        for recording in sorted(args.profile.glob("*.raw")):
            print("\n" + profile.summary(recording))
    if not complete:
        return 130
    elapsed = round(time.monotonic() - started, 1)
    write_json(args.out, {"machine": info, "options": _options(args), "elapsed_s": elapsed,
                          "rows": rows, "comparisons": comparisons(rows),
                          "replay_seeding": seeding})
    print(f"\n{elapsed} s; results in {args.out}")
    return 1 if any(row.get("failed") for row in rows) else 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()}


if __name__ == "__main__":
    sys.exit(main())
