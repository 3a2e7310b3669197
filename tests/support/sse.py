"""Event-stream (SSE) clients for tests: one over the in-process ASGI stack, one over a real socket
(HTTP/1.1, chunked, as a browser reads it). Both parse messages as the SSE spec does: lines,
`data:` joined, `id:` kept, `:` comments counted, a blank line ends a message."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from channels.testing import ApplicationCommunicator

from project.asgi import application


@dataclass
class Message:
    data: str
    id: str | None = None

    @property
    def frame(self) -> dict:
        return json.loads(self.data)


@dataclass
class EventStreamParser:
    """Bytes in, whole messages out (a message may span chunks, a chunk hold several)."""

    buffer: bytes = b""
    comments: int = 0
    retry: int | None = None
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, chunk: bytes) -> list[Message]:
        self.buffer += chunk
        messages = []
        while b"\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\n", 1)
            line = raw.decode().rstrip("\r")
            if not line:
                if self._data:
                    messages.append(Message("\n".join(self._data), self._id))
                self._data, self._id = [], None
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    self._data.append(value)
                elif name == "id":
                    self._id = value
                elif name == "retry":
                    self.retry = int(value)
        return messages


class StreamClosed(AssertionError):
    pass


class _Messages:
    """What both clients share: a queue of parsed messages read with deadlines."""

    def __init__(self) -> None:
        self.parser = EventStreamParser()
        self.messages: list[Message] = []
        self._waiting: list[Message] = []
        self.closed = False

    def _take(self, chunk: bytes) -> None:
        self._waiting.extend(self.parser.feed(chunk))

    async def _read_more(self, timeout: float) -> None:
        raise NotImplementedError

    async def next(self, timeout: float = 5) -> Message:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._waiting:
            if self.closed:
                kinds = [m.frame["type"] for m in self.messages]
                raise StreamClosed(f"the stream ended; got {kinds}")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no message within {timeout}s; got "
                                     f"{[m.frame['type'] for m in self.messages]}")
            await self._read_more(remaining)
        message = self._waiting.pop(0)
        self.messages.append(message)
        return message

    async def expect(self, kind: str, timeout: float = 5) -> Message:
        message = await self.next(timeout)
        assert message.frame["type"] == kind, f"expected {kind!r}, got {message.frame}"
        return message

    async def until(self, predicate, timeout: float = 10) -> list[Message]:
        seen = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            seen.append(message)
            if predicate(message.frame):
                return seen


class AsgiStream(_Messages):
    """GET an event stream from the full ASGI application, in process."""

    def __init__(self, path: str, *, headers: list | None = None, method: str = "GET",
                 client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        super().__init__()
        path, _, query = path.partition("?")
        self.communicator = ApplicationCommunicator(application, {
            "type": "http", "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1"), *(headers or [])],
            "client": client, "server": ("127.0.0.1", 80),
        })
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = b""

    async def open(self, timeout: float = 5) -> AsgiStream:
        await self.communicator.send_input({"type": "http.request", "body": b""})
        start = await self.communicator.receive_output(timeout)
        assert start["type"] == "http.response.start", start
        self.status, self.headers = start["status"], dict(start.get("headers", []))
        if self.status != 200:
            self.body = (await self.communicator.receive_output(timeout))["body"]
            self.closed = True
        return self

    async def _read_more(self, timeout: float) -> None:
        try:
            message = await self.communicator.receive_output(timeout)
        except TimeoutError:
            return
        self._take(message.get("body", b""))
        if not message.get("more_body", False):
            self.closed = True

    async def close(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout=5)


class SocketStream(_Messages):
    """GET an event stream from a real server over HTTP/1.1 (chunked, as a browser reads it)."""

    def __init__(self, host: str, port: int, path: str, *, headers: dict | None = None,
                 sock=None) -> None:
        super().__init__()
        self.host, self.port, self.path = host, port, path
        self.request_headers = headers or {}
        self.sock = sock
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self._raw = b""
        self._chunk_left: int | None = None

    async def open(self, timeout: float = 10) -> SocketStream:
        if self.sock is not None:
            self.reader, self.writer = await asyncio.open_connection(sock=self.sock)
        else:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Accept: text/event-stream", *(f"{k}: {v}" for k, v in
                                                self.request_headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        return self

    async def _read_more(self, timeout: float) -> None:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return
        except ConnectionError:
            data = b""
        if not data:
            self.closed = True
        self._take(self._dechunk(data))

    def _dechunk(self, data: bytes) -> bytes:
        """The body from HTTP/1.1 chunked transfer coding."""
        if self.headers.get("transfer-encoding") != "chunked":
            return data
        self._raw += data
        out = b""
        while True:
            if self._chunk_left is None:
                if b"\r\n" not in self._raw:
                    return out
                size, self._raw = self._raw.split(b"\r\n", 1)
                self._chunk_left = int(size, 16)
                if self._chunk_left == 0:
                    self.closed = True
                    return out
            if len(self._raw) < self._chunk_left + 2:
                return out
            out += self._raw[:self._chunk_left]
            self._raw = self._raw[self._chunk_left + 2:]
            self._chunk_left = None

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
