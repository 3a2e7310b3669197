"""Sending key events to push services, outside the request that published them.

A service marks the post pushed and, on commit, hands `(blog, post, seq)` to `enqueue`. In a
server process the job goes to a small in-memory queue with one slot per blog: a newer key
event of a blog replaces one still waiting (coalescing: a subscription gets the newest, and the
per-blog `Topic` lets the push service replace an undelivered one too), and a blog's batch that
is running stops handing out the older message once a newer one waits. A dispatcher thread takes
one blog at a time, builds the payload once, and sends to its subscriptions through a fixed pool
of threads (LIVEBLOG_PUSH_WORKERS), each request with connect and read timeouts. A push service
that keeps timing out in a batch is skipped for the rest of it, so it holds up nobody else.
404/410 delete the subscription; other failures are recorded on it and logged (at most once a
minute per push service), never retried: the next key event tries again.

Threads, not tasks on the server's event loop: pywebpush and its encryption are synchronous and
CPU-bound (an ECDH key agreement per subscription), the subscriptions are read from the database
synchronously, and none of that may run on the loop that serves every reader. The pool bounds
what a thousand subscriptions cost at any moment.

A process that serves nothing (a management command such as `liveblog_publish_due` run by cron)
sends in the committing thread instead, so the command does not exit before its pushes leave.
With several server processes, the process that committed the post sends its pushes (the post's
`pushed_at` is set in that transaction, so no other process sends them again); if it dies before
they leave, they are lost — a push is at most once, the live feed stays the record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.db import close_old_connections

from ..live import broadcast
from . import endpoints, transport, vapid
from .payload import payload

logger = logging.getLogger(__name__)

# Blogs with a key event waiting; beyond it the oldest waiting one is dropped (logged).
MAX_WAITING_BLOGS = 1000
# Consecutive failures (timeouts, refused connections) of one push service in a batch after
# which the rest of its subscriptions are skipped for that batch.
HOST_FAILURES_TO_SKIP = 3
LOG_EVERY_SECONDS = 60
GONE = (404, 410)

Post = Callable[..., int]  # transport.post's shape: url, body, headers, timeout -> status


@dataclass(frozen=True)
class Job:
    blog_id: int
    post_id: int
    seq: int
    committed: float = field(default_factory=time.time)


@dataclass
class Report:
    """What one batch did (logged; the tests and the bench read it)."""

    job: Job
    sent: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: int = 0
    superseded: bool = False


def _refused_address(error: requests.ConnectionError) -> bool:
    """Whether the connection was refused by the address check (transport.RefusedAddress,
    wrapped by urllib3's MaxRetryError in requests' ConnectionError)."""
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, transport.RefusedAddress)


def topic(blog_id: int) -> str:
    """The push `Topic` of a blog's key events (≤ 32 characters of the URL-safe base64
    alphabet): a push service keeps only the newest undelivered message per topic."""
    return f"liveblog-{blog_id}"


class _Breaker:
    """Counts consecutive failures per push service (host) within one batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def open(self, host: str) -> bool:
        with self._lock:
            return self._failures.get(host, 0) >= HOST_FAILURES_TO_SKIP

    def record(self, host: str, ok: bool) -> None:
        with self._lock:
            self._failures[host] = 0 if ok else self._failures.get(host, 0) + 1


_logged_at: dict[str, float] = {}


def _log_limited(key: str, message: str, *args: object) -> None:
    """Warn at most once a minute per key (a push service that is down fails every send)."""
    now = time.monotonic()
    if now - _logged_at.get(key, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
        _logged_at[key] = now
        logger.warning(message, *args)


class Sender:
    def __init__(self, *, workers: int | None = None, post: Post = transport.post) -> None:
        self.workers = workers or settings.LIVEBLOG_PUSH_WORKERS
        self._post = post
        self._pending: OrderedDict[int, Job] = OrderedDict()
        self._cond = threading.Condition()
        self._busy = False
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.reports: list[Report] = []  # the last few, newest last
        self.on_report: Callable[[Report], None] | None = None

    # --- The queue -------------------------------------------------------------------------

    def enqueue(self, job: Job) -> None:
        with self._cond:
            waiting = self._pending.get(job.blog_id)
            if waiting is not None and waiting.seq >= job.seq:
                return
            if waiting is None and len(self._pending) >= MAX_WAITING_BLOGS:
                dropped = self._pending.popitem(last=False)[1]
                _log_limited("queue", "push queue full: dropped post %s", dropped.post_id)
            self._pending[job.blog_id] = job
            self._cond.notify()
        self._start()

    def _newer_waiting(self, job: Job) -> bool:
        with self._cond:
            waiting = self._pending.get(job.blog_id)
            return waiting is not None and waiting.seq > job.seq

    def _start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="liveblog-push",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                self._busy = True
                job = self._pending.popitem(last=False)[1]
            close_old_connections()
            try:
                self.deliver(job)
            except Exception:  # noqa: BLE001 - the sender must outlive any one batch
                logger.exception("push for post %s failed", job.post_id)
            finally:
                close_old_connections()

    def idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting or being sent (tests, the bench); True if so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # --- One batch ---------------------------------------------------------------------------

    def deliver(self, job: Job) -> Report | None:
        """Send the post's push to every subscription of its blog; record what happened."""
        from .. import selectors, services  # not at import: services imports this module

        post = selectors.push_post(job.blog_id, job.post_id)
        if post is None:  # deleted (or no longer a key event) before its push went out
            return None
        report = Report(job=job)
        self._send_all(job, payload(post, job.seq),
                       selectors.push_subscriptions(job.blog_id), report)
        services.push_deliveries_record(sent=report.sent, gone=report.gone, failed=report.failed)
        self._reported(report)
        return report

    def _send_all(self, job: Job, body: bytes, subscriptions: Iterable[tuple],
                  report: Report) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="liveblog-push-send")
        breaker = _Breaker()
        slots = threading.BoundedSemaphore(self.workers * 2)  # bounded work in the pool
        futures = []
        for subscription in subscriptions:
            if self._newer_waiting(job):  # the rest get the newer key event instead
                report.superseded = True
                break
            if breaker.open(endpoints.endpoint_host(subscription[1])[0]):
                report.skipped += 1
                continue
            slots.acquire()
            future = self._pool.submit(self._send_one, job, subscription, body, breaker)
            future.add_done_callback(lambda _future: slots.release())
            futures.append(future)
        wait(futures)
        for future in futures:
            subscription_id, status, detail = future.result()
            if status == "sent":
                report.sent.append(subscription_id)
            elif status == "gone":
                report.gone.append(subscription_id)
            elif status == "skipped":
                report.skipped += 1
            else:
                report.failed[subscription_id] = detail

    def _send_one(self, job: Job, subscription: tuple, body: bytes,
                  breaker: _Breaker) -> tuple[int, str, str]:
        subscription_id, endpoint, p256dh, auth = subscription
        host = endpoints.endpoint_host(endpoint)[0]
        if breaker.open(host):  # tripped while this one waited for a thread
            return subscription_id, "skipped", ""
        from pywebpush import WebPusher  # not at import: it brings aiohttp, unused here

        try:
            encrypted = WebPusher(
                {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
            ).encode(body, "aes128gcm")["body"]
            status = self._post(endpoint, body=encrypted, headers={
                "TTL": str(settings.LIVEBLOG_PUSH_TTL_SECONDS),
                "Urgency": "high",
                "Topic": topic(job.blog_id),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Authorization": vapid.authorization(endpoint),
            }, timeout=(settings.LIVEBLOG_PUSH_CONNECT_SECONDS,
                        settings.LIVEBLOG_PUSH_READ_SECONDS))
        except requests.ConnectionError as error:
            if _refused_address(error):  # resolves inside: never sent to, and forgotten
                _log_limited(f"refused:{host}", "push to %s refused: %s", host, error)
                return subscription_id, "gone", "refused address"
            breaker.record(host, ok=False)
            _log_limited(host, "push to %s failed: %s", host, error)
            return subscription_id, "failed", type(error).__name__
        except (requests.RequestException, OSError) as error:
            breaker.record(host, ok=False)
            _log_limited(host, "push to %s failed: %s", host, error)
            return subscription_id, "failed", type(error).__name__
        except Exception as error:  # noqa: BLE001 - a bad stored key fails one send, not all
            _log_limited(f"error:{host}", "push to %s failed: %r", host, error)
            return subscription_id, "failed", type(error).__name__
        breaker.record(host, ok=status < 500)
        if status in GONE:
            return subscription_id, "gone", f"HTTP {status}"
        if 200 <= status < 300:
            return subscription_id, "sent", ""
        _log_limited(f"status:{host}", "push to %s answered %s", host, status)
        return subscription_id, "failed", f"HTTP {status}"

    def _reported(self, report: Report) -> None:
        self.reports = [*self.reports[-9:], report]
        # The commit's wall-clock time is in the line: the bench reads it (bench/push.py).
        logger.info(
            "push for post %s committed at %.6f: %d sent, %d gone, %d failed, %d skipped%s "
            "in %.2f s", report.job.post_id, report.job.committed, len(report.sent),
            len(report.gone), len(report.failed), report.skipped,
            " (superseded)" if report.superseded else "", time.time() - report.job.committed,
        )
        if self.on_report is not None:
            self.on_report(report)


_sender: Sender | None = None
_lock = threading.Lock()


def current() -> Sender:
    """This process's sender, made on first use."""
    global _sender
    with _lock:
        if _sender is None:
            _sender = Sender()
        return _sender


def install(sender: Sender | None) -> None:
    """Tests: use this sender (None: make a new one on next use)."""
    global _sender
    with _lock:
        _sender = sender


def _in_server() -> bool:
    from .. import scheduler  # not at import: the scheduler imports services lazily too

    return broadcast.serving() or scheduler.server_scheduler() is not None


def enqueue(*, blog_id: int, post_id: int, seq: int) -> None:
    """Called on commit of a key event's publication. Never raises into the writer."""
    if not settings.LIVEBLOG_PUSH_SENDER:
        return
    job = Job(blog_id=blog_id, post_id=post_id, seq=seq)
    if _in_server():
        current().enqueue(job)
    else:  # a management command: send now, before it exits
        current().deliver(job)
