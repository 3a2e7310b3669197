"""HTTP to push services, only ever to the addresses endpoints.py allows, checked at the
moment of connecting.

A name checked when the subscription was stored may point elsewhere by the time a push goes
out (DNS rebinding, or a record changed on purpose). So each new connection resolves the host
once, refuses it if any address is not allowed, connects to one of those vetted addresses
itself and checks the peer it actually reached; TLS is then verified against the host name as
usual (urllib3 keeps `host` for SNI and the certificate check). No proxies from the
environment, no redirects: a push service answers, it does not send us elsewhere.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from . import endpoints


class RefusedAddress(NewConnectionError):
    """The host resolved to an address the server must not connect to."""


def _vetted_socket(connection: HTTPConnection) -> socket.socket:
    host, port = connection.host, connection.port
    try:
        addresses = endpoints.vetted_addresses(host, port)
    except endpoints.EndpointRefused as refused:
        raise RefusedAddress(connection, f"refused {host}: {refused.detail}") from None
    last_error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(connection.timeout)
            sock.connect((address, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not endpoints.address_allowed(sock.getpeername()[0]):
                raise RefusedAddress(connection, f"refused {host}: connected to a private address")
        except TimeoutError:
            sock.close()
            raise ConnectTimeoutError(connection, f"connecting to {host} timed out") from None
        except RefusedAddress:
            sock.close()
            raise
        except OSError as error:
            sock.close()
            last_error = error
            continue
        return sock
    raise NewConnectionError(connection, f"could not connect to {host}: {last_error}")


class VettedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _vetted_socket(self)


class VettedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _vetted_socket(self)


class VettedHTTPPool(HTTPConnectionPool):
    ConnectionCls = VettedHTTPConnection


class VettedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = VettedHTTPSConnection


class VettedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": VettedHTTPPool,
                                                   "https": VettedHTTPSPool}


class PushSession(requests.Session):
    """A requests session that only connects to vetted addresses and never follows a
    redirect or an environment proxy."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.max_redirects = 0
        adapter = VettedAdapter(pool_connections=16, pool_maxsize=4, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        kwargs["proxies"] = {}
        return super().request(*args, **kwargs)


_local = threading.local()


def session() -> PushSession:
    """One session per sender thread (requests sessions are not thread-safe); each keeps its
    connections to push services alive between sends."""
    if getattr(_local, "session", None) is None:
        _local.session = PushSession()
    return _local.session


# Small answers are read (the connection is then reused); anything larger is not read at all.
ANSWER_READ_BYTES = 64 * 1024


def post(url: str, *, body: bytes, headers: dict[str, str],
         timeout: tuple[float, float]) -> int:
    """POST once; the status code. Raises requests' errors (timeouts, refused addresses)."""
    response = session().post(url, data=body, headers=headers, timeout=timeout, stream=True)
    try:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) <= ANSWER_READ_BYTES:
            response.content  # noqa: B018 - read, so that the connection is reused
    finally:
        response.close()
    return response.status_code
