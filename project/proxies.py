"""The client's address behind trusted reverse proxies, for HTTP and websockets alike.

`TrustedProxies` wraps the ASGI application. When the immediate peer is one of
`LIVEBLOG_TRUSTED_PROXIES`, it replaces `scope["client"]` with the right-most `X-Forwarded-For`
entry that is not itself a trusted proxy, and `scope["scheme"]` with `X-Forwarded-Proto`. From
any other peer both headers are ignored: a client cannot choose the address that sign-in
lockouts and throttles count against. (daphne's own `--proxy-headers` trusts every peer, which
is why it is not used.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (scope type, X-Forwarded-Proto) -> scope scheme
SCHEMES = {
    ("http", "http"): "http", ("http", "https"): "https",
    ("websocket", "http"): "ws", ("websocket", "https"): "wss",
}


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """IPs or CIDRs (`10.0.0.0/8`, `::1`); a bad entry is a configuration error, raised."""
    return _parse(tuple(entries))


@lru_cache(maxsize=8)
def _parse(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:1234"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:1234"
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are listed as a.b.c.d.
    return getattr(address, "ipv4_mapped", None) or address


def _header(scope: dict, name: bytes) -> str | None:
    """All values of a header joined by commas, as RFC 9110 allows for lists."""
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ",".join(values) if values else None


class TrustedProxies:
    """ASGI middleware: the real client address and scheme from headers set by trusted proxies."""

    def __init__(self, application: Any, trusted: Iterable[str] | None = None) -> None:
        self.application = application
        self._trusted = None if trusted is None else parse_networks(trusted)

    @property
    def trusted(self) -> tuple[Network, ...]:
        # From settings at each use (parsed once per value), so that tests can override it.
        if self._trusted is None:
            from django.conf import settings

            return parse_networks(settings.LIVEBLOG_TRUSTED_PROXIES)
        return self._trusted

    def is_trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self.trusted)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and self.is_trusted(peer[0]):
            scope = self.resolve(scope)
        await self.application(scope, receive, send)

    def resolve(self, scope: dict) -> dict:
        """A copy of the scope with the forwarded client and scheme; the peer is trusted."""
        scope = dict(scope)
        if forwarded := _header(scope, b"x-forwarded-for"):
            client = self.client_from(forwarded)
            if client is not None:
                scope["client"] = (client, 0)
        proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[-1].strip().lower()
        if (scope["type"], proto) in SCHEMES:
            scope["scheme"] = SCHEMES[scope["type"], proto]
        return scope

    def client_from(self, forwarded: str) -> str | None:
        """The right-most address not a trusted proxy: every entry to its right was appended
        by a proxy we trust, anything to its left may be forged by the client."""
        entries = [entry.strip() for entry in forwarded.split(",")]
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                return None  # garbage where a proxy should have written an address: keep the peer
            if not any(address in network for network in self.trusted):
                return str(address)
        return str(_address(entries[0]))  # all proxies: the left-most is the nearest to the client


def client_address(request_or_scope: HttpRequest | dict) -> str | None:
    """The client's address after TrustedProxies: REMOTE_ADDR of a request, or a scope's client.
    (Also axes' AXES_CLIENT_IP_CALLABLE.)"""
    if isinstance(request_or_scope, dict):
        client = request_or_scope.get("client")
        return client[0] if client else None
    return request_or_scope.META.get("REMOTE_ADDR") or None
