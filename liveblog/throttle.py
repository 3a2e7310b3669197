"""API throttles: fixed windows counted in Django's cache, shared by every process when the cache
is Redis (REDIS_URL), local to the process with the in-memory default.

A request is charged `cost` units in its bucket's current window (`cache.add` starts a window,
`cache.incr` charges it; both are atomic on locmem and on Redis). Over the limit, the caller is
told how many seconds remain in the window: the `Retry-After` of its 429. A fixed window lets a
client spend up to twice the limit across a window boundary; that is the price of one counter
per client, and the limits below are set with it in mind.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

log = logging.getLogger(__name__)
# A window's counter outlives its window a little, so a late incr never restarts it.
EXPIRY_SLACK_SECONDS = 5
clock = time.time  # tests fix it, so that no window ends mid-test


@dataclass(frozen=True)
class Rate:
    limit: int  # units per window
    seconds: int  # window length

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`"60/60"`: 60 units per 60 seconds."""
        limit, _, seconds = text.partition("/")
        rate = cls(int(limit), int(seconds or 60))
        if rate.limit < 1 or rate.seconds < 1:
            raise ValueError(f"a rate needs a positive limit and window: {text!r}")
        return rate


def charge(bucket: str, key: str, rate: Rate, cost: int = 1) -> int:
    """Charge `cost` to `key` in `bucket`; 0 when within the rate, else the seconds to wait.

    A cache that cannot be reached (Redis down) lets the request through: a throttle must never
    turn an outage of the cache into an outage of the site (writes keep working without Redis).
    """
    now = clock()
    window = int(now // rate.seconds)
    cache_key = f"throttle:{bucket}:{key}:{window}"
    try:
        used = _add_or_incr(cache_key, cost, rate.seconds + EXPIRY_SLACK_SECONDS)
    except Exception:  # any cache failure: let the request through
        log.warning("throttle cache unavailable; %s not counted", bucket, exc_info=True)
        return 0
    if used <= rate.limit:
        return 0
    return max(1, math.ceil((window + 1) * rate.seconds - now))


def _add_or_incr(cache_key: str, cost: int, timeout: int) -> int:
    cache = caches[settings.LIVEBLOG_THROTTLE_CACHE]
    if cache.add(cache_key, cost, timeout):
        return cost
    try:
        return cache.incr(cache_key, cost)
    except ValueError:  # expired between add and incr: this request starts the window
        cache.add(cache_key, cost, timeout)
        return cost
