"""The websocket origin check: a handshake is accepted only from a full origin of this site.

channels' AllowedHostsOriginValidator compares the host alone, so `http://127.0.0.1:9999` (any
other program on the machine) passed for a site on :8000. A browser sends cookies with a
websocket handshake whatever page opened it, and the `post` frame acts on them, so the origin
is all that stands between another page and an author's session. Accepted origins:

- each entry of CSRF_TRUSTED_ORIGINS, exactly (scheme, host, port; `https://*.example.com`
  covers the subdomains, as Django's CSRF check reads it). Behind a proxy this is the list.
- `http://` or `https://` + an ALLOWED_HOSTS host on the port this server listens on
  (scope["server"]): the embedded default, where the browser talks to daphne itself. A
  `.example.com` entry covers the domain and its subdomains, as in Django's host check; `*`
  gives no origin (it would let every site in), so such a deployment lists its origins in
  CSRF_TRUSTED_ORIGINS.

A missing Origin, `null`, anything that is not a bare http(s) origin, or another scheme, host or
port is refused before the handshake (HTTP 403), as channels' validator does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
# Django's own defaults when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


class Origin(NamedTuple):
    scheme: str
    host: str  # lower case; an IPv6 address in brackets, as in a Host header
    port: int


def parse_origin(value: str) -> Origin | None:
    """`scheme://host[:port]` with nothing else, or None (`null`, paths, user info, junk)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.password is not None or parts.path or parts.query or parts.fragment:
        return None
    if any(char.isspace() for char in value):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Origin(parts.scheme, host.lower(), port or DEFAULT_PORTS[parts.scheme])


def _trusted(origin: Origin, trusted: Iterable[str]) -> bool:
    for entry in trusted:
        wildcard = "://*." in entry
        pattern = parse_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if pattern is None or (pattern.scheme, pattern.port) != (origin.scheme, origin.port):
            continue
        if origin.host == pattern.host or wildcard and origin.host.endswith("." + pattern.host):
            return True
    return False


def _served_host(origin: Origin, server_port: int | None, allowed_hosts: list[str]) -> bool:
    if server_port is None or origin.port != server_port:
        return False
    return validate_host(origin.host, [host for host in allowed_hosts if host != "*"])


def origin_allowed(value: str | None, server_port: int | None) -> bool:
    """Whether a handshake with this Origin header, to this listening port, is from the site."""
    origin = parse_origin(value) if value else None
    if origin is None:
        return False
    allowed_hosts = settings.ALLOWED_HOSTS or (DEBUG_HOSTS if settings.DEBUG else [])
    return (_trusted(origin, settings.CSRF_TRUSTED_ORIGINS)
            or _served_host(origin, server_port, allowed_hosts))


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    # Two Origin headers are not something a browser sends: refuse rather than pick one.
    return values[0].decode("latin-1") if len(values) == 1 else None


def _server_port(scope: dict[str, Any]) -> int | None:
    server = scope.get("server")
    return server[1] if server and isinstance(server[1], int) else None


class WebsocketOriginValidator:
    """ASGI middleware for the websocket router: refuses handshakes from other origins."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if origin_allowed(_header(scope, b"origin"), _server_port(scope)):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
