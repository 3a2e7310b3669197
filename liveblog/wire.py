"""The outgoing side of one websocket: frames leave in the order they are given, and the hub
never waits on a reader.

Under daphne, frames are written straight to the connection (the Autobahn protocol behind the
ASGI `send` callable): a live event is framed once per process (a prepared message) and the same
bytes go to every reader, as a bare websockets server does. A reader whose unsent bytes pile up
beyond a bound (a phone that stopped reading) is too slow: the caller cuts it loose, and it comes
back with `since`.

Anywhere else (another ASGI server, the test communicator) frames go through ASGI `send`, from a
per-connection queue drained by a task of its own; the bound is on that queue.
"""

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import tcp

logger = logging.getLogger(__name__)

_UNWRAP_DEPTH = 6  # middleware layers between the consumer and the server's send


def daphne_protocol(send: Callable) -> Any | None:
    """The daphne websocket protocol behind an ASGI send callable, or None.

    daphne hands the application `partial(server.handle_reply, protocol)`; Channels' session
    middleware wraps it in a bound method of a wrapper holding it as `real_send`. Anything else
    is not daphne (or a daphne this code does not know), and gets the ASGI path."""
    for _ in range(_UNWRAP_DEPTH):
        if isinstance(send, functools.partial):
            protocol = send.args[0] if send.args else None
            wanted = ("sendPreparedMessage", "sendMessage", "transport", "factory", "state")
            return protocol if all(hasattr(protocol, name) for name in wanted) else None
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


class DirectWire:
    """Writes frames straight to a daphne connection."""

    direct = True

    def __init__(self, protocol: Any, *, max_backlog_bytes: int) -> None:
        self.protocol = protocol
        self.max_backlog_bytes = max_backlog_bytes
        transport = protocol.transport
        # A plain TCP connection can take bytes at once (not a TLS one: its bytes are not ours).
        self.sock = transport.socket if isinstance(transport, tcp.Connection) else None

    def backlog(self) -> int:
        """Bytes written but not yet taken by the socket (Twisted's write buffer)."""
        transport = self.protocol.transport
        pending = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        return pending + getattr(transport, "_tempDataLen", 0)

    def prepare(self, frame: str) -> Any:
        """Frame a message once, for every reader of this process."""
        return self.protocol.factory.prepareMessage(frame.encode())

    def write(self, frame: str, prepared: Any = None, *, bounded: bool = False) -> bool:
        """Send one text frame; False if the connection is closed or (when `bounded`) the
        reader is too far behind."""
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return False
        if bounded and self.backlog() > self.max_backlog_bytes:
            return False
        if prepared is not None and protocol._perMessageCompress is None:
            self._send_now(prepared.payloadHybi)
        elif prepared is not None:
            protocol.sendPreparedMessage(prepared)
        else:
            protocol.sendMessage(frame.encode(), False)
        return True

    def _send_now(self, data: bytes) -> None:
        """Hand the bytes to the socket now when nothing waits before them, as asyncio's own
        transports do. Twisted would register the socket for writing and write on the next
        turn of the loop: four epoll calls per reader per event, half of a fan-out's cost.
        Whatever the socket does not take goes to Twisted's buffer, in order."""
        protocol, transport = self.protocol, self.protocol.transport
        if (self.sock is not None and not protocol.send_queue and transport.connected
                and not transport.disconnecting and not transport._tempDataLen
                and len(transport.dataBuffer) == transport.offset):
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # a dead connection: Twisted finds out on its own write and closes
            if sent == len(data):
                return
            data = data[sent:]
        protocol.sendData(data)


class QueuedWire:
    """Sends frames through ASGI `send`, in order, from a bounded queue."""

    direct = False

    def __init__(self, send: Callable[[dict], Awaitable[None]], *, max_queued: int) -> None:
        self.send = send
        self.max_queued = max_queued
        self.queue: deque[dict] = deque()
        self.writer: asyncio.Task | None = None
        self.closed = False

    def prepare(self, frame: str) -> None:
        return None

    def write(self, frame: str, prepared: Any = None, *, bounded: bool = False) -> bool:
        if self.closed:
            return False
        if bounded and len(self.queue) >= self.max_queued:
            return False
        self._put({"type": "websocket.send", "text": frame})
        return True

    def close(self, code: int) -> None:
        self._put({"type": "websocket.close", "code": code})
        self.closed = True

    def _put(self, message: dict) -> None:
        self.queue.append(message)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self.queue:
            try:
                await self.send(self.queue.popleft())
            except Exception:  # noqa: BLE001 - a connection that went away
                logger.debug("dropping frames for a closed connection", exc_info=True)
                self.queue.clear()
                self.closed = True


def wire_for(send: Callable, *, max_backlog_bytes: int, max_queued: int) -> DirectWire | QueuedWire:
    protocol = daphne_protocol(send)
    if protocol is not None:
        return DirectWire(protocol, max_backlog_bytes=max_backlog_bytes)
    return QueuedWire(send, max_queued=max_queued)
