"""The outgoing side of one Server-Sent Events response: the same calls as a websocket's wire
(wire.py), so a reader's `Delivery` does not know which transport it feeds.

Each frame is one SSE message, `data: <the websocket frame's JSON>` (the JSON is compact: a
newline inside a string is escaped, so one `data:` line always holds it). A frame with a position
(a live or replayed event, a snapshot) gets `id: <epoch>:<seq>` first, which a browser's
EventSource sends back as `Last-Event-ID` when it reconnects. A live event's message bytes are
made once per process (`Frame.streamed`) and the same bytes go to every reader.

There is no closing handshake: `close` ends the response (after what was written), `abandon`
drops the connection at once (a reader too far behind: what it has not taken is freed now, and it
comes back with its position).

Two implementations, as for websockets:

`DaphneStreamWire`, under daphne: a message is written into the HTTP response synchronously,
through daphne's own protocol method (`WebRequest.handle_reply`, which its ASGI `send` calls after
a type check), so a fan-out costs no coroutine per reader. The backlog is Twisted's write buffer,
as for the websocket fast path; `stream_wire_for` probes the attributes once per kind of
connection and falls back when any is missing.

`QueuedStreamWire`, anywhere else (another ASGI server, tests): messages go through ASGI `send`
from a queue bounded in bytes, drained by a task of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from .feed import Frame

logger = logging.getLogger(__name__)

# A comment line: ignored by clients, enough for a proxy to see the response is alive.
KEEP_ALIVE = b": keep-alive\n\n"

# What the daphne path uses: daphne's request (a twisted.web Request) and its TCP transport.
_REQUEST_API = ("handle_reply", "finished", "channel")
_TRANSPORT_INTERNALS = ("dataBuffer", "offset", "_tempDataLen", "abortConnection")
_probed: dict[tuple[type, type], bool] = {}


def message(text: str, event_id: str | None = None) -> bytes:
    """One SSE message holding one frame."""
    data = b"data: " + text.encode() + b"\n\n"
    return b"id: " + event_id.encode() + b"\n" + data if event_id else data


def frame_message(frame: Frame) -> bytes:
    return message(frame.text, f"{frame.epoch}:{frame.seq}")


def preamble(*, retry_ms: int, comment: str) -> bytes:
    """The stream's first bytes: how long a plain EventSource waits before it reconnects, and a
    comment (so that headers and a first chunk go through a buffering proxy at once)."""
    return f"retry: {retry_ms}\n: {comment}\n\n".encode()


def _encoded(frame: str | Frame) -> bytes:
    return frame.streamed(frame_message) if isinstance(frame, Frame) else message(frame)


# --- Under daphne -------------------------------------------------------------------------------


def daphne_request(send: Callable) -> Any | None:
    """daphne's request behind an HTTP connection's ASGI send (`partial(server.handle_reply,
    request)`), when it and its transport have what the direct path touches; else None."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    if getattr(send.func, "__name__", None) != "handle_reply":
        return None
    request = send.args[0]
    if not all(hasattr(request, name) for name in _REQUEST_API):
        return None
    transport = getattr(request.channel, "transport", None)
    kind = (type(request), type(transport))
    if kind not in _probed:
        missing = [name for name in _TRANSPORT_INTERNALS if not hasattr(transport, name)]
        if missing:
            logger.warning("event stream fast path off: %s lacks %s; sending through ASGI",
                           kind[1].__name__, ", ".join(missing))
        _probed[kind] = not missing
    return request if _probed[kind] else None


class DaphneStreamWire:
    def __init__(self, request: Any, *, max_backlog_bytes: int,
                 on_end: Callable[[], None]) -> None:
        self._request = request
        self._transport = request.channel.transport
        self._max_backlog_bytes = max_backlog_bytes
        self._on_end = on_end
        self._ended = False

    def send(self, frame: str | Frame) -> bool:
        if self._ended or self._request.finished or self._request.channel is None:
            return False
        if self.backlog() > self._max_backlog_bytes:
            return False
        self._write(_encoded(frame))
        return True

    def keep_alive(self) -> None:
        if not self._ended and self.backlog() <= self._max_backlog_bytes:
            self._write(KEEP_ALIVE)

    def backlog(self) -> int:
        transport = self._transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def close(self, code: int) -> None:
        if not self._ended:
            self._request.handle_reply({"type": "http.response.body", "body": b"",
                                        "more_body": False})
            self._end()

    def abandon(self, code: int) -> None:
        if not self._ended:
            self._transport.abortConnection()
            self._end()

    shut = abandon

    def pace_input(self) -> None:
        """A stream's client sends nothing after its request."""

    def _write(self, data: bytes) -> None:
        self._request.handle_reply({"type": "http.response.body", "body": data,
                                    "more_body": True})

    def _end(self) -> None:
        self._ended = True
        self._on_end()


# --- Anywhere else ------------------------------------------------------------------------------


class QueuedStreamWire:
    def __init__(self, send: Callable[[dict], Awaitable[None]], *, max_backlog_bytes: int,
                 on_end: Callable[[], None]) -> None:
        self._send = send
        self._max_backlog_bytes = max_backlog_bytes
        self._on_end = on_end
        self._queue: deque[bytes | None] = deque()  # None: the end of the response
        self._queued_bytes = 0
        self._writer: asyncio.Task | None = None
        self._ended = False

    def send(self, frame: str | Frame) -> bool:
        if self._ended or self._queued_bytes > self._max_backlog_bytes:
            return False
        self._put(_encoded(frame))
        return True

    def keep_alive(self) -> None:
        if not self._ended and self._queued_bytes <= self._max_backlog_bytes:
            self._put(KEEP_ALIVE)

    def backlog(self) -> int:
        return self._queued_bytes

    def close(self, code: int) -> None:
        if not self._ended:
            self._ended = True
            self._put(None)

    def abandon(self, code: int) -> None:
        if not self._ended:
            self._queue.clear()
            self._queued_bytes = 0
            self._ended = True
            self._on_end()

    shut = abandon

    def pace_input(self) -> None:
        """A stream's client sends nothing after its request."""

    def _put(self, data: bytes | None) -> None:
        self._queue.append(data)
        self._queued_bytes += len(data or b"")
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            data = self._queue.popleft()
            self._queued_bytes -= len(data or b"")
            try:
                await self._send({"type": "http.response.body", "body": data or b"",
                                  "more_body": data is not None})
            except Exception:  # noqa: BLE001 - a connection that went away
                logger.debug("dropping messages for a closed stream", exc_info=True)
                self._queue.clear()
                self._queued_bytes = 0
                data = None
            if data is None:
                self._ended = True
                self._on_end()
                return


def stream_wire_for(send: Callable[[dict], Awaitable[None]], *,
                    on_end: Callable[[], None]) -> DaphneStreamWire | QueuedStreamWire:
    """The outgoing side of a started event-stream response whose ASGI send is `send`;
    `on_end()` is called once the response is over (ended, or the connection dropped)."""
    max_backlog = settings.LIVEBLOG_MAX_BACKLOG_BYTES
    request = daphne_request(send)
    if request is not None and settings.LIVEBLOG_DIRECT_WIRE:
        return DaphneStreamWire(request, max_backlog_bytes=max_backlog, on_end=on_end)
    return QueuedStreamWire(send, max_backlog_bytes=max_backlog, on_end=on_end)
