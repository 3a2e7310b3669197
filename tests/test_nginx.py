"""nginx in front of the daphne processes (deploy/nginx.conf.template, devstack/nginx.py): the
README shows exactly the template's production rendering, and the loopback rendering that
`make run-stack`, the scale-out proofs and the stack bench run passes what daphne needs — the
client's address and scheme, the Host, websocket upgrades, and event streams unbuffered.

Upstream here is a small socket server that answers with the request head it got (and, for
/sse/, a first event, then a second only when the test says so), so what nginx sends is seen
byte for byte."""

from __future__ import annotations

import re
import socket
import threading
import urllib.request

import pytest

from devstack.common import REPO
from devstack.nginx import PRODUCTION, TEMPLATE, NginxServer, nginx_server, production, render

pytestmark = pytest.mark.server


def readme_block() -> str:
    """The README's nginx block ("Scale-out and deployment"), unindented."""
    readme = (REPO / "README.md").read_text()
    first = production().splitlines()[0]
    assert f"\n    {first}\n" in readme, "no nginx block in the README"
    block = []
    for line in readme[readme.index(f"    {first}\n"):].splitlines():
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip("\n") + "\n"


def test_the_readme_shows_the_template_rendered_with_the_production_values():
    assert readme_block() == production(), (
        "the README's nginx block is not deploy/nginx.conf.template rendered: regenerate it "
        "with `python -m devstack.nginx`")


def proxying(config: str) -> list[str]:
    """The lines that make nginx a proxy for Liveblog: the upgrade map and the proxy location."""
    return [line for line in config.splitlines()
            if re.match(r"\s*(map |proxy_(?!temp)|client_max_body_size|location / )", line)]


def test_the_loopback_rendering_proxies_exactly_as_production():
    """What runs on loopback differs from the README only in values (addresses, paths, limits,
    no TLS): the proxy directives are the same lines."""
    server = NginxServer([8001, 8002], port=8000)
    server.directory = REPO / "var" / "nginx-example"  # values only; nothing is started
    loopback = render(server.values())
    assert len(proxying(loopback)) == 11
    assert proxying(loopback) == proxying(production())
    assert "listen 127.0.0.1:8000 reuseport" in loopback
    assert ("upstream liveblog { zone liveblog 64k; server 127.0.0.1:8001; "
            "server 127.0.0.1:8002; }") in loopback
    assert "ssl" not in loopback
    assert set(re.findall(r"\{\{(\w+)\}\}", TEMPLATE.read_text())) == set(PRODUCTION)
    with pytest.raises(KeyError, match="no value for"):
        render({})
    with pytest.raises(KeyError, match="not in the template: extra"):
        render({**PRODUCTION, "extra": "1"})


class EchoUpstream:
    """Answers each request with its own head as the body; /sse/ gets a stream that sends one
    event at once and a second when `release` is set."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.release = threading.Event()
        self.heads: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                head += chunk
            self.heads.append(head)
            if head.startswith(b"GET /sse/"):
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
                                   b"data: first\n\n")
                self.release.wait(20)
                connection.sendall(b"data: second\n\n")
                return
            if b"\r\nupgrade: websocket\r\n" in head.lower():
                connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   b"Connection: Upgrade\r\n\r\ntunnelled")
                return
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                               % (len(head), head))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def echo_behind_nginx():
    upstream = EchoUpstream()
    server = NginxServer([upstream.port]).start()
    try:
        yield upstream, server
    finally:
        server.stop()
        upstream.close()


def test_nginx_serves_the_photos_itself(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "goal.jpg").write_bytes(b"\xff\xd8 a photo")
    with nginx_server([1], media_root=tmp_path) as server:  # no daphne behind it at all
        with urllib.request.urlopen(f"{server.url}/media/photos/goal.jpg", timeout=10) as answer:
            assert answer.read() == b"\xff\xd8 a photo"
            assert answer.headers["Content-Type"] == "image/jpeg"
            assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def request_from(address: str, port: int, head: bytes) -> bytes:
    """Send a request head from a chosen loopback source address; what came back, to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(address, 0)) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if ":" in line)}


def test_nginx_passes_the_client_address_scheme_host_and_websocket_upgrade(echo_behind_nginx):
    upstream, server = echo_behind_nginx
    plain = request_from("127.1.0.5", server.port,
                         b"GET /blogs/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         b"X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n" % server.port)
    sent = headers(plain.split(b"\r\n\r\n", 1)[1])
    # The client's own claim stays to the left, where TrustedProxies never looks.
    assert sent["x-forwarded-for"] == "6.6.6.6, 127.1.0.5"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["host"] == f"127.0.0.1:{server.port}"  # the port too: the origin checks need it
    assert sent["connection"] == "close"
    assert "upgrade" not in sent

    answer = request_from("127.1.0.6", server.port,
                 b"GET /ws/liveblog/match/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert answer.endswith(b"\r\n\r\ntunnelled")  # then the upstream closed, and so did nginx
    upgrade = headers(upstream.heads[-1])
    assert upstream.heads[-1].startswith(b"GET /ws/liveblog/match/ HTTP/1.1\r\n")
    assert (upgrade["upgrade"], upgrade["connection"]) == ("websocket", "upgrade")
    assert upgrade["x-forwarded-for"] == "127.1.0.6"


def test_nginx_streams_events_as_they_come(echo_behind_nginx):
    """An event stream's first event reaches the reader while the upstream still holds the
    second: nothing is buffered on the way (X-Accel-Buffering: no)."""
    upstream, server = echo_behind_nginx
    with urllib.request.urlopen(f"{server.url}/sse/liveblog/match/", timeout=10) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.readline() == b"data: first\n"
        upstream.release.set()
        assert response.read() == b"\ndata: second\n\n"
