"""Autobahn pretty-prints its debug lines whether or not debug logging is on.

`WebSocketProtocol._connectionMade` builds a list of its ~40 options and calls `pformat` on it
for a `log.debug` line, on every new websocket connection; `startHandshake` does the same with
the transport's details. The logger drops the line, but the formatting has been done: in a
reconnect storm it was more than half of the opening handshake's CPU (py-spy, issue 20). Here
`pformat` in Autobahn's protocol module gives a value that formats itself only if the line is
written.
"""

from __future__ import annotations

import logging
from pprint import pformat
from typing import Any

logger = logging.getLogger(__name__)


class LazyFormat:
    """`pformat(value)` when, and only when, it is turned into text."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return pformat(self.value)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def install() -> None:
    """Once per process, before connections are served."""
    from autobahn.websocket import protocol

    if getattr(protocol, "pformat", None) is not pformat:  # an upgrade moved it: nothing to do
        logger.info("autobahn's protocol module has no pformat; its debug lines stay as they are")
        return
    protocol.pformat = LazyFormat
