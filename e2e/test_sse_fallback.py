"""Readers where websockets are blocked: Server-Sent Events with the same guarantees.

- In real Chromium, through a proxy that answers every websocket upgrade 403 and passes plain
  HTTP (FlakyProxy.refuse_websockets): the reader page falls back to SSE
  (`#connection[data-transport="sse"]`), shows every post exactly once and in order through a
  network cut, a silent stall (the ping-based dead-connection rule) and a server killed and
  restarted, goes back to the websocket once the proxy lets it through, and reads offline
  afterwards from its local copy.
- A plain HTTP client reads the stream, disconnects, and comes back with `Last-Event-ID`: it gets
  exactly the events it missed, then live ones; a log reset reaches it as a snapshot of the new
  epoch.

One server per test; heartbeats every second so that dead-connection detection takes seconds.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, expect

from devstack.common import wait_until
from devstack.proxy import FlakyProxy
from e2e.test_flaky_network import (
    READER,
    SLUG,
    STATE_RECORDER,
    assert_no_reload,
    bodies,
    expect_exactly_once,
    outage,
    recorder,
    recoveries,
    recovery_log,  # noqa: F401  (autouse: writes the timings below to var/e2e-recovery.json)
    states,
)
from e2e.test_offline_pwa import offline_errors, poll, wait_for_offline_copy

pytestmark = [pytest.mark.e2e, pytest.mark.daphne_env(LIVEBLOG_HEARTBEAT_SECONDS="1")]

# While on SSE the page tries the websocket again this often (the default is minutes).
WS_RETRY_MS = 1500
STREAM = f"GET /sse/liveblog/{SLUG}/"  # the request line of the reader's event stream
TRANSPORT_RECORDER = recorder("data-transport", "__transports")


@pytest.fixture
def proxy(server):
    """The site behind a proxy that refuses websocket upgrades (set up before the browser, so
    it stops after the pages are closed)."""
    proxy = FlakyProxy(server.port, port=server.site.front_port).start()
    proxy.refuse_websockets(True)
    yield proxy
    proxy.stop()


def transports(page: Page) -> list[str]:
    return page.evaluate("window.__transports")


def post_all(api, texts: list[str]) -> list[str]:
    """Publish each text as a post, in order; returns the texts."""
    for text in texts:
        api.post(SLUG, text)
    return texts


def record(what: str, since: float) -> None:
    recoveries[f"sse: {what} (s)"] = round(time.monotonic() - since, 2)


def test_a_reader_behind_a_websocket_blocking_proxy_reads_over_sse_through_everything(
    proxy, server, api, open_browser, page_in, browser_errors
):
    api.post(SLUG, "Kick-off")
    # Each refused upgrade (the background retries' included) and each failed stream.
    with browser_errors.tolerated(outage(proxy.port)):
        context = open_browser()
        context.add_init_script(f"window.liveblogTransport = {{ wsRetryMs: {WS_RETRY_MS} }};")
        page = page_in(context)
        started = time.monotonic()
        page.goto(proxy.url + READER)
        connection = page.locator("#connection")
        expect(connection).to_have_attribute("data-transport", "sse")
        expect(connection).to_have_attribute("data-state", "live")
        record("navigation to live over SSE through a websocket-blocking proxy", started)
        assert proxy.websockets_refused >= 2
        page.evaluate(STATE_RECORDER)
        page.evaluate(TRANSPORT_RECORDER)
        page.evaluate("window.__sameDocument = true")
        post_all(api, ["First over the stream"])
        expect_exactly_once(page, ["First over the stream"])
        # The blog is "opened once" when the worker has kept the page: it fetches it as it
        # activates, and a fetch that meets the cut below would wait for the next visit.
        poll(page, "async () => Boolean(await caches.match(location.href))",
             message="the page in the service worker's cache")

        # A cut: the stream is reset and new connections refused for a while.
        proxy.refuse(True)
        assert proxy.cut() >= 1
        expect(connection).to_have_attribute("data-state", re.compile("^(reconnecting|offline)$"))
        cut = post_all(api, [f"In the tunnel {number}" for number in range(1, 4)])
        restored = time.monotonic()
        proxy.refuse(False)
        expect_exactly_once(page, cut)
        record("cut: 3 posts shown after the network returned", restored)
        expect(connection).to_have_attribute("data-state", "live")

        # A stall: the stream stays open and silent; 2.5 missed heartbeats declare it dead.
        assert proxy.blackhole() >= 1
        stalled_at = time.monotonic()
        stalled = post_all(api, ["Stalled one", "Stalled two"])
        expect_exactly_once(page, stalled)
        record("stall: 2 posts shown after the stream went silent", stalled_at)

        # The server killed and started again behind the proxy.
        server.kill()
        expect(connection).to_have_attribute("data-state", re.compile("^(reconnecting|offline)$"))
        server.start()
        restarted_at = time.monotonic()
        restarted = post_all(api, ["Back after the restart", "And another"])
        expect_exactly_once(page, restarted)
        record("restart: 2 posts shown after the server came back", restarted_at)
        expect(connection).to_have_attribute("data-state", "live")

        everything = ["Kick-off", "First over the stream", *cut, *stalled, *restarted]
        assert bodies(page) == everything[::-1]  # newest first, each once
        assert transports(page) == ["sse"], "a websocket took over through a blocking proxy"
        assert states(page).count("reconnecting") >= 3, states(page)
        assert_no_reload(page)
        wait_until(lambda: len(proxy.open_requests(STREAM)) == 1, timeout=5,
                   message="one event stream open (the ones given up on closed)")

        # The proxy lets websockets through again: the background retry takes over once live.
        allowed = time.monotonic()
        proxy.refuse_websockets(False)
        expect(connection).to_have_attribute("data-transport", "ws")
        record(f"back on the websocket after upgrades pass again (retry every {WS_RETRY_MS} ms)",
               allowed)
        assert page.evaluate("window.liveblog.connection.socket instanceof WebSocket")
        wait_until(lambda: proxy.open_requests(STREAM) == [], timeout=5,
                   message="the event stream closed once the websocket took over")
        api.post(SLUG, "Over the websocket again")
        expect_exactly_once(page, ["Over the websocket again"])
        everything.append("Over the websocket again")
        assert bodies(page) == everything[::-1]
        assert transports(page) == ["sse", "ws"]
        assert_no_reload(page)
        wait_for_offline_copy(page, head=len(everything))
        context.close()

    # Offline afterwards, as ever: a cold start with no network shows the local copy.
    server.stop()
    with browser_errors.tolerated(offline_errors(proxy.port)):
        context = open_browser()
        context.set_offline(True)
        page = page_in(context)
        page.goto(proxy.url + READER)
        expect(page.locator("#feed article.post .post-body")).to_have_text(everything[::-1])
        assert page.evaluate("window.liveblog.fromLocalCopy") is True
        expect(page.locator("#connection")).to_have_attribute("data-state", "offline")


# --- A plain HTTP client ---------------------------------------------------------------------


@dataclass
class Message:
    """One SSE message: its `id` (or None) and its data, parsed (the websocket frame)."""

    id: str | None
    frame: dict


@dataclass
class EventStream:
    """GET an event stream and read it message by message (a comment or `retry:` alone is no
    message; they are counted)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.connection.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path,
                                headers={"Accept": "text/event-stream", **self.headers})
        self.response = self.connection.getresponse()

    def next(self) -> Message:
        event_id, data = None, []
        while True:
            line = self.response.fp.readline()
            if not line:
                raise AssertionError("the stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data:
                    return Message(event_id, json.loads("\n".join(data)))
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)

    def frames(self, until: str, *, skip: tuple[str, ...] = ("ping",)) -> list[Message]:
        """The messages up to and including the first frame of type `until`."""
        seen = []
        while True:
            message = self.next()
            if message.frame["type"] in skip:
                continue
            seen.append(message)
            if message.frame["type"] == until:
                return seen

    def close(self) -> None:
        self.connection.close()


def sse_url(server, query: str = "") -> str:
    return f"{server.url}/sse/liveblog/{SLUG}/{query}"


def test_a_plain_http_client_resumes_with_last_event_id_and_sees_a_log_reset(server, api):
    for body in ("One", "Two", "Three"):
        api.post(SLUG, body)
    stream = EventStream(sse_url(server))
    try:
        response = stream.response
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert "no-store" in response.getheader("Cache-Control").replace(" ", "").split(",")
        assert response.getheader("X-Accel-Buffering") == "no"
        opening = stream.frames(until="live")
        assert stream.retry is not None and stream.comments, "no retry: and comment line first"
        hello, snapshot, live = opening
        epoch = hello.frame["epoch"]
        assert (hello.id, hello.frame["head"]) == (None, 3)
        assert (snapshot.frame["type"], snapshot.id, snapshot.frame["head"]) == (
            "snapshot", f"{epoch}:3", 3)
        assert [post["body"] for post in snapshot.frame["posts"]] == ["Three", "Two", "One"]
        assert live.frame == {"type": "live", "head": 3}
        api.post(SLUG, "Four")
        four = stream.frames(until="event")
        assert [(m.id, m.frame["seq"]) for m in four] == [(f"{epoch}:4", 4)]
    finally:
        stream.close()

    # Missed while away.
    for body in ("Five", "Six"):
        api.post(SLUG, body)
    # The header wins over a stale query (a browser's own reconnect repeats its first URL).
    stream = EventStream(sse_url(server, f"?since=1&epoch={epoch}"),
                         headers={"Last-Event-ID": f"{epoch}:4"})
    try:
        assert stream.response.status == 200
        replay = stream.frames(until="live")
        assert [m.frame["type"] for m in replay] == ["hello", "event", "event", "live"]
        assert [(m.id, m.frame["seq"], m.frame["post"]["body"]) for m in replay[1:3]] == [
            (f"{epoch}:5", 5, "Five"), (f"{epoch}:6", 6, "Six")]
        api.post(SLUG, "Seven")
        assert [(m.id, m.frame["seq"]) for m in stream.frames(until="event")] == [
            (f"{epoch}:7", 7)]
        # A heartbeat comes as a ping frame with the head.
        ping = stream.frames(until="ping", skip=())[-1]
        assert ping.frame == {"type": "ping", "head": 7}

        # An operator starts the log over: the reader gets the new epoch's snapshot.
        server.site.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                                          "get_user_model().objects.create_user('operator', "
                                          "is_staff=True)")
        started = time.monotonic()
        server.site.manage("liveblog_reset_log", SLUG, "--as", "operator")
        status, blog = api.request("GET", f"/api/liveblog/{SLUG}/")
        assert status == 200 and blog["epoch"] != epoch
        reset = stream.frames(until="snapshot")[-1]
        assert time.monotonic() - started < 10
        assert reset.id == f"{blog['epoch']}:0"
        assert (reset.frame["epoch"], reset.frame["head"]) == (blog["epoch"], 0)
        assert len(reset.frame["posts"]) == 7  # posts stay; the log starts over
        api.post(SLUG, "First of the new epoch")
        first = stream.frames(until="event")[-1]
        assert (first.id, first.frame["seq"]) == (f"{blog['epoch']}:1", 1)
    finally:
        stream.close()
