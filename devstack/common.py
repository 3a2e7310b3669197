"""What every fixture shares: where the checkout and its virtualenv are, free loopback ports and
waiting for a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], object], *, timeout: float, interval: float = 0.05,
               message: str = "") -> None:
    """Poll `condition` until it returns true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)
