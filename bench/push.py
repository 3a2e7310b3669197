"""push: the time from a key-event post's commit to its Web Push requests reaching the push
services, for `push_subscriptions` subscriptions (default 1000).

One daphne (LIVEBLOG_PUSH_INSECURE_ENDPOINTS=1) and four local push services on loopback
(devstack/push.py, threads of the bench process, each a `ThreadingHTTPServer` answering 201),
the subscriptions spread over them as over a few real push services. Each subscription has a
key pair of its own (the server encrypts for each). The author posts one unmeasured key event
(a fresh process imports pywebpush and signs its VAPID tokens), then `push_runs` measured ones,
each after the previous one's pushes have all arrived. The commit time is the sender's own
(`time.time()` in the post's on-commit callback, which its log line gives); arrival is when the
receiver has read the request's body. p50/p99/max are over every arrival of every run; the
result also gives the time to the last subscription's push (median over runs) and the author's
create call (which must not grow with the subscriptions).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from devstack.daphne import ApiClient, Site
from devstack.push import BrowserKeys, PushReceiver

from .processes import BenchError, QuietDaphne, liveblog_server, log_issues
from .report import summary
from .scenarios import Config, fresh_dir, liveblog_author

RECEIVERS = 4
ARRIVAL_TIMEOUT = 60.0

SUBSCRIBE = """
import json
from liveblog.models import PushSubscription
from liveblog import selectors
blog_id = selectors.blog_id({slug!r})
rows = json.load(open({path!r}))
PushSubscription.objects.bulk_create(
    [PushSubscription(blog_id=blog_id, endpoint=row["endpoint"], p256dh=row["keys"]["p256dh"],
                      auth=row["keys"]["auth"]) for row in rows], batch_size=500)
print(PushSubscription.objects.filter(blog_id=blog_id).count())
"""


def _committed_at(log: str, post_id: int) -> float | None:
    found = re.search(rf"push for post {post_id} committed at ([0-9.]+)", log)
    return float(found.group(1)) if found else None


def push(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    count = config.push_subscriptions
    site = Site.create(fresh_dir(config.work / "push"))
    receivers = [PushReceiver() for _ in range(RECEIVERS)]
    try:
        rows = [{"endpoint": receivers[n % RECEIVERS].url(f"/push/{n}"),
                 "keys": BrowserKeys().subscription("")["keys"]} for n in range(count)]
        path = site.directory / "subscriptions.json"
        path.write_text(json.dumps(rows))
        output = site.manage("shell", "-c", SUBSCRIBE.format(slug=site.slug, path=str(path)))
        stored = int(output.split()[-1])
        if stored != count:
            raise BenchError(f"{stored} subscriptions stored, not {count}")
        progress(f"push: {count} subscriptions, {config.push_runs} key events")
        with liveblog_server(site, LIVEBLOG_PUSH_INSECURE_ENDPOINTS="1") as server:
            api = liveblog_author(server, site)
            _one(api, site.slug, receivers, count, server)  # unmeasured: imports, first tokens
            runs = [_one(api, site.slug, receivers, count, server)
                    for _ in range(config.push_runs)]
            issues = log_issues(server.log_path)
    finally:
        for receiver in receivers:
            receiver.close()
    arrivals = sorted(ms for run in runs for ms in run["arrivals_ms"])
    return [{
        "scenario": "push", "server": "liveblog", "readers": count,
        "latency_ms": summary(arrivals),
        "runs": [{key: value for key, value in run.items() if key != "arrivals_ms"}
                 for run in runs],
        "last_ms_median": statistics.median(run["last_ms"] for run in runs),
        "create_ms_median": statistics.median(run["create_ms"] for run in runs),
        "lost": sum(count - len(run["arrivals_ms"]) for run in runs),
        "expected": count * len(runs), "log_issues": issues,
    }]


def _one(api: ApiClient, slug: str, receivers: list[PushReceiver], count: int,
         server: QuietDaphne) -> dict[str, Any]:
    """One key event: wait until every subscription got it; arrival times from the commit."""
    before = [len(receiver.received) for receiver in receivers]
    started = time.time()
    written = api.post(slug, "Goal! (push bench)", key_event=True)
    create_ms = (time.time() - started) * 1000
    deadline = time.monotonic() + ARRIVAL_TIMEOUT

    def arrived() -> int:
        return sum(len(receiver.received) - skip for receiver, skip in zip(receivers, before,
                                                                            strict=True))

    while arrived() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    committed = None
    while committed is None and time.monotonic() < deadline:  # the log line follows the batch
        committed = _committed_at(server.log_path.read_text(errors="replace"),
                                  written["post"]["id"])
        time.sleep(0.02)
    if committed is None:
        raise BenchError(f"no push log line for post {written['post']['id']}:\n{server.log()}")
    times = [request.at for receiver, skip in zip(receivers, before, strict=True)
             for request in receiver.received[skip:]]
    arrivals = sorted((at - committed) * 1000 for at in times)
    return {"create_ms": round(create_ms, 2), "arrivals_ms": arrivals,
            "arrived": len(arrivals), "last_ms": round(arrivals[-1], 2) if arrivals else None}
