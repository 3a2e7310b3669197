"""Web Push end to end on loopback (issue 18, part 3): a real daphne with
LIVEBLOG_PUSH_INSECURE_ENDPOINTS=1, readers subscribed over HTTP to a local push service
(devstack/push.py). A key event's push arrives encrypted for each subscription and decrypts
(http_ece, with the subscription's own keys) to the expected payload, with TTL, Urgency, Topic
and a VAPID Authorization signed by the key the API serves; a 410 removes the subscription; an
endpoint that never answers delays neither the author's 201 nor another subscription's push;
a post the server's scheduler publishes is pushed too, and a post that is not a key event is
not."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer, Site
from devstack.push import HANG, BrowserKeys, PushReceiver, vapid_claims

pytestmark = pytest.mark.server

READ_SECONDS = 3  # the server's push read timeout: the hanging endpoint is cut off after it


def reader_request(server: DaphneServer, method: str, path: str, data: dict | None = None):
    """As a reader's page sends it: anonymous, JSON, from the site's own origin."""
    request = urllib.request.Request(
        f"{server.url}{path}", method=method,
        data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json", "Origin": server.url},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def endpoints_stored(site: Site) -> set[str]:
    path = urlsplit(site.env["DATABASE_URL"]).path
    with sqlite3.connect(path, timeout=20) as db:
        return {row[0] for row in db.execute("SELECT endpoint FROM liveblog_pushsubscription")}


@pytest.fixture
def receiver():
    with PushReceiver() as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path):
    site = Site.create(tmp_path)
    server = DaphneServer(site, LIVEBLOG_PUSH_INSECURE_ENDPOINTS="1",
                          LIVEBLOG_PUSH_READ_SECONDS=str(READ_SECONDS)).start()
    try:
        yield server
    finally:
        server.stop()


def test_key_events_are_pushed_encrypted_to_each_subscription(server, receiver):
    site = server.site
    status, answer = reader_request(server, "GET", "/api/push/key")
    public_key = answer["key"]
    browsers = {path: BrowserKeys() for path in ("/ok", "/gone", "/hang")}
    receiver.answers.update({"/gone": 410, "/hang": HANG})
    for path, keys in browsers.items():
        status, answer = reader_request(server, "POST", f"/api/liveblog/{site.slug}/push",
                                        keys.subscription(receiver.url(path)))
        assert (status, answer) == (201, {"subscribed": True}), path

    author = ApiClient(server.url).login(site.username, site.password)
    author.post(site.slug, "Kick-off")  # not a key event: no push
    started = time.monotonic()
    written = author.post(site.slug, "**Goal!** 1-0 after a corner", key_event=True)
    answered = time.monotonic() - started
    # The author's answer waits for no push service (one of them never answers).
    assert answered < 1.0, answered

    wait_until(lambda: receiver.at("/ok"), timeout=10, message="the push at /ok")
    [push] = receiver.at("/ok")
    post_id = written["post"]["id"]
    assert browsers["/ok"].decrypt(push.body) == {
        "blog": site.slug, "title": "Cup final", "post": post_id, "seq": written["seq"],
        "text": "Goal! 1-0 after a corner", "image": None,
        "url": f"/liveblog/{site.slug}/#post-{post_id}",
    }
    headers = push.headers
    assert headers["ttl"] == "21600" and headers["urgency"] == "high"
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["topic"].startswith("liveblog-") and len(headers["topic"]) <= 32
    claims = vapid_claims(headers["authorization"], public_key)
    assert claims["aud"] == receiver.url("")
    assert claims["exp"] > time.time() and claims["sub"].startswith("mailto:")
    # Arrived while the hanging endpoint still holds its request open.
    assert receiver.at("/hang") and push.at - receiver.at("/hang")[0].at < READ_SECONDS

    # 410: the subscription is gone once the batch ends (the hanging one timed out by then).
    wait_until(lambda: receiver.at("/gone"), timeout=10, message="the push at /gone")
    wait_until(lambda: receiver.url("/gone") not in endpoints_stored(site),
               timeout=READ_SECONDS + 10, message="the 410 subscription removed")
    assert endpoints_stored(site) == {receiver.url("/ok"), receiver.url("/hang")}

    # Published by the server's scheduler: pushed the same way. Unsubscribed: no push.
    reader_request(server, "DELETE", f"/api/liveblog/{site.slug}/push",
                   {"endpoint": receiver.url("/hang")})
    due = datetime.now(UTC) + timedelta(seconds=1)
    status, scheduled = author.request("POST", f"/api/liveblog/{site.slug}/posts", {
        "client_id": "6f1d4c53-5d8e-4a40-9a43-0d8f3f7a1a11", "body": "Final whistle",
        "key_event": True, "publish_at": due.isoformat(),
    })
    assert status == 202, scheduled
    wait_until(lambda: len(receiver.at("/ok")) == 2, timeout=10,
               message="the scheduled key event's push")
    message = browsers["/ok"].decrypt(receiver.at("/ok")[1].body)
    assert message["text"] == "Final whistle" and message["seq"] == written["seq"] + 1
    assert len(receiver.at("/hang")) == 1  # unsubscribed before it
    assert [request.path for request in receiver.received].count("/ok") == 2
