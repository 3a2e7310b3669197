"""Numbers the scale-out proofs measure, merged into var/scale-out.json (quoted in the README)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from devstack.common import REPO

SCALE_OUT = REPO / "var" / "scale-out.json"


def record(numbers: dict[str, float], *, results: Path = SCALE_OUT) -> None:
    """Merge `numbers` into `results`, keeping what other tests wrote there, in one flat
    "what (unit)": value style. A lock file serialises concurrent runs; the rename means a
    reader never sees half a file."""
    results.parent.mkdir(exist_ok=True)
    with open(results.with_name(results.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            existing = json.loads(results.read_text()) if results.exists() else {}
        except json.JSONDecodeError:
            existing = {}
        if not isinstance(existing, dict):
            existing = {}
        partial = results.with_name(f"{results.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({**existing, **numbers}, indent=2) + "\n")
        os.replace(partial, results)
