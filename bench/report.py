"""Numbers in, words out: percentiles, the machine, the table and the JSON file."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGES = ("Django", "channels", "channels-redis", "redis", "daphne", "Twisted", "autobahn",
            "websockets")
REPO = Path(__file__).resolve().parents[1]
SERVER_CODE = ("liveblog", "project")  # what a fresh daphne process loads of ours


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for no values)."""
    if not sorted_values:
        return None
    rank = math.ceil(round(fraction * len(sorted_values), 6))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def summary(values: Sequence[float], *, digits: int = 2) -> dict[str, float | int | None]:
    """count, p50, p99, max and mean of `values`."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p99": None, "max": None, "mean": None}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50), digits),
        "p99": round(percentile(ordered, 0.99), digits),
        "max": round(ordered[-1], digits),
        "mean": round(sum(ordered) / len(ordered), digits),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def server_code() -> str:
    """A short hash of the server's code as it is on disk now (every row starts a fresh server
    process, so a change during a run shows up as rows with different hashes)."""
    digest = hashlib.sha256()
    for top in SERVER_CODE:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git_state() -> dict[str, str]:
    """The commit checked out and whether the server's code differs from it."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    changed = git("status", "--porcelain", "--", *SERVER_CODE)
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "server_code_uncommitted": "yes" if changed else "no"}


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "packages": {package: _version(package) for package in PACKAGES},
        "git": git_state(),
        "server_code": server_code(),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def failed_row(scenario: str, error: BaseException) -> dict[str, Any]:
    """The row of a scenario that could not run to its end."""
    return {"scenario": scenario, "server": "-", "readers": None, "failed": True,
            "error": f"{type(error).__name__}: {error}"[:2000],
            "latency_ms": {"p50": None, "p99": None, "max": None}}


def _fanout_result(row: dict[str, Any]) -> str:
    return f"{row['lost']} / {row['expected']} lost"


def _burst_result(row: dict[str, Any]) -> str:
    return (f"{row['lost']} / {row['expected']} lost; last reader has #{row['posts']} "
            f"after {_seconds(row['all_have_last_s'])}")


def _storm_result(row: dict[str, Any]) -> str:
    events = row["expected_catch_up"]
    exact = ("exactly " + events if events != "none" else "no replay") + " then live"
    return f"{row['lost']} lost; all live after {_seconds(row['total_s'])}; {exact}"


def _idle_result(row: dict[str, Any]) -> str:
    rss, per = row["rss_kb"], row["kb_per_connection"]
    capped = " (capped)" if row["capped"] else ""
    return (f"{row['held']} held{capped}; RSS {rss['before'] / 1024:.0f} → "
            f"{rss['settled'] / 1024:.0f} MB, {'-' if per is None else f'{per:.1f}'} KB/conn")


def _replay_result(row: dict[str, Any]) -> str:
    return (f"{row['lost']} lost, {row['seconds']:.2f} s, "
            f"{row['events_per_second']:,.0f} ev/s")


def _stack_result(row: dict[str, Any]) -> str:
    per, idle = row["redis_per_event"], row["redis_idle_per_second"]
    runs = f"median of {row['runs']}" if row["runs"] > 1 else "1 run"
    return (f"{row['lost']} / {row['expected']} lost; Redis {per['commands']:.1f} cmds, "
            f"{per['command_us']:.0f} µs in commands per event; idle {idle['commands']:.2f} "
            f"cmds/s ({runs})")


def _flood_text(flood: dict[str, Any]) -> str:
    early = (f"; the flood ended {-flood['after_last_post_s']:.1f} s before the last post"
             if flood["ended_before_last_post"] else "")
    return (f"{flood['frames_written']} flood frames, {flood['sockets']} sockets, "
            f"{flood['seconds']:.1f} s{early}")


def _abuse_result(row: dict[str, Any]) -> str:
    quiet = row["runs"]["quiet"]
    return (f"{row['lost']} / {row['expected']} lost (quiet {quiet['lost']}); RSS "
            f"{row['memory_kib']['growth_mib']:+.1f} MiB (peak {row['peak_over_quiet_mib']:+.1f} "
            f"vs quiet); {_flood_text(row['flood'])}")


def _push_result(row: dict[str, Any]) -> str:
    runs = len(row["runs"])
    return (f"{row['lost']} / {row['expected']} lost; last subscription's push "
            f"{row['last_ms_median']:.0f} ms after the commit, author's create "
            f"{row['create_ms_median']:.0f} ms (medians of {runs} key events)")


def _page_result(row: dict[str, Any]) -> str:
    posts, fcp, shell = row["posts_ms"], row["fcp_ms"], row["shell"]
    met = "met" if posts["max"] is not None and posts["max"] <= row["target_ms"] else "MISSED"
    text = (f"{row['start']}: first posts {_ms(posts['median'])} ms ({_ms(posts['min'])}–"
            f"{_ms(posts['max'])}), FCP {_ms(fcp['median'])} ms, median of {len(row['runs'])}; "
            f"target ≤ {row['target_ms']} ms {met}")
    if row["start"] == "cold":
        fits = "met" if shell["served"] < row["shell_budget_bytes"] else "MISSED"
        brotli = (f"br {shell['br'] / 1024:.1f}" if shell["br"] < shell["identity"]
                  else "no br copies")
        text += (f"; shell {shell['served'] / 1024:.1f} KB as served (gzip "
                 f"{shell['gzip'] / 1024:.1f}, {brotli}, raw {shell['identity'] / 1024:.1f}), "
                 f"budget < 100 KB {fits}")
    return text


RESULTS = {"fan-out": _fanout_result, "fan-out sse": _fanout_result, "burst": _burst_result,
           "storm": _storm_result, "idle": _idle_result, "replay": _replay_result,
           "stack": _stack_result, "abuse": _abuse_result, "push": _push_result,
           "page": _page_result}


def _queries(row: dict[str, Any]) -> str:
    queries = row.get("queries")
    if not queries:
        return "-"
    count = queries["queries"]
    return f"{count:g}" if isinstance(count, float) else str(count)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    lines = [["scenario", "server", "readers", "p50 ms", "p99 ms", "max ms", "queries", "result"]]
    for row in rows:
        latency = row["latency_ms"]
        result = (f"FAILED: {row['error'][:80]}" if row.get("failed")
                  else RESULTS[row["scenario"]](row))
        lines.append([row["scenario"], row["server"], str(row["readers"] or "-"),
                      _ms(latency["p50"]), _ms(latency["p99"]), _ms(latency["max"]),
                      _queries(row), result])
    return lines


def format_table(rows: list[dict[str, Any]]) -> str:
    return _aligned(table_rows(rows), left=2)


def _aligned(lines: list[list[str]], *, left: int) -> str:
    """Columns padded to their widest cell: the first `left` and the last to the left, the
    others (numbers) to the right; a rule under the header."""
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    text = []
    for number, line in enumerate(lines):
        cells = [cell.ljust(width) if column < left or column == len(line) - 1
                 else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(line, widths, strict=True))]
        text.append("  ".join(cells).rstrip())
        if number == 0:
            text.append("  ".join("-" * width for width in widths))
    return "\n".join(text)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_stack_table(rows: list[dict[str, Any]]) -> str:
    """The stack rows side by side: latency, losses, Redis's work per event and when idle."""
    stack = [row for row in rows if row["scenario"] == "stack" and not row.get("failed")]
    if not stack:
        return ""
    lines = [["layer", "daphnes", "readers", "runs", "p50 ms", "p99 ms", "max ms", "lost",
              "Redis cmds/event", "cmd µs/event", "CPU µs/event", "idle cmds/s",
              "idle CPU ms/s", "daphne CPU ms/event"]]
    for row in stack:
        latency, per = row["latency_ms"], row["redis_per_event"]
        idle = row["redis_idle_per_second"]
        lines.append([row["layer"], str(row["daphnes"]), str(row["readers"]), str(row["runs"]),
                      _ms(latency["p50"]), _ms(latency["p99"]), _ms(latency["max"]),
                      f"{row['lost']}/{row['expected']}", _number(per["commands"]),
                      _number(per["command_us"], 0), _number(per["cpu_us_above_idle"], 0),
                      _number(idle["commands"], 2), _number(idle["cpu_ms"], 2),
                      _number(row["daphne_cpu_ms_per_event"])])
    lines[0].append("")  # the last column is left-aligned: give it an empty one
    for line in lines[1:]:
        line.append("")
    return _aligned(lines, left=1)


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def format_abuse_table(rows: list[dict[str, Any]]) -> str:
    """The abuse rows' quiet and flood runs side by side: latency, losses, daphne's memory."""
    abuse = [row for row in rows if row["scenario"] == "abuse" and not row.get("failed")]
    if not abuse:
        return ""
    lines = [["run", "readers", "posts", "p50 ms", "p99 ms", "max ms", "lost", "dup",
              "order", "RSS MiB", "peak MiB", "growth MiB", "flood"]]
    for row in abuse:
        for name, run in row["runs"].items():
            latency, memory = run["latency_ms"], run["memory_kib"]
            lines.append([name, str(run["readers"]), str(run["posts"]), _ms(latency["p50"]),
                          _ms(latency["p99"]), _ms(latency["max"]),
                          f"{run['lost']}/{run['expected']}", str(run["duplicates"]),
                          str(run["out_of_order"]), _mib(memory["before"]),
                          _mib(memory["peak"]), f"{memory['growth_mib']:+.1f}",
                          _flood_text(run["flood"]) if run["flood"] else "-"])
    return _aligned(lines, left=1)


def _abuse_notes(row: dict[str, Any]) -> list[str]:
    parts = []
    for name, run in row["runs"].items():
        memory, queries = run["memory_kib"], run["queries"] or {}
        parts.append(
            f"{name}: {run['connect']['live']}/{run['readers']} live; publish call p50 "
            f"{_ms(run['post_call_ms']['p50'])} ms, max {_ms(run['post_call_ms']['max'])} ms; "
            f"full GCs {run['server_gc']['full_collections']} "
            f"({run['server_gc']['posts_hit']} during a delivery); "
            f"{queries.get('queries', '-')} queries; VmRSS {memory['cold']:,} KiB before the "
            f"warm-up, {memory['before']:,} at the first post, peak {memory['peak']:,} "
            f"(since {memory['peak_since']}), {memory['after']:,} after; "
            f"log {run['server_log']['issues']} warning/error line(s)")
        parts += [f"{name}: {problem}" for problem in _problem_notes(run)]
    if refused := row["flood"]["refused"]:
        parts.append(f"flood connects refused: {refused}")
    return parts


def _commands(counts: dict[str, float]) -> str:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {count:g}" for name, count in ordered if count) or "none"


def _stack_notes(row: dict[str, Any]) -> list[str]:
    runs = row["runs_detail"]
    per, idle = row["redis_per_event"], row["redis_idle_per_second"]

    def spread(pick: Any, digits: int = 1) -> str:
        return " / ".join(_number(pick(run), digits) for run in runs)

    def event(run: dict[str, Any], key: str) -> float:
        return run["redis"]["per_event"][key]

    parts = [f"{row['runs']} run(s), each {row['posts']} posts alternately through "
             f"{row['daphnes']} daphne processes",
             f"p50 per run {spread(lambda run: run['latency_ms']['p50'])} ms, "
             f"p99 {spread(lambda run: run['latency_ms']['p99'])} ms, "
             f"max {spread(lambda run: run['latency_ms']['max'])} ms",
             f"Redis per event, run by run: cmds {spread(lambda run: event(run, 'commands'))}, "
             f"µs in commands {spread(lambda run: event(run, 'command_us'), 0)}, "
             f"CPU µs above idle {spread(lambda run: event(run, 'cpu_us_above_idle'), 0)} "
             f"(with the idle baseline: median {_number(per['cpu_us'], 0)})",
             f"per event: {_commands(per['by_command'])}",
             f"Redis bytes per event in {_number(per['net_in_bytes'], 0)}, "
             f"out {_number(per['net_out_bytes'], 0)}",
             f"daphne CPU ms/event per run "
             f"{spread(lambda run: run['daphne_cpu_ms_per_event'])}",
             f"idle per second: {_commands(idle['by_command'])}",
             f"publish call p50 {_ms(row['post_call_ms']['p50'])} ms, "
             f"max {_ms(row['post_call_ms']['max'])} ms"]
    for key in ("unexpected", "duplicates", "out_of_order", "failed_attempts"):
        if row.get(key):
            parts.append(f"{key.replace('_', ' ')} {row[key]}")
    if row["errors"]:
        parts.append(f"reader errors {row['errors']}")
    if row["closed_early"]:
        parts.append(f"closed early {row['closed_early']}")
    if row["failed_runs"]:
        parts.append(f"{len(row['failed_runs'])} failed run(s): {row['failed_runs'][0][:200]}")
    if row["redis_errors"]:
        parts.append(f"Redis error replies while measured {row['redis_errors']}")
    if errors := row.get("redis_errors_since_start"):
        parts.append(f"Redis error replies since its start (connects included) {errors}")
    parts.append(f"daphne logs: {row['server_log']['issues']} warning/error line(s)")
    parts.append(f"Redis log warnings: {len(row['redis_warnings'])} distinct")
    return parts


def _connect_note(row: dict[str, Any]) -> list[str]:
    connect = row.get("connect")
    if not connect:
        return []
    wall = "-" if connect["wall_s"] is None else f"{connect['wall_s']:.1f}"
    return [f"{connect['live']}/{row['readers']} live in {wall} s "
            f"(connect→live p50 {_ms(connect['live_ms']['p50'])} ms, "
            f"max {_ms(connect['live_ms']['max'])} ms)"]


def _delivery_notes(row: dict[str, Any]) -> list[str]:
    parts = []
    if row["scenario"] == "burst":
        parts.append(f"the {row['posts']} create calls started over {row['calls_spread_s']:.2f} s"
                     + ("" if row["all_have_last_s"] is not None else
                        f", only {row['last_post_readers']} readers got the last post"))
    if row.get("post_call_ms", {}).get("p50") is not None:
        parts.append(f"publish call p50 {row['post_call_ms']['p50']:.1f} ms, "
                     f"max {row['post_call_ms']['max']:.1f} ms")
    if gc := row.get("server_gc"):
        if "posts_hit" in gc:
            parts.append(f"server full GCs {gc['full_collections']}, "
                         f"{gc['posts_hit']} during a delivery"
                         + (f" (longest {gc['longest_hit_ms']:.0f} ms)" if gc["posts_hit"] else ""))
        else:
            parts.append(f"server full GCs during it {gc['full_collections']} ({gc['ms']:.0f} ms)")
    return parts


def _storm_notes(row: dict[str, Any]) -> list[str]:
    if row["scenario"] != "storm":
        return []
    wrong = {run: count for run, count in row["catch_up"].items()
             if run != row["expected_catch_up"]}
    expected = row["expected_catch_up"]
    events = "no events" if expected == "none" else f"exactly {expected}"
    pace = (f"{row['concurrency']} in flight per load generator" if row["concurrency"]
            else "all at once")
    return [f"reconnects {pace}",
            f"{row['live']}/{row['readers']} live again, {row['exact']} with {events} before live"
            + (f", others {wrong}" if wrong else ""),
            f"connect→live p50 {_ms(row['connect_to_live_ms']['p50'])} ms, "
            f"max {_ms(row['connect_to_live_ms']['max'])} ms"]


def _idle_notes(row: dict[str, Any]) -> list[str]:
    if row["scenario"] != "idle":
        return []
    rss, fds = row["rss_kb"], row["server_fds"]
    parts = [f"VmRSS {rss['before']:,} KB before, {rss['live']:,} KB when all were live, "
             f"{rss['settled']:,} KB {row['settle_s']:g} s later",
             f"server fds {fds['before']} → {fds['live']}",
             f"{row['procs']} load generator processes"]
    if row["capped"]:
        parts.append(row["capped"])
    return parts


def _query_notes(row: dict[str, Any]) -> list[str]:
    queries = row.get("queries")
    if not queries:
        return []
    per = queries.get("per")
    count = queries["queries"]
    text = f"{count:g} database queries" + (f" per {per}" if per else "")
    if row["scenario"] in ("fan-out", "fan-out sse", "burst") and row.get("posts"):
        text += f" ({count / row['posts']:.1f} per post)"
    if row["scenario"] in ("idle", "storm") and row.get("live"):
        text += f" ({count / row['live']:.2f} per reader)"
    return [text + f", {queries['connections_opened']:g} connections opened"]


def _problem_notes(row: dict[str, Any]) -> list[str]:
    parts = []
    for key in ("failed_attempts", "duplicates", "out_of_order", "unexpected"):
        if row.get(key):
            parts.append(f"{key.replace('_', ' ')} {row[key]}")
    if row.get("errors"):
        parts.append(f"errors {row['errors']}")
    if row.get("closed_early"):
        parts.append(f"closed early {row['closed_early']}")
    if drops := {key: value for key, value in row.get("listen_drops", {}).items() if value}:
        parts.append(f"kernel listen queue {drops}")
    return parts


def _row_notes(row: dict[str, Any]) -> list[str]:
    name = f"{row['scenario']} {row['server']} {row['readers'] or ''}".rstrip()
    if row.get("failed"):
        return [f"  {name}: FAILED: {row['error']}"]
    if row["scenario"] == "stack":
        log = row["server_log"]
        return ([f"  {name}: " + "; ".join(_stack_notes(row))]
                + [f"      | {line}" for line in log["sample"][:3]]
                + [f"      | redis: {line[:150]}" for line in row["redis_warnings"][:2]])
    if row["scenario"] == "abuse":
        return ([f"  {name}: " + "; ".join(_abuse_notes(row))]
                + [f"      | {line}" for line in row["server_log"]["sample"][:3]])
    parts = [*_connect_note(row), *_storm_notes(row), *_idle_notes(row), *_delivery_notes(row),
             *_query_notes(row), *_problem_notes(row)]
    log = row.get("server_log", {})
    parts.append(f"server log: {log.get('issues', 0)} warning/error line(s)")
    lines = [f"  {name}: " + "; ".join(parts)]
    if statements := (row.get("queries") or {}).get("top_statements"):
        lines += [f"      sql {item['count']:>6g} × {item['sql'][:110]}" for item in statements[:3]]
    return lines + [f"      | {line}" for line in log.get("sample", [])[:3]]


def _code_notes(rows: list[dict[str, Any]]) -> list[str]:
    """A warning when the server's code changed on disk while the run went on."""
    codes = {row.get("server_code") for row in rows} - {None}
    if len(codes) < 2:
        return []
    return ["  the server code changed during this run: "
            + ", ".join(f"{row['scenario']} {row['server']} {row['readers']} ran {code}"
                        for row in rows if (code := row.get("server_code")))]


def notes(rows: list[dict[str, Any]], seeding: dict[str, Any] | None) -> list[str]:
    """Lines on how each row went (connects, errors, queries, the server's log), the replay's
    seeding, and a warning if the server's code changed during the run."""
    lines = [line for row in rows for line in _row_notes(row)] + _code_notes(rows)
    if seeding:
        lines.append(
            f"  replay log: {seeding['events']} events by post_create in {seeding['seconds']} s; "
            f"one create takes {seeding['create_ms_empty_log']} ms on an empty log, "
            f"{seeding['create_ms_full_log']} ms on a full one"
        )
    return lines


# What each scenario's Liveblog row is weighed by against the references of the same run (lower is
# better for every one): its unit and how to read it from a row.
MEASURES = {
    "fan-out": ("p99 ms", lambda row: row["latency_ms"]["p99"]),
    "burst": ("p99 ms", lambda row: row["latency_ms"]["p99"]),
    "storm": ("s until all live", lambda row: row.get("total_s")),
    "idle": ("KB/conn", lambda row: row.get("kb_per_connection")),
    "replay": ("s", lambda row: row.get("seconds")),
}
DIGITS = {"p99 ms": 1, "s until all live": 2, "KB/conn": 1, "s": 3}
REFERENCES = ("reference", "socketio")


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Liveblog against each reference with the same scenario and readers in this run:
    {scenario, readers, measure, liveblog, reference, socketio, and `<reference>_ratio`}
    (Liveblog's value divided by the reference's; None where a row is missing or failed)."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        if row.get("failed") or row["scenario"] not in MEASURES:
            continue
        unit, value = MEASURES[row["scenario"]]
        key = (row["scenario"], row["readers"])
        found.setdefault(key, {"scenario": row["scenario"], "readers": row["readers"],
                               "measure": unit})[row["server"]] = value(row)
    result = []
    for item in found.values():
        if item.get("liveblog") is None:
            continue
        for name in REFERENCES:
            other = item.get(name)
            item[f"{name}_ratio"] = round(item["liveblog"] / other, 2) if other else None
        if any(item.get(name) is not None for name in REFERENCES):
            result.append(item)
    return result


def format_comparisons(rows: list[dict[str, Any]]) -> str:
    """One line per scenario and reader count: Liveblog's number, each reference's, the ratios."""
    lines = []
    for item in comparisons(rows):
        digits = DIGITS[item["measure"]]
        parts = [f"liveblog {_number(item['liveblog'], digits)}"]
        for name in REFERENCES:
            if item.get(name) is not None:
                ratio = item[f"{name}_ratio"]
                parts.append(f"{name} {_number(item[name], digits)}"
                             + ("" if ratio is None else f" ({ratio:.2f}×)"))
        lines.append(f"  {item['scenario']} {item['readers']}, {item['measure']}: "
                     + ", ".join(parts))
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
