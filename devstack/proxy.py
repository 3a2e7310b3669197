"""A TCP proxy on loopback that breaks the network on demand, for tests of flaky connections.
(In front of several processes the stack runs nginx: devstack/nginx.py.)

The browser talks to the proxy; the proxy forwards to the server. Chromium's own offline switch
does not close an open websocket, so a real cut needs a real middlebox:

- `cut()` aborts every open connection (both sides see a reset, as when a phone changes cell);
- `refuse(True)` resets every new connection at once, until `refuse(False)`;
- `blackhole()` keeps the open connections open but forwards nothing more on them in either
  direction (a stalled network: no error, no data); new connections flow normally;
- `lose_answer("POST /api/")` lets the next such request reach the server, then drops the
  server's answer and resets the connection (the write happened; the client never hears of it);
- `refuse_websockets(True)` answers every websocket upgrade `403 Forbidden` (then closes), as
  corporate proxies and some hotel and carrier networks do, while plain HTTP (SSE included)
  flows, until `refuse_websockets(False)`. It reads the first request head of each new
  connection before connecting upstream (browsers open a connection of its own for a websocket);
  the other modes work alongside it.

The proxy runs its own asyncio loop in a thread; its methods are called from the test's thread.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

from .common import free_port

# The start of an HTTP/1 request. A chunk of a request's body (a photo's bytes, a form) may
# start with a letter too: only this marks a new request on a kept-alive connection.
REQUEST_LINE = re.compile(rb"[A-Z]+ \S+ HTTP/\d\.\d\r\n")
# A websocket handshake's header (RFC 6455 §4.1; the value is case-insensitive).
UPGRADE_WEBSOCKET = re.compile(rb"\r\nupgrade:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)
HEAD_END = b"\r\n\r\n"
HEAD_LIMIT = 65536  # a longer request head is no browser's: reset
HEAD_TIMEOUT_S = 10
# What a proxy that blocks websockets answers to the upgrade (Chromium reports "Unexpected
# response code: 403"; a plain HTTP client sees a proxy's error page).
FORBIDDEN_BODY = b"Websockets are blocked by this proxy.\n"
FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(FORBIDDEN_BODY), FORBIDDEN_BODY)
)


def is_websocket_upgrade(head: bytes) -> bool:
    """True for an HTTP/1 request head that asks for a websocket."""
    return bool(REQUEST_LINE.match(head)) and bool(UPGRADE_WEBSOCKET.search(head + b"\r\n"))


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    stalled: bool = False
    last_request: str = ""  # the request line most recently sent upstream on this link
    tasks: list[asyncio.Task] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class FlakyProxy:
    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.links: set[_Link] = set()
        self.refusing = False
        self.refusing_websockets = False
        self.websockets_refused = 0
        self.accepted = 0
        self.answer_to_lose: str | None = None
        self.answers_lost = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- Control (from the test's thread) -----------------------------------------------------

    def _call(self, function, *args):
        async def run():
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def start(self) -> FlakyProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", self.port), self._loop
        ).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> int:
        """Abort every open connection; returns how many there were."""
        return self._call(self._cut)

    def refuse(self, refusing: bool = True) -> None:
        self.refusing = refusing

    def refuse_websockets(self, refusing: bool = True) -> None:
        """Answer websocket upgrades on new connections 403 (plain HTTP still flows)."""
        self.refusing_websockets = refusing

    def blackhole(self) -> int:
        """Stall every open connection; returns how many there were."""
        return self._call(self._blackhole)

    def lose_answer(self, request_prefix: str) -> None:
        """Drop the answer to the next request whose request line starts with the prefix."""
        self.answer_to_lose = request_prefix

    def open_links(self) -> int:
        return self._call(lambda: len(self.links))

    def open_requests(self, prefix: str = "") -> list[str]:
        """The request line last sent on each open connection, those starting with `prefix`
        (e.g. the event streams still open: "GET /sse/")."""
        return self._call(lambda: sorted(link.last_request for link in self.links
                                         if link.last_request.startswith(prefix)))

    # --- In the proxy's loop ------------------------------------------------------------------

    def _cut(self) -> int:
        links = list(self.links)
        for link in links:
            link.abort()
        self.links.clear()
        return len(links)

    def _blackhole(self) -> int:
        for link in self.links:
            link.stalled = True
        return len(self.links)

    async def _shutdown(self) -> None:
        self._server.close()
        self._cut()  # the pumps end, and with them each connection's handler
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        _, stuck = await asyncio.wait(others, timeout=2) if others else (None, [])
        for task in stuck:
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refusing:
            _reset(writer)
            return
        link = _Link(client=writer)
        head = b""
        if self.refusing_websockets:
            self.links.add(link)  # cut and blackhole reach it while its head arrives
            try:
                head = await asyncio.wait_for(reader.readuntil(HEAD_END), HEAD_TIMEOUT_S)
            except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError):
                # IncompleteReadError is an EOFError: the client went (or was cut) first.
                self.links.discard(link)
                _reset(writer)
                return
            if is_websocket_upgrade(head):
                self.links.discard(link)
                self.websockets_refused += 1
                await self._forbid(writer)
                return
        try:
            up_reader, up_writer = await self._connect_upstream()
        except OSError:
            self.links.discard(link)
            _reset(writer)  # the server is down: the client sees its connection fail
            return
        if head and link not in self.links:
            _reset(up_writer)  # cut while connecting upstream
            return
        link.upstream = up_writer
        self.links.add(link)
        if head and not link.stalled:
            link.last_request = head.split(b"\r\n", 1)[0].decode("latin-1")
            up_writer.write(head)
        link.tasks = [
            asyncio.ensure_future(self._pump(link, reader, up_writer, upstream=True)),
            asyncio.ensure_future(self._pump(link, up_reader, writer, upstream=False)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        if link in self.links:
            self.links.discard(link)
            link.abort()

    async def _forbid(self, writer: asyncio.StreamWriter) -> None:
        """The 403 a websocket-blocking proxy gives, then a polite close."""
        try:
            writer.write(FORBIDDEN)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.target_port)

    async def _pump(self, link: _Link, source: asyncio.StreamReader,
                    sink: asyncio.StreamWriter, *, upstream: bool) -> None:
        while True:
            data = await source.read(65536)
            if upstream and REQUEST_LINE.match(data):
                if self.refusing_websockets and is_websocket_upgrade(data):
                    # A later request on a kept-alive connection asks for a websocket.
                    self.websockets_refused += 1
                    self.links.discard(link)
                    await self._forbid(link.client)
                    link.abort()
                    return
                link.last_request = data.split(b"\r\n", 1)[0].decode("latin-1")
            elif (not upstream and data and self.answer_to_lose is not None
                  and link.last_request.startswith(self.answer_to_lose)):
                self.answer_to_lose = None
                self.answers_lost += 1
                self.links.discard(link)
                link.abort()  # the answer is dropped, the connection reset
                return
            if not data:
                if not link.stalled:
                    # One side finished: finish the other politely, as a real network would.
                    try:
                        sink.write_eof()
                    except (OSError, RuntimeError):
                        pass
                return
            if link.stalled:
                continue  # swallowed: the network has gone quiet
            sink.write(data)
            await sink.drain()

