"""Scheduled submissions go out on time: every server process publishes those that fell due.

A daemon thread per process calls `services.submissions_publish_due()` every
LIVEBLOG_SCHEDULER_SECONDS (default 0.5). The schedule lives in the database (Submission.
publish_at), so a post that fell due while no server ran goes out as soon as one starts, and
several processes may run this at once: the service re-reads each submission under its blog's
lock, so one publishes it and the others find it published.

It starts when a server imports the ASGI application (project/asgi.py; daphne sends no lifespan
event to start it from), unless LIVEBLOG_SCHEDULER is off: the pytest process turns it off
(tests/plain_http.py) and calls the service itself, while the servers tests start run it.
`manage.py liveblog_publish_due [--loop]` runs the same for deployments that prefer cron.

A thread, not a task on the server's loop: the service is synchronous database work, which must
never run on the loop. Its broadcasts are handed to the server loop like any write's
(liveblog/live/broadcast.py). It never dies of a database error: it logs and tries again at the
next tick, closing the thread's connection around each run (a restarted database leaves a dead
one behind).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

# While the database keeps failing, say so at most this often (it is tried every tick).
FAILURE_LOG_SECONDS = 60


def _publish_due() -> int:
    from . import services  # not at import: project/asgi.py imports this before any request

    return len(services.submissions_publish_due())


class Scheduler:
    """Calls `publish` every `interval` seconds in a daemon thread until stopped."""

    def __init__(self, *, interval: float, publish: Callable[[], int] = _publish_due) -> None:
        self.interval = interval
        self._publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self._failure_logged_at = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Scheduler:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run, name="liveblog-scheduler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run(self) -> None:
        """Tick at once (what fell due while no server ran goes out now), then every
        `interval` until stopped."""
        self.tick()
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> int:
        """One run of the service; the number published. Never raises."""
        close_old_connections()
        try:
            published = self._publish()
        except Exception as error:  # noqa: BLE001 - the next tick tries again
            self._failed(error)
            return 0
        finally:
            close_old_connections()
        if self._failing_since is not None:
            logger.warning("publishing works again after %.0f s",
                           time.monotonic() - self._failing_since)
            self._failing_since = None
        if published:
            logger.info("published %d scheduled post(s)", published)
        return published

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            self._failure_logged_at = now
            logger.error("could not publish due posts; retrying every %s s",
                         self.interval, exc_info=error)


_scheduler: Scheduler | None = None
_lock = threading.Lock()


def start_in_server() -> Scheduler | None:
    """This process's scheduler, started once (project/asgi.py); None when turned off."""
    global _scheduler
    if not settings.LIVEBLOG_SCHEDULER:
        return None
    with _lock:
        if _scheduler is None:
            _scheduler = Scheduler(interval=settings.LIVEBLOG_SCHEDULER_SECONDS)
        return _scheduler.start()


def server_scheduler() -> Scheduler | None:
    """The scheduler started by `start_in_server`, if any (tests)."""
    return _scheduler
