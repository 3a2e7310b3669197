"""TrustedProxies: X-Forwarded-For and -Proto are believed from trusted peers only, for HTTP and
websockets, and Django then sees the client's address and scheme."""

import pytest
from channels.testing import HttpCommunicator
from django.http import HttpResponse
from django.urls import path

from project.proxies import TrustedProxies, client_address


class Recorder:
    """The inner application: keeps the scope it was called with."""

    def __init__(self):
        self.scopes = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)


def scope(kind="http", peer="10.0.0.2", **headers):
    return {
        "type": kind, "scheme": "http" if kind == "http" else "ws", "client": (peer, 5555),
        "headers": [(name.replace("_", "-").encode(), value.encode())
                    for name, value in headers.items()],
    }


async def seen(middleware, the_scope):
    await middleware(the_scope, None, None)
    return middleware.application.scopes[-1]


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_trusted_peer_gives_the_client_address_and_scheme(kind):
    proxies = TrustedProxies(Recorder(), ["10.0.0.0/8"])
    inner = await seen(proxies, scope(kind, x_forwarded_for="203.0.113.7",
                                      x_forwarded_proto="https"))
    assert inner["client"][0] == "203.0.113.7"
    assert inner["scheme"] == ("https" if kind == "http" else "wss")


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_an_untrusted_peer_cannot_choose_its_address_or_scheme(kind):
    proxies = TrustedProxies(Recorder(), ["10.0.0.0/8"])
    inner = await seen(proxies, scope(kind, peer="198.51.100.9", x_forwarded_for="203.0.113.7",
                                      x_forwarded_proto="https"))
    assert inner["client"] == ("198.51.100.9", 5555)
    assert inner["scheme"] == ("http" if kind == "http" else "ws")


async def test_nobody_is_trusted_by_default(settings):
    assert settings.LIVEBLOG_TRUSTED_PROXIES == []
    inner = await seen(TrustedProxies(Recorder()), scope(peer="127.0.0.1",
                                                         x_forwarded_for="203.0.113.7"))
    assert inner["client"][0] == "127.0.0.1"


@pytest.mark.parametrize(("forwarded", "client"), [
    # The client wrote a forged entry first; our proxies appended the real peer and themselves.
    ("6.6.6.6, 203.0.113.7", "203.0.113.7"),
    ("6.6.6.6, 203.0.113.7, 10.0.0.5", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("203.0.113.7:4711", "203.0.113.7"),
    ("[2001:db8::1]:4711", "2001:db8::1"),
    ("10.0.0.4, 10.0.0.5", "10.0.0.4"),  # only proxies: the one nearest the client
    ("not-an-address", "10.0.0.2"),  # garbage: keep the peer
])
async def test_the_right_most_untrusted_entry_is_the_client(forwarded, client):
    proxies = TrustedProxies(Recorder(), ["10.0.0.0/8"])
    assert (await seen(proxies, scope(x_forwarded_for=forwarded)))["client"][0] == client


async def test_an_ipv4_peer_on_a_dual_stack_socket_is_trusted_as_listed():
    proxies = TrustedProxies(Recorder(), ["127.0.0.1"])
    inner = await seen(proxies, scope(peer="::ffff:127.0.0.1", x_forwarded_for="203.0.113.7"))
    assert inner["client"][0] == "203.0.113.7"


async def test_several_forwarded_for_headers_are_one_list():
    proxies = TrustedProxies(Recorder(), ["10.0.0.0/8"])
    the_scope = scope()
    the_scope["headers"] += [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.7")]
    assert (await seen(proxies, the_scope))["client"][0] == "203.0.113.7"


async def test_the_setting_is_read_at_use(settings):
    settings.LIVEBLOG_TRUSTED_PROXIES = ["127.0.0.1"]
    inner = await seen(TrustedProxies(Recorder()), scope(peer="127.0.0.1",
                                                         x_forwarded_for="203.0.113.7"))
    assert client_address(inner) == "203.0.113.7"


def test_a_bad_proxy_entry_is_a_configuration_error():
    with pytest.raises(ValueError):
        TrustedProxies(Recorder(), ["not-a-network"])


async def test_django_sees_the_address_and_scheme_through_the_application(settings):
    """The real stack (project.asgi): REMOTE_ADDR and is_secure() come from the proxy's headers."""
    from project.asgi import application

    settings.LIVEBLOG_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.ROOT_URLCONF = __name__
    communicator = HttpCommunicator(application, "GET", "/echo/", headers=[
        (b"host", b"127.0.0.1"), (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
    ])
    communicator.scope["client"] = ("127.0.0.1", 4000)
    response = await communicator.get_response(timeout=5)
    assert response["body"] == b"203.0.113.7 True"


def _echo(request):
    return HttpResponse(f"{client_address(request)} {request.is_secure()}")


urlpatterns = [path("echo/", _echo)]  # this module is the URLconf of the test above
