"""devstack.proxy.FlakyProxy's websocket-refusing mode (`refuse_websockets`): an upgrade gets a
403 and never reaches the server, plain HTTP (a streamed answer included) flows, and the other
modes (cut, refuse, blackhole, the server gone) still work beside it. Raw sockets on loopback
against a small upstream that records what reached it."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from devstack.common import wait_until
from devstack.proxy import FlakyProxy, is_websocket_upgrade

UPGRADE = (b"GET /ws/liveblog/match/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class Upstream(socketserver.ThreadingTCPServer):
    """Answers 101 to an upgrade (then echoes), a stream of lines to /stream, else `200 ok`
    (kept alive); `seen` lists each request line that reached it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.seen: list[str] = []
        self.stream_release = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]


class UpstreamHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            self.serve()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the proxy cut it: what the test wanted

    def serve(self) -> None:
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            self.server.seen.append(head.split(b"\r\n", 1)[0].decode())
            if is_websocket_upgrade(head):
                self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\n\r\n")
                while data := self.request.recv(4096):
                    self.wfile.write(data)
                return
            if head.startswith(b"GET /stream "):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                self.wfile.write(b": first\n\n")
                self.server.stream_release.wait(10)
                self.wfile.write(b": second\n\n")
                self.server.stream_release.wait(10)
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def upstream():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stream_release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream):
    proxy = FlakyProxy(upstream.port).start()
    yield proxy
    proxy.stop()


def connect(proxy: FlakyProxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    return client


def read_until(client: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_to_end(client: socket.socket) -> bytes:
    """Everything until the proxy closes; a reset reads as the end."""
    data = b""
    try:
        while chunk := client.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@pytest.mark.parametrize(("head", "upgrade"), [
    (UPGRADE, True),
    (UPGRADE.replace(b"Upgrade: websocket", b"upgrade:WebSocket"), True),
    (get("/sse/liveblog/match/"), False),
    (UPGRADE.replace(b"Upgrade: websocket", b"Upgrade: h2c"), False),
    (b"not http at all\r\nUpgrade: websocket\r\n\r\n", False),
])
def test_what_counts_as_a_websocket_upgrade(head, upgrade):
    assert is_websocket_upgrade(head) is upgrade


def test_by_default_a_websocket_upgrade_goes_through(proxy, upstream):
    with connect(proxy) as client:
        client.sendall(UPGRADE)
        assert read_until(client, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
        client.sendall(b"echo")
        assert read_until(client, b"echo").endswith(b"echo")
    assert proxy.websockets_refused == 0


def test_refused_upgrades_get_a_403_and_never_reach_the_server(proxy, upstream):
    proxy.refuse_websockets(True)
    with connect(proxy) as client:
        client.sendall(UPGRADE)
        answer = read_to_end(client)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Connection: close" in answer
    assert upstream.seen == []
    assert proxy.websockets_refused == 1
    assert proxy.open_links() == 0

    # Plain HTTP flows, and a kept-alive connection that asks for a websocket later is refused.
    with connect(proxy) as client:
        client.sendall(get("/sse/liveblog/match/"))
        assert read_until(client, b"ok").endswith(b"\r\n\r\nok")
        client.sendall(UPGRADE)
        assert read_to_end(client).startswith(b"HTTP/1.1 403 ")
    assert upstream.seen == ["GET /sse/liveblog/match/ HTTP/1.1"]
    assert proxy.websockets_refused == 2

    # Allowed again: new connections upgrade.
    proxy.refuse_websockets(False)
    with connect(proxy) as client:
        client.sendall(UPGRADE)
        assert read_until(client, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")


def test_the_other_modes_work_beside_it(proxy, upstream):
    proxy.refuse_websockets(True)
    # A streamed answer flows; a cut resets it.
    with connect(proxy) as client:
        client.sendall(get("/stream"))
        assert b": first" in read_until(client, b": first")
        assert proxy.open_requests("GET /str") == ["GET /stream HTTP/1.1"]
        assert proxy.open_requests("GET /sse/") == []
        assert proxy.cut() == 1
        assert read_to_end(client) == b""

    # Blackhole: the stream stays open and silent.
    with connect(proxy) as client:
        client.sendall(get("/stream"))
        read_until(client, b": first")
        assert proxy.blackhole() == 1
        upstream.stream_release.set()
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(4096)
    upstream.stream_release.clear()

    # A connection cut while its request head is still arriving.
    with connect(proxy) as client:
        client.sendall(b"GET /slow HTTP/1.1\r\n")
        wait_until(lambda: proxy.open_links() == 1, timeout=5, message="the link to be held")
        assert proxy.cut() == 1
        assert read_to_end(client) == b""

    # Refused: reset at once, before any head.
    proxy.refuse(True)
    with connect(proxy) as client:
        assert read_to_end(client) == b""
    proxy.refuse(False)

    # The server gone: plain requests fail, upgrades are still the proxy's 403.
    upstream.shutdown()
    upstream.server_close()
    with connect(proxy) as client:
        client.sendall(get("/"))
        assert read_to_end(client) == b""
    with connect(proxy) as client:
        client.sendall(UPGRADE)
        assert read_to_end(client).startswith(b"HTTP/1.1 403 ")
