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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .loadgen import raise_nofile_limit
from .report import format_table, machine, notes, write_json
from .scenarios import Config, fanout, replay

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("fanout", "replay")
SERVERS = ("liveblog", "reference")


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
    parser.add_argument("--posts", type=int, default=20, help="posts per fan-out row (20)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between posts (1)")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (2)")
    parser.add_argument("--scenarios", type=_choices(SCENARIOS), default=list(SCENARIOS),
                        help="comma-separated: fanout,replay (default both)")
    parser.add_argument("--servers", type=_choices(SERVERS), default=list(SERVERS),
                        help="comma-separated: liveblog,reference (default both)")
    parser.add_argument("--replay-events", type=int, default=10_000,
                        help="events in the replayed blog (10000)")
    parser.add_argument("--replay-runs", type=int, default=3, help="replays per server (3)")
    parser.add_argument("--frame-bytes", type=int, default=800,
                        help="reference payload size when no Liveblog row measured one (800)")
    parser.add_argument("--drain-timeout", type=float, default=15.0,
                        help="seconds to wait for the last frames after the last post (15)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                        help="JSON results (default bench/results/latest.json)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (sites, server logs, raw loadgen results)")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `with`, which stops the servers


def run(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], dict | None, bool]:
    """The scenarios' rows, the replay seeding stats, and whether every scenario ran."""
    config = Config(
        readers=args.readers, posts=args.posts, interval=args.interval, procs=args.procs,
        servers=args.servers, replay_events=args.replay_events, replay_runs=args.replay_runs,
        frame_bytes=args.frame_bytes, drain_timeout=args.drain_timeout, work=work,
    )
    rows: list[dict[str, Any]] = []
    seeding = None
    try:
        if "fanout" in args.scenarios:
            rows += fanout(config, _progress)
        if "replay" in args.scenarios:
            replay_rows, seeding = replay(config, _progress)
            rows += replay_rows
    except KeyboardInterrupt:
        _progress("interrupted: servers stopped; partial results below, no JSON written")
        return rows, seeding, False
    return rows, seeding, True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    raise_nofile_limit()  # inherited by the servers and the load generators
    info = machine()
    _progress(f"{info['cpu_count']} × {info['cpu_model']}, Python {info['python']}")
    started = time.monotonic()
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
    print("\n".join(notes(rows, seeding)))
    if not complete:
        return 130
    elapsed = round(time.monotonic() - started, 1)
    write_json(args.out, {"machine": info, "options": _options(args), "elapsed_s": elapsed,
                          "rows": rows, "replay_seeding": seeding})
    print(f"\n{elapsed} s; results in {args.out}")
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()}


if __name__ == "__main__":
    sys.exit(main())
