"""The outgoing side of one websocket. Frames leave in the order given; nothing here makes the
caller wait, so the hub never waits on a reader. Three calls:

- `send(frame) -> bool`: one text frame. False means the socket is too far behind (its unsent
  bytes passed LIVEBLOG_MAX_BACKLOG_BYTES): nothing was queued, cut it loose. Every frame counts,
  whatever it is (catch-up, live event, error), so no client can make the server hold more.
- `send_many(frames) -> bool`: several events, as `send` each in turn would, but in one write
  where the transport allows (a burst's events to one reader). The backlog is checked once,
  before: what it can add is bounded by the caller (a pass's events, or the live events held
  during a catch-up, which are capped at the replay window).
- `backlog() -> int`: the bytes written but not yet taken by the socket; `wait_for_room` paces
  a catch-up on it.
- `close(code)`: close after every frame sent before.
- `abandon(code)`: give up on a reader too far behind: drop what it has not taken, and close.
- `shut(code)`: close on a client that abuses the server: as `abandon`, and read nothing more
  from it (what it goes on writing stays in the kernel until the close times out).
- `keep_alive()`: a heartbeat passed with nothing sent (a catch-up under way): a transport that
  needs traffic to stay open through proxies sends some. A websocket needs nothing: daphne's own
  protocol pings keep it open.
- `pace_input()`: called for each incoming frame the consumer takes. daphne reads whatever a
  client writes into an unbounded queue, one socket read at a time (thousands of small frames),
  far faster than the consumer takes them: a client that is that far ahead is not read from
  until the consumer has caught up.

Two implementations:

`DirectWire`, the fast path under daphne: frames are written straight to the connection (the
Autobahn protocol behind daphne's ASGI `send`). A live event is framed once per process and the
same bytes go to every reader, and those bytes go to the socket at once when nothing waits
before them, as a bare websockets server does. It leans on Twisted and Autobahn internals (a
transport's buffer, a protocol's send queue), so `wire_for` probes them, once per process, and
falls back when any is missing (a renamed attribute must not become an error per reader per
event). `LIVEBLOG_DIRECT_WIRE=0` turns it off.

`QueuedWire`, anywhere else (another ASGI server, the test communicator, or the fallback under
daphne): frames go through ASGI `send` from a per-connection queue drained by a task of its own.
Its bound is the queue's length, plus, under daphne (whose `send` never waits), the bytes written
while Twisted reports the socket full (its public producer API).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.conf import settings
from twisted.internet import tcp

from .feed import Frame

logger = logging.getLogger(__name__)


class Wire(Protocol):
    def send(self, frame: str | Frame) -> bool: ...

    def send_many(self, frames: list[Frame]) -> bool: ...

    def backlog(self) -> int: ...

    def close(self, code: int) -> None: ...

    def abandon(self, code: int) -> None: ...

    def shut(self, code: int) -> None: ...

    def pace_input(self) -> None: ...

    def keep_alive(self) -> None: ...


# --- Finding daphne's connection, and probing it ------------------------------------------------

# What the fast path uses. Public Autobahn API, then the internals `_send_now` and `backlog`
# read (Twisted's FileDescriptor buffer, Autobahn's queue of frames not yet written).
_PROTOCOL_API = ("sendPreparedMessage", "sendMessage", "sendData", "sendCloseFrame", "state",
                 "STATE_OPEN", "transport", "factory")
_PROTOCOL_INTERNALS = ("_perMessageCompress", "send_queue", "application_queue")
_TRANSPORT_INTERNALS = ("dataBuffer", "offset", "_tempDataLen", "connected", "disconnecting",
                        "pauseProducing", "resumeProducing")
# Incoming frames read but not yet taken by the consumer: above the high mark the socket is not
# read from; at the low mark it is again. A well-behaved client never comes near.
INPUT_HIGH_WATER = 8
INPUT_LOW_WATER = 2

# Probe results by (protocol class, transport class): probed once per process.
_probed: dict[tuple[type, type], bool] = {}


def daphne_protocol(send: Callable, api: tuple[str, ...] = _PROTOCOL_API) -> Any | None:
    """The protocol behind daphne's ASGI send callable (daphne hands the application
    `partial(server.handle_reply, protocol)`: Autobahn's for a websocket, its own twisted.web
    request for HTTP) when it has every name in `api`, or None for any other server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    if getattr(send.func, "__name__", None) != "handle_reply":
        return None
    protocol = send.args[0]
    return protocol if all(hasattr(protocol, name) for name in api) else None


def direct_path_works(protocol: Any) -> bool:
    """Whether this connection has everything the fast path touches. Checked for the first
    connection of each kind, then remembered; a miss is logged once."""
    transport = protocol.transport
    kind = (type(protocol), type(transport))
    if kind not in _probed:
        missing = [name for name in _PROTOCOL_INTERNALS if not hasattr(protocol, name)]
        missing += [f"transport.{name}" for name in _TRANSPORT_INTERNALS
                    if not hasattr(transport, name)]
        if not callable(getattr(protocol.factory, "prepareMessage", None)):
            missing.append("factory.prepareMessage")
        if missing:
            logger.warning("websocket fast path off: %s lacks %s (a Twisted or Autobahn "
                           "upgrade?); sending through ASGI instead",
                           kind[0].__name__, ", ".join(missing))
        _probed[kind] = not missing
    return _probed[kind]


def wire_for(send: Callable[[dict], Awaitable[None]]) -> DirectWire | QueuedWire:
    """The outgoing side for a connection whose ASGI send callable is `send`."""
    protocol = daphne_protocol(send)
    max_backlog = settings.LIVEBLOG_MAX_BACKLOG_BYTES
    if protocol is not None and settings.LIVEBLOG_DIRECT_WIRE and direct_path_works(protocol):
        return DirectWire(protocol, max_backlog_bytes=max_backlog)
    max_queued = settings.LIVEBLOG_REPLAY_WINDOW + settings.LIVEBLOG_MAX_QUEUED_FRAMES
    if protocol is None:
        return QueuedWire(send, max_queued=max_queued, max_backlog_bytes=max_backlog)
    return QueuedWire(send, max_queued=max_queued, max_backlog_bytes=max_backlog,
                      pressure=SocketPressure.watch(protocol),
                      closer=functools.partial(close_frame, protocol))


def close_frame(protocol: Any, code: int) -> None:
    """Start the closing handshake with `code`. Autobahn's `sendClose` (and daphne's ASGI close,
    which calls it) takes only 1000 and 3000-4999; the protocol's codes this app uses (1008
    policy, 1011 unavailable, 1013 try later) go out through the frame call beneath it."""
    if protocol.state == protocol.STATE_OPEN:
        protocol.sendCloseFrame(code=code, isReply=False)


# --- The fast path ------------------------------------------------------------------------------


class DirectWire:
    """Writes frames straight to a daphne connection."""

    def __init__(self, protocol: Any, *, max_backlog_bytes: int) -> None:
        self._protocol = protocol
        self._max_backlog_bytes = max_backlog_bytes
        transport = protocol.transport
        # A plain TCP connection can take bytes at once (not a TLS one: its bytes are not ours).
        self._sock = transport.getHandle() if isinstance(transport, tcp.Connection) else None
        self._reading = True
        self._shut = False

    def send(self, frame: str | Frame) -> bool:
        if isinstance(frame, Frame):
            return self.send_many([frame])
        if not self._has_room():
            return False
        self._protocol.sendMessage(frame.encode(), False)
        return True

    def send_many(self, frames: list[Frame]) -> bool:
        """`send` for a run of frames (a catch-up's, or a pass's), in one write to the socket: the
        same frames on the wire, back to back. The bound is checked once, before the run."""
        if not self._has_room():
            return False
        protocol, prepare = self._protocol, self._prepare
        if protocol._perMessageCompress is None:
            self._send_now(b"".join([frame.framed(prepare).payloadHybi for frame in frames]))
        else:
            for frame in frames:
                protocol.sendPreparedMessage(frame.framed(prepare))
        return True

    def _has_room(self) -> bool:
        protocol = self._protocol
        return (protocol.state == protocol.STATE_OPEN
                and self.backlog() <= self._max_backlog_bytes)

    def close(self, code: int) -> None:
        """Every frame before was written already: the close frame follows them."""
        close_frame(self._protocol, code)

    def abandon(self, code: int) -> None:
        # What Twisted holds still goes first; a reader that takes nothing more is dropped by
        # Autobahn's closing handshake timeout.
        close_frame(self._protocol, code)

    def shut(self, code: int) -> None:
        # Autobahn reads on while it waits for the client's close reply (a second, then it drops
        # the connection): a client writing at full speed would be parsed and queued meanwhile.
        close_frame(self._protocol, code)
        self._shut = True
        self._pause_reading()

    def keep_alive(self) -> None:
        """daphne pings websockets itself."""

    def pace_input(self) -> None:
        waiting = self._protocol.application_queue.qsize()
        if self._reading and waiting > INPUT_HIGH_WATER:
            self._pause_reading()
        elif not self._reading and not self._shut and waiting <= INPUT_LOW_WATER:
            self._reading = True
            self._protocol.transport.resumeProducing()

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._protocol.transport.pauseProducing()

    def backlog(self) -> int:
        """Bytes written but not yet taken by the socket (Twisted's write buffer)."""
        transport = self._protocol.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def _prepare(self, text: str) -> Any:
        """Frame a message once, for every reader of this process."""
        return self._protocol.factory.prepareMessage(text.encode())

    def _send_now(self, data: bytes) -> None:
        """Hand the bytes to the socket now when nothing waits before them (see `send_now`);
        Autobahn's own queue counts as waiting."""
        protocol = self._protocol
        if not protocol.send_queue:
            data = send_now(self._sock, protocol.transport, data)
        if data:
            protocol.sendData(data)


def send_now(sock: Any, transport: Any, data: bytes) -> bytes:
    """Write to the socket at once when nothing waits in Twisted's buffer before `data`, as
    asyncio's own transports do, and return what it did not take (the caller hands that to
    Twisted, in order). Twisted would register the socket for writing and write on the next turn
    of the loop: four epoll calls per reader per event, half of a fan-out's cost."""
    if (sock is not None and transport.connected and not transport.disconnecting
            and not transport._tempDataLen and len(transport.dataBuffer) == transport.offset):
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # a dead connection: Twisted finds out on its own write and closes
        return data[sent:]
    return data


# --- The queued path ----------------------------------------------------------------------------


class SocketPressure:
    """Whether Twisted reports a connection's socket full. A transport with a streaming producer
    registered sets its public `producerPaused` once more than its buffer size waits, and clears
    it when drained. Under daphne the HTTP channel that upgraded the connection stays registered;
    where none is, this registers itself, and releases before closing (Twisted does not close a
    connection while a producer is registered)."""

    def __init__(self, transport: Any, *, registered: bool) -> None:
        self._transport = transport
        self._registered = registered

    @classmethod
    def watch(cls, protocol: Any) -> SocketPressure | None:
        transport = getattr(protocol, "transport", None)
        if not hasattr(transport, "producerPaused"):
            return None
        if getattr(transport, "producer", None) is not None:
            return cls(transport, registered=False)
        pressure = cls(transport, registered=True)
        try:
            transport.registerProducer(pressure, True)
        except Exception:  # noqa: BLE001 - bound by the queue's length only
            logger.debug("could not watch the socket's buffer", exc_info=True)
            return None
        return pressure

    @property
    def paused(self) -> bool:
        return bool(self._transport.producerPaused)

    def release(self) -> None:
        if not self._registered:
            return
        self._registered = False
        try:
            self._transport.unregisterProducer()
        except Exception:  # noqa: BLE001 - the connection is gone already
            logger.debug("could not unregister from the socket", exc_info=True)

    # IPushProducer: the state lives on the transport.
    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's names
        pass

    def resumeProducing(self) -> None:  # noqa: N802
        pass

    def stopProducing(self) -> None:  # noqa: N802
        pass


class QueuedWire:
    """Sends frames through ASGI `send`, in order, from a bounded queue. What a message is made
    of is `_message` and `_close_message` (a websocket's here; an event stream's in
    eventstream.py)."""

    def __init__(self, send: Callable[[dict], Awaitable[None]], *, max_queued: int,
                 max_backlog_bytes: int, pressure: SocketPressure | None = None,
                 closer: Callable[[int], None] | None = None) -> None:
        self._send = send
        # Under daphne: how to close with a code its ASGI close refuses (see close_frame).
        self._closer = closer
        self._max_queued = max_queued
        self._max_backlog_bytes = max_backlog_bytes
        self._pressure = pressure
        # Bytes handed over since the socket was last seen full (see SocketPressure).
        self._sent_while_full = 0
        self._queue: deque[tuple[dict, int]] = deque()  # (ASGI message, bytes it carries)
        self._queued_bytes = 0
        self._writer: asyncio.Task | None = None
        self._closed = False

    @staticmethod
    def _message(frame: str | Frame) -> tuple[dict, int]:
        text = frame if isinstance(frame, str) else frame.text
        return {"type": "websocket.send", "text": text}, len(text)

    @staticmethod
    def _close_message(code: int) -> dict:
        return {"type": "websocket.close", "code": code}

    def send(self, frame: str | Frame) -> bool:
        if self._closed or self._too_far_behind():
            return False
        self._put(*self._message(frame))
        return True

    def send_many(self, frames: list[Frame]) -> bool:
        return all([self.send(frame) for frame in frames])

    def backlog(self) -> int:
        """Bytes queued here, plus (under daphne) those handed over while the socket was full."""
        if self._pressure is not None and not self._pressure.paused:
            self._sent_while_full = 0  # the socket drained
        return self._queued_bytes + self._sent_while_full

    def close(self, code: int) -> None:
        if self._closed:
            return
        self._put(self._close_message(code), 0)
        self._closed = True
        if self._pressure is not None:
            self._pressure.release()

    def abandon(self, code: int) -> None:
        self._queue.clear()  # what it missed comes back by replay
        self._queued_bytes = 0
        self.close(code)

    def shut(self, code: int) -> None:
        """ASGI has no way to stop reading: the consumer ignores what follows."""
        self.abandon(code)

    def pace_input(self) -> None:
        """ASGI has no way to stop reading (and other servers bound their own queues)."""

    def keep_alive(self) -> None:
        """Websocket servers ping on their own."""

    def idle(self) -> Awaitable[None]:
        """Done once everything queued so far went out (tests)."""
        return asyncio.shield(self._writer) if self._writer else asyncio.sleep(0)

    def _too_far_behind(self) -> bool:
        return (len(self._queue) >= self._max_queued
                or self.backlog() > self._max_backlog_bytes)

    def _put(self, message: dict, size: int) -> None:
        self._queue.append((message, size))
        self._queued_bytes += size
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            message, size = self._queue.popleft()
            self._queued_bytes -= size
            if self._pressure is not None and self._pressure.paused:
                self._sent_while_full += size
            try:
                if self._closer is not None and self._queue_end(message):
                    self._closer(message["code"])
                else:
                    await self._send(message)
            except Exception:  # noqa: BLE001 - a connection that went away
                logger.debug("dropping frames for a closed connection", exc_info=True)
                self._queue.clear()
                self._queued_bytes = 0
                self._closed = True
                self._ended()
                return
            if self._queue_end(message):
                self._ended()

    @staticmethod
    def _queue_end(message: dict) -> bool:
        """Whether this message ends the connection."""
        return message["type"] == "websocket.close"

    def _ended(self) -> None:
        """The last message went (or the connection did)."""


# --- Pacing ------------------------------------------------------------------------------------

# How often a paced sender looks at a full socket again. Only a catch-up to a socket that is
# not taking its bytes waits here.
_ROOM_POLL_SECONDS = 0.02


async def wait_for_room(wire: Wire, *, low_water: int, stall_seconds: float) -> bool:
    """Wait until the socket's backlog is at most `low_water` bytes. False when it took nothing
    for `stall_seconds` (a client that does not read): the caller gives up on it. A reader on a
    slow network that keeps taking bytes is never given up on, however long it takes."""
    loop = asyncio.get_running_loop()
    backlog = wire.backlog()
    last_progress = loop.time()
    while backlog > low_water:
        await asyncio.sleep(_ROOM_POLL_SECONDS)
        now, previous, backlog = loop.time(), backlog, wire.backlog()
        if backlog < previous:
            last_progress = now
        elif now - last_progress > stall_seconds:
            return False
    return True
