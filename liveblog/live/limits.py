"""What one client may cost: a budget of frames per socket, and a number of sockets per address.

Both are per process, kept in memory: a check costs no I/O, so a flood is refused at the price of
parsing it. Behind a balancer each process counts on its own (README, "Security").
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from django.conf import settings


class FrameBudget:
    """A token bucket over a socket's incoming frames: `burst` frames at once, refilled at
    `rate` a second. A frame over budget still costs a token (the balance goes negative), so a
    client that ignores `retry_after` only digs deeper; `burst` frames in a row over budget and
    it is abusive."""

    __slots__ = ("_rate", "_burst", "_clock", "_tokens", "_at", "_over")

    def __init__(self, *, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._over = 0  # frames over budget in a row

    def take(self) -> float:
        """Spend one frame: 0 when within budget, else the seconds until one is (retry_after)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1
        if self._tokens >= 0:
            self._over = 0
            return 0.0
        self._over += 1
        return -self._tokens / self._rate

    @property
    def exhausted(self) -> bool:
        """Sent `burst` frames in a row past the budget: close the socket (1008)."""
        return self._over >= self._burst


def retry_after_seconds(wait: float) -> int:
    """Whole seconds, never 0: a client told to retry after 0 s would not slow down."""
    return max(1, math.ceil(wait))


def _counted(address: str | None) -> bool:
    """Loopback is this machine: a proxy in front of the server (LIVEBLOG_TRUSTED_PROXIES then
    gives the real client) or the operator. A socket with no address (a Unix socket) is not
    counted either."""
    if address is None:
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True


class AddressSlots:
    """Open sockets per client address, capped. An address is what the server saw, after the
    trusted-proxy rewrite (project/proxies.py)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, address: str | None) -> bool:
        if not _counted(address):
            return True
        count = self._open.get(address, 0)
        if count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str | None) -> None:
        if not _counted(address):
            return
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def count(self, address: str) -> int:
        return self._open.get(address, 0)


_slots: AddressSlots | None = None


def address_slots() -> AddressSlots:
    """This process's sockets per address (its limit read from settings at every connection,
    so a changed setting applies to the next one)."""
    global _slots
    if _slots is None:
        _slots = AddressSlots(settings.LIVEBLOG_MAX_SOCKETS_PER_ADDRESS)
    _slots.limit = settings.LIVEBLOG_MAX_SOCKETS_PER_ADDRESS
    return _slots
