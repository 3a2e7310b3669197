"""Which push subscriptions are accepted, and where the server may send to.

The server POSTs to URLs that readers hand it, so an endpoint must be `https` and every address
its host resolves to must be public: not private, loopback, link-local, multicast, reserved or
unspecified, in IPv4 or IPv6, including IPv4 addresses carried in IPv6 (mapped, 6to4, NAT64).

When a subscription is stored only what needs no DNS is decided (`check_host`): an address
literal must be public, a name must be a dotted public name. The request does not resolve the
name: a resolver the subscriber controls could hold it for seconds, and Django runs the sync
views of a process on one thread. The addresses are checked at every send instead, on the
sender's threads, against the address actually connected to (transport.py): a name that
resolved to a public address once may resolve to an internal one later (DNS rebinding), and a
subscription whose host resolves inside is dropped (sender.py).
LIVEBLOG_PUSH_INSECURE_ENDPOINTS (tests, local development) also accepts `http` and loopback
addresses, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from ..errors import Invalid
from ..models import PushSubscription

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
P256DH_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_BYTES = 16
# The well-known NAT64 prefix (RFC 6052): its last 32 bits are an IPv4 address.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EndpointRefused(Invalid):
    """An endpoint the server will not send to (not https, or not a public address)."""

    code = "endpoint_refused"


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def insecure() -> bool:
    return bool(settings.LIVEBLOG_PUSH_INSECURE_ENDPOINTS)


# --- Addresses ----------------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_allowed(text: str, *, allow_loopback: bool | None = None) -> bool:
    """True when the server may connect to this address. Loopback only when insecure
    endpoints are allowed (tests, development)."""
    try:
        address: Address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return False
    if allow_loopback is None:
        allow_loopback = insecure()
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_ipv4(address)):
        return address_allowed(str(inner), allow_loopback=allow_loopback)
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not (
        address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
        or getattr(address, "is_site_local", False)
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to decide what a name means)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def vetted_addresses(host: str, port: int) -> list[str]:
    """The host's addresses, if every one of them is allowed; EndpointRefused otherwise (one
    internal address among public ones is enough to refuse: the connection could pick it)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise EndpointRefused(f"the endpoint's host does not resolve ({error})") from None
    refused = [address for address in addresses if not address_allowed(address)]
    if refused or not addresses:
        raise EndpointRefused("the endpoint's host is not a public address")
    return addresses


# Names that never leave the machine or the site's network (RFC 6761, 6762, 8375; ICANN's
# reserved .internal), refused without asking DNS.
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")


def check_host(host: str) -> None:
    """EndpointRefused for a host that is certainly not a public push service, decided without
    DNS: a private (etc.) address literal, a single-label name (a search domain would make it
    an internal host) or an internal suffix. Loopback and any name when insecure."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if not address_allowed(host):
            raise EndpointRefused("the endpoint's host is not a public address")
        return
    if insecure():
        return
    name = host.lower().rstrip(".")
    if "." not in name or f".{name}".endswith(INTERNAL_SUFFIXES):
        raise EndpointRefused("the endpoint's host is not a public name")


# --- Subscriptions ------------------------------------------------------------------------------


def _key(keys: dict, name: str, size: int) -> str:
    value = keys.get(name)
    if not isinstance(value, str) or not value or len(value) > 2 * size:
        raise Invalid(f"keys.{name} must be a base64url string of {size} bytes")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Invalid(f"keys.{name} is not base64url") from None
    if len(raw) != size:
        raise Invalid(f"keys.{name} must be {size} bytes, not {len(raw)}")
    return value.rstrip("=")


def clean_endpoint(value: Any) -> str:
    """An endpoint URL the server may POST to: https (http only when insecure), a host and an
    optional port, no credentials, within the length bound. Its addresses are not checked
    here (`vetted_addresses`)."""
    limit = PushSubscription.ENDPOINT_MAX_CHARS
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Invalid(f"endpoint must be a URL of at most {limit} characters")
    if any(ord(char) < 33 or ord(char) > 126 for char in value):
        raise Invalid("endpoint must be a URL without spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise Invalid("endpoint is not a valid URL") from None
    schemes = {"https", "http"} if insecure() else {"https"}
    if parts.scheme not in schemes:
        raise EndpointRefused("endpoint must be an https URL")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise Invalid("endpoint must be a URL with a host, without credentials or a fragment")
    if port == 0:
        raise Invalid("endpoint has no valid port")
    return value


def endpoint_host(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def clean_subscription(data: Any) -> Subscription:
    """A browser's `PushSubscription.toJSON()`: `{"endpoint", "keys": {"p256dh", "auth"}}`
    with an optional `expirationTime` (ignored: the push service tells us when it is gone)."""
    if not isinstance(data, dict):
        raise Invalid("the subscription must be a JSON object")
    unknown = sorted(set(data) - {"endpoint", "keys", "expirationTime"})
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    expiration = data.get("expirationTime")
    if expiration is not None and (isinstance(expiration, bool)
                                   or not isinstance(expiration, int | float)):
        raise Invalid("expirationTime must be a number or null")
    keys = data.get("keys")
    if not isinstance(keys, dict) or set(keys) - {"p256dh", "auth"}:
        raise Invalid("keys must be an object with p256dh and auth")
    endpoint = clean_endpoint(data.get("endpoint"))
    p256dh = _key(keys, "p256dh", P256DH_BYTES)
    if base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))[0] != 4:
        raise Invalid("keys.p256dh must be an uncompressed P-256 point (starting 0x04)")
    return Subscription(endpoint=endpoint, p256dh=p256dh, auth=_key(keys, "auth", AUTH_BYTES))


def client_network(address: str | None) -> str:
    """What one client's subscriptions are counted by: its IPv4 address, or its IPv6 /64 (a
    household or a phone gets a whole /64, so counting single IPv6 addresses bounds nothing)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)
