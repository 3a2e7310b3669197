"""When the garbage collector may stop the event loop.

A full (generation 2) collection walks every tracked object, so its pause grows with the open
connections (about 60 ms at 1000 readers, far more at 10 000), and Python starts one whenever
allocations cross its thresholds: that is, in the middle of a fan-out, the one moment a pause
delays every reader. Here full collections are taken out of Python's hands and run right after
a delivery has gone out (or in a quiet heartbeat), at most once per interval: the pause lands
where nobody waits. Young collections stay automatic; they are short.
"""

import gc
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# Far beyond any real count: automatic full collections never trigger.
_NO_AUTOMATIC_FULL = 10**9
_last_full = time.monotonic()
_installed = False


def install() -> None:
    """Freeze what startup built (it lives as long as the process) and take over full
    collections. Called once, when the ASGI application is built."""
    global _installed
    if not settings.LIVEBLOG_GC_POLICY:
        return
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_AUTOMATIC_FULL)
    _installed = True


def collect_if_due(*, now: float | None = None) -> bool:
    """Run a full collection if the interval has passed (call it when nothing waits)."""
    global _last_full
    if not _installed:
        return False
    now = time.monotonic() if now is None else now
    if now - _last_full < settings.LIVEBLOG_GC_FULL_EVERY_SECONDS:
        return False
    started = time.monotonic()
    gc.collect()
    _last_full = time.monotonic()
    logger.debug("full collection in %.1f ms", (_last_full - started) * 1000)
    return True
