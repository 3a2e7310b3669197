"""Autobahn formats its debug lines whether or not debug logging is on.

On every new websocket connection `WebSocketProtocol._connectionMade` pretty-prints its ~40
options (`pformat`) for a `log.debug` line, and a dozen more debug lines on the way in and out
colour their arguments (`hltype`, `hlval`: names looked up and styled with click). The logger
drops those lines, but the formatting has been done: in a reconnect storm it was more than half
of a websocket's opening CPU (py-spy, issue 20). Here those three names, in the two Autobahn
modules that call them, give values that format themselves only if a line is written.
Autobahn uses them in log calls only, but for `Timings.__str__` (off unless timings are
tracked), which keeps the real `pformat` (tests/test_lazylog.py checks the pinned version).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MODULES = ("autobahn.websocket.protocol", "autobahn.twisted.websocket")
NAMES = ("pformat", "hltype", "hlval")


class LazyText:
    """`format(*args, **kwargs)` when, and only when, it is turned into text."""

    __slots__ = ("format", "args", "kwargs")

    def __init__(self, format: Callable[..., str], *args: Any, **kwargs: Any) -> None:  # noqa: A002
        self.format, self.args, self.kwargs = format, args, kwargs

    def __str__(self) -> str:
        return self.format(*self.args, **self.kwargs)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy(function: Callable[..., str]) -> Callable[..., LazyText]:
    def deferred(*args: Any, **kwargs: Any) -> LazyText:
        return LazyText(function, *args, **kwargs)

    deferred.lazy_of = function
    return deferred


def _timings_text(timings: Any) -> str:
    from pprint import pformat

    return pformat(timings._timings)


def install() -> None:
    """Once per process, before connections are served."""
    from autobahn.websocket import protocol

    if hasattr(protocol, "Timings"):  # its text is a str, not a log argument
        protocol.Timings.__str__ = _timings_text
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in NAMES:
            current = getattr(module, name, None)
            if current is None or hasattr(current, "lazy_of"):
                continue  # not used there (an upgrade?), or done already
            setattr(module, name, lazy(current))
