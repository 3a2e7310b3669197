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

`DaphneStreamWire`, under daphne: a message is written into the HTTP response synchronously, so a
fan-out costs no coroutine per reader: a live or replayed event as its HTTP/1.1 chunk, made once
per process and written straight to the socket when nothing waits before it (as the websocket
fast path does, wire.py `send_now`); anything else through daphne's own protocol method
(`WebRequest.handle_reply`, which its ASGI `send` calls after a type check). The backlog is
Twisted's write buffer; `stream_wire_for` probes the attributes once per kind of connection and
falls back when any is missing.

`QueuedStreamWire`, anywhere else (another ASGI server, tests, daphne with the fast path off):
the websocket's queued wire with body chunks for messages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from twisted.internet import tcp

from .feed import Frame
from .wire import QueuedWire, SocketPressure, daphne_protocol, send_now

logger = logging.getLogger(__name__)

# A comment line: ignored by clients, enough for a proxy to see the response is alive.
KEEP_ALIVE = b": keep-alive\n\n"

# What the daphne path uses: daphne's request (a twisted.web Request) and its TCP transport.
_REQUEST_API = ("handle_reply", "finished", "channel", "chunked", "startedWriting")
_TRANSPORT_INTERNALS = ("dataBuffer", "offset", "_tempDataLen", "connected", "disconnecting",
                        "abortConnection")
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


def chunked_frame_message(frame: Frame) -> bytes:
    """The message as one chunk of HTTP/1.1's chunked coding, as Twisted would write it."""
    data = frame_message(frame)
    return b"%x\r\n%s\r\n" % (len(data), data)


def _encoded(frame: str | Frame) -> bytes:
    return frame.streamed(frame_message) if isinstance(frame, Frame) else message(frame)


# --- Under daphne -------------------------------------------------------------------------------


def fast_path_works(request: Any) -> bool:
    """Whether this request's transport has what the direct path reads. Checked for the first
    request of each kind, then remembered; a miss is logged once."""
    transport = getattr(request.channel, "transport", None)
    kind = (type(request), type(transport))
    if kind not in _probed:
        missing = [name for name in _TRANSPORT_INTERNALS if not hasattr(transport, name)]
        if missing:
            logger.warning("event stream fast path off: %s lacks %s; sending through ASGI",
                           kind[1].__name__, ", ".join(missing))
        _probed[kind] = not missing
    return _probed[kind]


class DaphneStreamWire:
    def __init__(self, request: Any, *, max_backlog_bytes: int,
                 on_end: Callable[[], None]) -> None:
        self._request = request
        transport = self._transport = request.channel.transport
        # A plain TCP connection can take bytes at once (not a TLS one: its bytes are not ours).
        self._sock = transport.getHandle() if isinstance(transport, tcp.Connection) else None
        if self._sock is not None:
            # Events go out the moment they are written, as a websocket's do (Nagle's algorithm
            # would hold the second of two quick events until the first is acknowledged).
            transport.setTcpNoDelay(True)
        self._max_backlog_bytes = max_backlog_bytes
        self._on_end = on_end
        self._ended = False

    def send(self, frame: str | Frame) -> bool:
        if isinstance(frame, Frame) and self._chunked():
            return self.send_many([frame])
        if not self._has_room():
            return False
        self._write(_encoded(frame))
        return True

    def send_many(self, frames: list[Frame]) -> bool:
        if not self._chunked():
            return all([self.send(frame) for frame in frames])
        if not self._has_room():
            return False
        # An event's chunk is the same bytes for every HTTP/1.1 reader: made once, and written
        # past twisted.web (which would only frame it again).
        data = b"".join([frame.streamed(chunked_frame_message) for frame in frames])
        if data := send_now(self._sock, self._transport, data):
            self._transport.write(data)
        return True

    def _chunked(self) -> bool:
        request = self._request
        return request.chunked and request.startedWriting

    def _has_room(self) -> bool:
        request = self._request
        return (not self._ended and not request.finished and request.channel is not None
                and self.backlog() <= self._max_backlog_bytes)

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


class QueuedStreamWire(QueuedWire):
    """The websocket's queued wire (wire.py), its messages a response's body chunks. Under
    daphne, whose `send` never waits, it is bounded by Twisted's report of a full socket
    (`SocketPressure`), as the websocket's is. ASGI cannot drop a connection: `abandon` ends
    the response at once, without what is queued."""

    def __init__(self, send: Callable[[dict], Awaitable[None]], *, max_backlog_bytes: int,
                 on_end: Callable[[], None], pressure: SocketPressure | None = None) -> None:
        super().__init__(send, max_queued=settings.LIVEBLOG_REPLAY_WINDOW
                         + settings.LIVEBLOG_MAX_QUEUED_FRAMES,
                         max_backlog_bytes=max_backlog_bytes, pressure=pressure)
        self._on_end = on_end

    @staticmethod
    def _message(frame: str | Frame) -> tuple[dict, int]:
        data = _encoded(frame)
        return {"type": "http.response.body", "body": data, "more_body": True}, len(data)

    @staticmethod
    def _close_message(code: int) -> dict:
        return {"type": "http.response.body", "body": b"", "more_body": False}

    @staticmethod
    def _queue_end(message: dict) -> bool:
        return not message["more_body"]

    def keep_alive(self) -> None:
        if not self._closed and not self._too_far_behind():
            self._put({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True},
                      len(KEEP_ALIVE))

    def _ended(self) -> None:
        self._on_end()


def stream_wire_for(send: Callable[[dict], Awaitable[None]], *,
                    on_end: Callable[[], None]) -> DaphneStreamWire | QueuedStreamWire:
    """The outgoing side of a started event-stream response whose ASGI send is `send`;
    `on_end()` is called once the response is over (ended, or the connection dropped)."""
    max_backlog = settings.LIVEBLOG_MAX_BACKLOG_BYTES
    request = daphne_protocol(send, _REQUEST_API)
    if request is not None and settings.LIVEBLOG_DIRECT_WIRE and fast_path_works(request):
        return DaphneStreamWire(request, max_backlog_bytes=max_backlog, on_end=on_end)
    pressure = SocketPressure.watch(request.channel) if request is not None else None
    return QueuedStreamWire(send, max_backlog_bytes=max_backlog, on_end=on_end,
                            pressure=pressure)
