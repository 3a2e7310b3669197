"""The websocket origin check (project/origins.py): full origins only — scheme, host and port."""

import pytest
import websockets
from django.test import override_settings

from devstack.daphne import DaphneServer, Site, feed_url
from project.origins import Origin, origin_allowed, parse_origin
from tests.support.comms import Reader
from tests.support.ws import connect, open_feed

LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]


@pytest.mark.parametrize(("value", "parsed"), [
    ("http://127.0.0.1:8000", Origin("http", "127.0.0.1", 8000)),
    ("https://Live.Example.com", Origin("https", "live.example.com", 443)),
    ("http://live.example.com", Origin("http", "live.example.com", 80)),
    ("http://[::1]:8000", Origin("http", "[::1]", 8000)),
    ("null", None),
    ("", None),
    ("file://", None),
    ("ws://127.0.0.1:8000", None),
    ("chrome-extension://abcdef", None),
    ("http://127.0.0.1:8000/", None),
    ("http://127.0.0.1:8000/path", None),
    ("http://user@127.0.0.1:8000", None),
    ("http://127.0.0.1:notaport", None),
    ("http://127.0.0.1:99999", None),
    ("http://127.0.0.1:8000 http://evil.example", None),
])
def test_parse_origin(value, parsed):
    assert parse_origin(value) == parsed


@override_settings(ALLOWED_HOSTS=LOCAL_HOSTS, CSRF_TRUSTED_ORIGINS=[])
@pytest.mark.parametrize(("origin", "port", "allowed"), [
    ("http://127.0.0.1:8000", 8000, True),
    ("https://127.0.0.1:8000", 8000, True),  # a TLS terminator on the same port
    ("http://localhost:8000", 8000, True),
    ("http://[::1]:8000", 8000, True),
    ("http://127.0.0.1:9999", 8000, False),  # another program on this machine
    ("http://127.0.0.1", 8000, False),
    ("http://127.0.0.1", 80, True),  # the default port is left out of an Origin
    ("https://localhost", 443, True),
    ("https://localhost", 80, False),
    ("http://evil.example:8000", 8000, False),
    ("http://127.0.0.1.evil.example:8000", 8000, False),
    ("ws://127.0.0.1:8000", 8000, False),
    ("null", 8000, False),
    (None, 8000, False),
    ("http://127.0.0.1:8000", None, False),  # a unix socket: no port to compare with
])
def test_allowed_hosts_count_on_the_served_port_only(origin, port, allowed):
    assert origin_allowed(origin, port) is allowed


@override_settings(ALLOWED_HOSTS=[".example.com"], CSRF_TRUSTED_ORIGINS=[])
@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://example.com:8000", True),
    ("http://live.example.com:8000", True),
    ("http://badexample.com:8000", False),
    ("http://example.com.evil:8000", False),
])
def test_a_dotted_allowed_host_covers_its_subdomains(origin, allowed):
    assert origin_allowed(origin, 8000) is allowed


@override_settings(ALLOWED_HOSTS=["*"], CSRF_TRUSTED_ORIGINS=[])
def test_a_star_in_allowed_hosts_lets_no_origin_in():
    assert not origin_allowed("http://evil.example:8000", 8000)
    assert not origin_allowed("http://127.0.0.1:8000", 8000)


@override_settings(ALLOWED_HOSTS=["live.example.com"],
                   CSRF_TRUSTED_ORIGINS=["https://live.example.com", "https://*.news.example",
                                         "http://127.0.0.1:8080"])
@pytest.mark.parametrize(("origin", "allowed"), [
    # Behind a proxy: daphne listens on 8001, browsers come from https on 443.
    ("https://live.example.com", True),
    ("https://live.example.com:443", True),
    ("http://live.example.com", False),
    ("https://live.example.com:8443", False),
    ("https://desk.news.example", True),
    ("https://news.example", True),
    ("http://desk.news.example", False),
    ("https://evilnews.example", False),
    ("http://127.0.0.1:8080", True),
    ("http://127.0.0.1:8001", False),  # not an allowed host
])
def test_csrf_trusted_origins_are_taken_exactly(origin, allowed):
    assert origin_allowed(origin, 8001) is allowed


@override_settings(ALLOWED_HOSTS=[], DEBUG=True, CSRF_TRUSTED_ORIGINS=[])
def test_debug_with_no_allowed_hosts_allows_what_django_allows():
    assert origin_allowed("http://localhost:8000", 8000)
    assert not origin_allowed("http://evil.example:8000", 8000)


@pytest.mark.django_db
@pytest.mark.parametrize(("origin", "port", "connected"), [
    (b"http://127.0.0.1", 80, True),
    (b"http://127.0.0.1:8000", 80, False),
    (b"https://127.0.0.1", 80, False),
])
async def test_the_asgi_application_checks_the_served_port(blog, origin, port, connected):
    reader = Reader(f"/ws/liveblog/{blog.slug}/", headers=[(b"origin", origin)])
    reader.communicator.scope["server"] = ("127.0.0.1", port)
    accepted, _ = await reader.communicator.connect(timeout=3)
    assert accepted is connected
    await reader.communicator.disconnect()


async def test_two_origin_headers_are_refused():
    reader = Reader("/ws/liveblog/any/", headers=[(b"origin", b"http://127.0.0.1"),
                                                  (b"origin", b"http://127.0.0.1")])
    accepted, _ = await reader.communicator.connect(timeout=3)
    assert not accepted


# --- Through a real daphne ------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = Site.create(tmp_path_factory.mktemp("origins"))
    server = DaphneServer(site, CSRF_TRUSTED_ORIGINS="https://live.example.test").start()
    yield server
    server.stop()


def origin_cases(port: int) -> dict[str, str | None]:
    return {
        "missing": None,
        "null": "null",
        "another port": f"http://127.0.0.1:{port + 1}",
        "the default port": "http://127.0.0.1",
        "ws scheme": f"ws://127.0.0.1:{port}",
        "another host": f"http://evil.example:{port}",
        "http for a trusted https origin": "http://live.example.test",
        "another port of a trusted origin": "https://live.example.test:8443",
    }


@pytest.mark.server
@pytest.mark.parametrize("case", list(origin_cases(0)))
async def test_daphne_refuses_the_handshake_from_other_origins(server, case):
    origin = origin_cases(server.port)[case]
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(feed_url(server.ws_url, server.site.slug), origin=origin):
            pass
    assert refused.value.response.status_code == 403, refused.value


@pytest.mark.server
@pytest.mark.parametrize("origin", ["{url}", "https://live.example.test",
                                    "http://localhost:{port}"])
async def test_daphne_accepts_the_sites_own_origins(server, origin):
    origin = origin.format(url=server.url, port=server.port)
    ws, hello, _ = await open_feed(feed_url(server.ws_url, server.site.slug), origin=origin)
    await ws.close()
    assert hello["type"] == "hello"
