"""Numbers in, words out: percentiles, the machine, the table and the JSON file."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGES = ("Django", "channels", "daphne", "Twisted", "autobahn", "websockets")


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
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    lines = [["scenario", "server", "readers", "p50 ms", "p99 ms", "max ms", "lost / time"]]
    for row in rows:
        latency = row["latency_ms"]
        if row["scenario"] == "fan-out":
            last = f"{row['lost']} / {row['expected']}"
        else:
            last = (f"{row['lost']} lost, {row['seconds']:.2f} s, "
                    f"{row['events_per_second']:,.0f} ev/s")
        lines.append([row["scenario"], row["server"], str(row["readers"]), _ms(latency["p50"]),
                      _ms(latency["p99"]), _ms(latency["max"]), last])
    return lines


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = table_rows(rows)
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    text = []
    for number, line in enumerate(lines):
        cells = [cell.ljust(width) if column < 2 else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(line, widths, strict=True))]
        text.append("  ".join(cells).rstrip())
        if number == 0:
            text.append("  ".join("-" * width for width in widths))
    return "\n".join(text)


def notes(rows: list[dict[str, Any]], seeding: dict[str, Any] | None) -> list[str]:
    """One line per row on how it went (connects, errors, the server's log), and the seeding."""
    lines = []
    for row in rows:
        name = f"{row['scenario']} {row['server']} {row['readers']}"
        parts = []
        if connect := row.get("connect"):
            parts.append(f"{connect['live']}/{row['readers']} live in {connect['wall_s']:.1f} s "
                         f"(connect→live p50 {_ms(connect['live_ms']['p50'])} ms, "
                         f"max {_ms(connect['live_ms']['max'])} ms)")
        if row.get("post_call_ms", {}).get("p50") is not None:
            parts.append(f"publish call p50 {row['post_call_ms']['p50']:.1f} ms")
        for key in ("failed_attempts", "duplicates", "out_of_order", "unexpected"):
            if row.get(key):
                parts.append(f"{key.replace('_', ' ')} {row[key]}")
        if row.get("errors"):
            parts.append(f"errors {row['errors']}")
        if row.get("closed_early"):
            parts.append(f"closed early {row['closed_early']}")
        if gc := row.get("server_gc"):
            parts.append(f"server full GCs {gc['full_collections']}, "
                         f"{gc['posts_hit']} during a delivery"
                         + (f" (longest {gc['longest_hit_ms']:.0f} ms)" if gc["posts_hit"] else ""))
        log = row.get("server_log", {})
        parts.append(f"server log: {log.get('issues', 0)} warning/error line(s)")
        lines.append(f"  {name}: " + "; ".join(parts))
        lines += [f"      | {line}" for line in log.get("sample", [])[:3]]
    if seeding:
        lines.append(
            f"  replay log: {seeding['events']} events by post_create in {seeding['seconds']} s; "
            f"one create takes {seeding['create_ms_empty_log']} ms on an empty log, "
            f"{seeding['create_ms_full_log']} ms on a full one"
        )
    return lines


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
