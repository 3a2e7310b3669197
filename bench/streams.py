"""The load generator's three transports behind one small interface: a feed of frames (each the
JSON of a Liveblog websocket frame, decoded, with its size on the wire), read one at a time until
the server ends it.

- `ws`: a websocket (the `websockets` client), one frame per message.
- `socketio`: Socket.IO 5 over Engine.IO 4 on a plain websocket (bench/socketio's server; see
  `SocketIOStream`): its connect acknowledgement is the `live` frame, its `event` packets' payloads
  are the event frames.
- `sse`: Server-Sent Events over a raw asyncio HTTP/1.1 connection (no dependency): a GET with
  `Accept: text/event-stream`, then the body (chunked, sized or until close) parsed
  incrementally as the HTML standard says: lines end with CRLF, LF or CR, `data:` lines join
  with "\\n", a blank line ends a message, lines starting with `:` are comments, `id:` is kept
  (the position a reconnect would send as `Last-Event-ID`) and `retry:` too. Liveblog sends
  `data: <frame JSON>` messages, so a message's data is exactly a websocket frame.

`open_stream(transport, url, origin=…, source=…, session=…)` connects (from the `source` address
when given) and returns a `Stream`; a refusal before the stream (e.g. 429 when an address holds
too many connections) raises `Refused`; its `frame()` gives the next frame (decoded, its size,
when its message was read), and raises `StreamEnded` at the end of the stream.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect

TRANSPORTS = ("ws", "sse", "socketio")
OPEN_TIMEOUT = 20.0  # connect and handshake (websocket) or response head (SSE)
READ_SIZE = 65536
MAX_HEAD = 65536  # bytes of an HTTP response head
REFUSAL_BODY = 2048  # bytes of a refusal's body kept for the error message


class StreamEnded(Exception):
    """The server ended the stream (or the connection broke); the message says how."""


class Refused(Exception):
    """The server answered the request with something other than a stream."""


Frame = dict[str, Any]


class Received(NamedTuple):
    frame: Frame  # decoded
    size: int  # the bytes it took on the wire: a websocket message's, an SSE message's data
    at: float  # time.monotonic() as soon as its message was read, before decoding


class Stream(Protocol):
    async def frame(self) -> Received:
        """The next frame; raises StreamEnded when the server has ended the stream."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (TCP reset, no goodbye), as a phone losing its network."""
        ...

    async def close(self) -> None:
        """End the connection politely."""
        ...


class TextFrames:
    """A stream whose `recv()` gives each frame's JSON text."""

    async def recv(self) -> str:
        raise NotImplementedError

    async def frame(self) -> Received:
        raw = await self.recv()
        at = time.monotonic()
        return Received(json.loads(raw), len(raw.encode()), at)


class WebSocketStream(TextFrames):
    """A websocket, one frame per message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def recv(self) -> str:
        try:
            return await self.ws.recv()
        except websockets.ConnectionClosedOK:
            raise StreamEnded(f"closed by the server: {self.ws.close_code} "
                              f"{self.ws.close_reason}") from None
        except websockets.ConnectionClosed as closed:
            raise StreamEnded(f"{type(closed).__name__}: {closed}") from None

    def abort(self) -> None:
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()


# --- Server-Sent Events -------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")


class EventStreamParser:
    """`text/event-stream` bytes in (in pieces of any size), messages' data out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._started = False
        self.last_event_id = ""  # the last `id:` seen (kept across messages, as a browser does)
        self.retry_ms: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every message that a blank line completed within `chunk`."""
        buffer = self._buffer + chunk
        if not self._started and buffer:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                self._buffer = buffer  # maybe a byte order mark, cut short
                return []
            buffer = buffer.removeprefix(b"\xef\xbb\xbf")
            self._started = True
        messages = []
        start = 0
        for end in _LINE_END.finditer(buffer):
            if end.group() == b"\r" and end.end() == len(buffer):
                break  # a CR at the very end may be the first half of CRLF: wait for more
            message = self._line(buffer[start:end.start()].decode("utf-8", "replace"))
            if message is not None:
                messages.append(message)
            start = end.end()
        self._buffer = buffer[start:]
        return messages

    def _line(self, line: str) -> str | None:
        if not line:  # a blank line dispatches the message, if it has data
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None  # `event:` and unknown fields: every Liveblog message has the default type


class ChunkedDecoder:
    """HTTP/1.1 `Transfer-Encoding: chunked` bytes in (in pieces of any size), body bytes out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # bytes of the current chunk still to come
        self._after_data = False  # the CRLF after a chunk's data is due
        self.done = False  # the last (zero-size) chunk came

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        body = bytearray()
        while self._buffer and not self.done:
            if self._remaining:
                piece = self._buffer[:self._remaining]
                body += piece
                self._buffer = self._buffer[len(piece):]
                self._remaining -= len(piece)
                self._after_data = not self._remaining
                continue
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                break
            line, self._buffer = self._buffer[:line_end], self._buffer[line_end + 2:]
            if self._after_data:
                if line:
                    raise StreamEnded(f"malformed chunked body: {line[:40]!r} after a chunk")
                self._after_data = False
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise StreamEnded(f"malformed chunk size {line[:40]!r}") from None
            if size == 0:
                self.done = True  # trailers, if any, are of no interest
            self._remaining = size
        return bytes(body)


class _Sized:
    """A body with a Content-Length."""

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def feed(self, chunk: bytes) -> bytes:
        piece = chunk[:self.remaining]
        self.remaining -= len(piece)
        self.done = self.remaining == 0
        return piece


class _UntilClose:
    """A body that ends when the connection does."""

    done = False

    def feed(self, chunk: bytes) -> bytes:
        return chunk


class EventStream(TextFrames):
    """An SSE response being read: each `recv()` gives one message's data."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 body: ChunkedDecoder | _Sized | _UntilClose, rest: bytes) -> None:
        self.reader, self.writer, self.body = reader, writer, body
        self.parser = EventStreamParser()
        self.pending: deque[str] = deque()
        self._take(rest)

    @property
    def last_event_id(self) -> str:
        return self.parser.last_event_id

    def _take(self, raw: bytes) -> None:
        if raw:
            self.pending.extend(self.parser.feed(self.body.feed(raw)))

    async def recv(self) -> str:
        while not self.pending:
            if self.body.done:
                raise StreamEnded("closed by the server: end of the response")
            try:
                raw = await self.reader.read(READ_SIZE)
            except OSError as error:
                raise StreamEnded(f"{type(error).__name__}: {error}") from None
            if not raw:
                raise StreamEnded("closed by the server: connection closed")
            self._take(raw)
        return self.pending.popleft()

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def _request(url: str, origin: str | None, last_event_id: str | None) -> tuple[str, int, bytes]:
    """(host, port, the GET request's bytes) for an http:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"the sse transport needs an http:// URL, not {url!r}")
    host, port = parts.hostname or "", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}",
               "Accept: text/event-stream", "Cache-Control: no-cache"]
    if origin:
        headers.append(f"Origin: {origin}")
    if last_event_id:
        headers.append(f"Last-Event-ID: {last_event_id}")
    return host, port, ("\r\n".join(headers) + "\r\n\r\n").encode()


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, the body bytes read with the head)."""
    raw = b""
    while (end := raw.find(b"\r\n\r\n")) < 0:
        if len(raw) > MAX_HEAD:
            raise Refused("response head too long")
        chunk = await reader.read(READ_SIZE)
        if not chunk:
            raise Refused("connection closed before the response head")
        raw += chunk
    status_line, *lines = raw[:end].decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise Refused(f"bad status line {status_line[:80]!r}") from None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, raw[end + 4:]


def _body(headers: dict[str, str]) -> ChunkedDecoder | _Sized | _UntilClose:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return ChunkedDecoder()
    if "content-length" in headers:
        return _Sized(int(headers["content-length"]))
    return _UntilClose()


async def _refusal(status: int, headers: dict[str, str], reader: asyncio.StreamReader,
                   body: ChunkedDecoder | _Sized | _UntilClose, rest: bytes) -> Refused:
    """A Refused naming the status, Retry-After and the start of the (JSON) body."""
    text = body.feed(rest)
    try:
        async with asyncio.timeout(2):
            while not body.done and len(text) < REFUSAL_BODY and (chunk := await reader.read(
                    READ_SIZE)):
                text += body.feed(chunk)
    except TimeoutError:
        pass
    retry = f", Retry-After {headers['retry-after']}" if "retry-after" in headers else ""
    kind = headers.get("content-type", "")
    start = " ".join(text[:400].decode("utf-8", "replace").split())[:200]
    return Refused(f"HTTP {status}{retry}, {kind}: {start}")


async def open_event_stream(url: str, *, origin: str | None = None, source: str | None = None,
                            last_event_id: str | None = None) -> EventStream:
    """GET `url` as an EventSource would; the stream once the server answered 200 with
    `text/event-stream`, else Refused."""
    host, port, request = _request(url, origin, last_event_id)
    async with asyncio.timeout(OPEN_TIMEOUT):
        reader, writer = await asyncio.open_connection(
            host, port, limit=READ_SIZE, **({"local_addr": (source, 0)} if source else {}))
        try:
            writer.write(request)
            status, headers, rest = await _response_head(reader)
            body = _body(headers)
            if status != 200 or not headers.get("content-type", "").startswith(
                    "text/event-stream"):
                raise await _refusal(status, headers, reader, body, rest)
        except BaseException:
            writer.transport.abort()
            raise
    return EventStream(reader, writer, body, rest)


async def open_websocket(url: str, *, origin: str | None = None,
                         source: str | None = None) -> WebSocketStream:
    ws = await connect(
        url, origin=origin, open_timeout=OPEN_TIMEOUT, ping_interval=None, max_size=None,
        max_queue=None, compression=None, proxy=None,
        **({"local_addr": (source, 0)} if source else {}),
    )
    return WebSocketStream(ws)


# --- Socket.IO (Engine.IO 4 over a websocket) ----------------------------------------------------
#
# Over a websocket every Engine.IO packet is one message: a digit (its type) and its data.
# 0 open {sid, pingInterval, …} · 1 close · 2 ping · 3 pong · 4 message · 6 noop. A message carries
# a Socket.IO packet: a digit, an optional "/namespace," and ack id, then JSON: 0 connect
# ({"sid", "pid"} from the server; {"pid", "offset"} from a client that asks for recovery) ·
# 1 disconnect · 2 event ([name, *args]) · 4 connect error. With connection state recovery the
# server appends each broadcast's offset to its arguments: 42["event",{…},"<offset>"].

ENGINE_TYPES = {"0": "open", "1": "close", "2": "ping", "3": "pong", "4": "message",
                "5": "upgrade", "6": "noop"}
SOCKET_TYPES = {"0": "connect", "1": "disconnect", "2": "event", "3": "ack",
                "4": "connect_error", "5": "binary_event", "6": "binary_ack"}
SOCKETIO_PATH = "/socket.io/"
SOCKETIO_QUERY = {"EIO": "4", "transport": "websocket"}


@dataclass(frozen=True)
class Packet:
    """One decoded Engine.IO packet; `kind` is the Socket.IO packet's type inside a message."""

    kind: str  # open, close, ping, pong, noop, connect, disconnect, event, connect_error, …
    data: Any = None  # open/connect/connect_error: the JSON object; event: the argument list
    namespace: str = "/"


def decode_packet(message: str) -> Packet:
    """A websocket message of Engine.IO 4 / Socket.IO 5, decoded."""
    if not message or message[0] not in ENGINE_TYPES:
        raise ValueError(f"not an Engine.IO packet: {message[:40]!r}")
    kind = ENGINE_TYPES[message[0]]
    if kind == "open":
        return Packet("open", json.loads(message[1:]))
    if kind != "message":
        return Packet(kind, message[1:] or None)
    body = message[2:]
    if len(message) < 2 or message[1] not in SOCKET_TYPES:
        raise ValueError(f"not a Socket.IO packet: {message[:40]!r}")
    namespace = "/"
    if body.startswith("/"):
        namespace, _, body = body.partition(",")
    body = body.lstrip("0123456789")  # an ack id, which the bench never asks for
    return Packet(SOCKET_TYPES[message[1]], json.loads(body) if body else None, namespace)


def connect_packet(pid: str | None = None, offset: str | None = None) -> str:
    """The client's Socket.IO connect: `40`, or `40{"pid":…,"offset":…}` to recover a session."""
    if pid is None or offset is None:
        return "40"
    return "40" + json.dumps({"pid": pid, "offset": offset}, separators=(",", ":"))


def socketio_url(url: str) -> tuple[str, int | None]:
    """The Engine.IO websocket URL for `url` (ws://host:port[/socket.io/][?since=N]) and the
    `since` it asked for: the bench's own parameter, never sent (a recovering reader sends the
    offset of the event with that seq, as if it had seen up to it and no further)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    since = query.pop("since", None)
    query = {**query, **SOCKETIO_QUERY}
    path = parts.path if parts.path.startswith(SOCKETIO_PATH) else SOCKETIO_PATH
    return (urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), "")),
            None if since is None else int(since))


@dataclass
class SocketIOSession:
    """What a Socket.IO client keeps across its reconnects: the session id (`pid`) the server
    gave it, and the offsets of the events it has seen (by their seq), the last one too."""

    pid: str | None = None
    last_offset: str | None = None
    offsets: dict[int, str] = field(default_factory=dict)
    recovered: bool = False  # the last connect got the same pid back

    def offset(self, since: int | None) -> str | None:
        """The offset to recover from: that of event `since` when asked, else the last seen."""
        return self.last_offset if since is None else self.offsets.get(since)

    def seen(self, args: list[Any]) -> None:
        """Note an event's offset (the last argument, a string, when the server keeps them)."""
        if len(args) > 2 and isinstance(args[-1], str):
            self.last_offset = args[-1]
            if isinstance(args[1], dict) and isinstance(args[1].get("seq"), int):
                self.offsets[args[1]["seq"]] = args[-1]


class SocketIOStream:
    """A Socket.IO client on the default namespace, reduced to what the bench reads: the connect
    acknowledgement `40{"sid","pid"}` is a `{"type": "live", …}` frame (after it the server sends
    nothing a Liveblog reader would call catch-up: missed packets of a recovered session come
    before it), each `event` packet's payload is the frame. Pings are answered at once."""

    def __init__(self, ws: ClientConnection, session: SocketIOSession) -> None:
        self.ws, self.session = ws, session

    async def frame(self) -> Received:
        while True:
            try:
                message = await self.ws.recv()
            except websockets.ConnectionClosed as closed:
                raise StreamEnded(f"{type(closed).__name__}: {closed}") from None
            at = time.monotonic()
            try:
                packet = decode_packet(message)
            except ValueError as error:  # JSONDecodeError too
                raise StreamEnded(f"malformed packet: {error}") from None
            if packet.kind == "ping":
                await self.ws.send("3")
            elif (packet.kind == "event" and packet.namespace == "/"
                  and isinstance(packet.data, list) and len(packet.data) > 1):
                self.session.seen(packet.data)
                if packet.data[0] == "event" and isinstance(packet.data[1], dict):
                    return Received(packet.data[1], len(message.encode()), at)
            elif packet.kind == "connect":
                self.session.recovered = packet.data["pid"] == self.session.pid
                self.session.pid = packet.data["pid"]
                return Received({"type": "live", **packet.data}, len(message.encode()), at)
            elif packet.kind == "connect_error":
                return Received({"type": "error", "error": packet.data}, len(message.encode()),
                                at)
            elif packet.kind in ("close", "disconnect"):
                raise StreamEnded(f"closed by the server: {packet.kind}")

    def abort(self) -> None:
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()


async def open_socketio(url: str, session: SocketIOSession, *, origin: str | None = None,
                        source: str | None = None) -> SocketIOStream:
    """Connect, read Engine.IO's open packet and send the Socket.IO connect (asking to recover
    `session` when it has a pid and an offset); the acknowledgement is the stream's `live`."""
    ws_url, since = socketio_url(url)
    stream = SocketIOStream((await open_websocket(ws_url, origin=origin, source=source)).ws,
                            session)
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            message = await stream.ws.recv()
        try:
            opened = decode_packet(message)
        except ValueError as error:
            raise Refused(f"malformed open packet: {error}") from None
        if opened.kind != "open":
            raise Refused(f"expected Engine.IO's open packet, got {opened.kind}")
        await stream.ws.send(connect_packet(session.pid, session.offset(since)))
    except BaseException:
        stream.abort()
        raise
    return stream


async def open_stream(transport: str, url: str, *, origin: str | None = None,
                      source: str | None = None,
                      session: SocketIOSession | None = None) -> Stream:
    """A connected stream of frames over `transport` (`ws`, `sse` or `socketio`; a Socket.IO
    reader keeps its `session` across reconnects)."""
    if transport == "sse":
        return await open_event_stream(url, origin=origin, source=source)
    if transport == "socketio":
        return await open_socketio(url, session or SocketIOSession(), origin=origin,
                                   source=source)
    return await open_websocket(url, origin=origin, source=source)
