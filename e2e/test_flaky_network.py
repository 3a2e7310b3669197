"""A reader on a flaky network, in real Chromium, through a proxy that breaks the connection for
real: cut, refused, silently stalled; and a server killed with SIGKILL. Every scenario ends with
each post shown exactly once, in order, without a reload.

How long each recovery took is written to var/e2e-recovery.json (quoted in the closing note).
"""

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.common import REPO
from devstack.proxy import FlakyProxy

pytestmark = [pytest.mark.e2e, pytest.mark.daphne_env(LIVEBLOG_HEARTBEAT_SECONDS="1")]

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
# Generous: recovery takes a few seconds; this is slack for a loaded CI machine, not a sleep.
RECOVERY_TIMEOUT_MS = 20_000
RECOVERY_LOG = REPO / "var" / "e2e-recovery.json"


def recorder(attribute: str, into: str) -> str:
    """A script that keeps each new value of #connection's `attribute` in `window[into]`."""
    return f"""() => {{
  const connection = document.getElementById("connection");
  window.{into} = [connection.getAttribute("{attribute}")];
  new MutationObserver(() => {{
    const value = connection.getAttribute("{attribute}");
    if (window.{into}.at(-1) !== value) window.{into}.push(value);
  }}).observe(connection, {{ attributes: true, attributeFilter: ["{attribute}"] }});
}}"""


STATE_RECORDER = recorder("data-state", "__states")
recoveries: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def recovery_log():
    yield
    if recoveries:
        Path(RECOVERY_LOG).parent.mkdir(exist_ok=True)
        previous = json.loads(RECOVERY_LOG.read_text()) if RECOVERY_LOG.exists() else {}
        RECOVERY_LOG.write_text(json.dumps({**previous, **recoveries}, indent=2))


@pytest.fixture
def proxy(server):
    proxy = FlakyProxy(server.port, port=server.site.front_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def reader(proxy, new_page) -> Page:
    """A reader page loaded through the proxy, live, recording its connection states. (The
    proxy is set up first so that it stops last, after the page is closed.)"""
    page = new_page("reader")
    page.goto(proxy.url + READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.evaluate(STATE_RECORDER)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    return page


def outage(proxy_or_server_port: int) -> str:
    """Chromium logs each failed websocket attempt as a console error: expected in an outage.
    So is each failed event stream: after two websocket failures the reader tries SSE too
    (feed-connection.js); Chromium names the stream's URL in the location, not in the text."""
    return (rf"^WebSocket connection to 'ws://127\.0\.0\.1:{proxy_or_server_port}"
            rf"/ws/liveblog/{SLUG}/[^']*' failed|^Failed to load resource: net::ERR_")


def bodies(page: Page) -> list[str]:
    return page.locator("#feed article.post .post-body").all_inner_texts()


def states(page: Page) -> list[str]:
    return page.evaluate("window.__states")


def expect_exactly_once(page: Page, texts: list[str]) -> None:
    for text in texts:
        expect(page.locator("#feed article.post", has_text=text)).to_have_count(
            1, timeout=RECOVERY_TIMEOUT_MS
        )


def assert_no_reload(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def test_posts_made_during_a_network_cut_arrive_once_each_in_order(
    reader, proxy, api, browser_errors
):
    api.post(SLUG, "Before the tunnel")
    expect_exactly_once(reader, ["Before the tunnel"])
    missed = [f"In the tunnel {number}" for number in range(1, 6)]
    with browser_errors.tolerated(outage(proxy.port)):
        proxy.refuse(True)
        assert proxy.cut() >= 1  # the reader's websocket was open through us
        expect(reader.locator("#connection")).to_have_attribute(
            "data-state", re.compile("^(reconnecting|offline)$")
        )
        expect(reader.locator("#connection")).to_contain_text("last updated")
        for body in missed:
            api.post(SLUG, body)
        restored = time.monotonic()
        proxy.refuse(False)
        expect_exactly_once(reader, missed)
        recoveries["cut: 5 posts shown after the network returned (s)"] = round(
            time.monotonic() - restored, 2
        )
        expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    assert bodies(reader) == [*missed[::-1], "Before the tunnel"]  # newest first, once each
    assert_no_reload(reader)


def test_a_silently_stalled_connection_is_noticed_by_the_heartbeat_rule(
    reader, proxy, api, browser_errors
):
    stalled_links = proxy.blackhole()
    assert stalled_links >= 1
    stalled = time.monotonic()
    sent = ["Stalled one", "Stalled two", "Stalled three"]
    for body in sent:
        api.post(SLUG, body)
    # Nothing can arrive on the stalled socket; the client gives up on it after 2.5 silent
    # heartbeats (1 s each here) and reconnects on a fresh connection, which flows.
    expect_exactly_once(reader, sent)
    recoveries["stall: 3 posts shown after the connection went silent (s)"] = round(
        time.monotonic() - stalled, 2
    )
    assert "reconnecting" in states(reader), states(reader)
    expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    assert bodies(reader) == sent[::-1]
    assert_no_reload(reader)


def test_a_server_killed_and_restarted_is_caught_up_with(reader, proxy, server, api,
                                                         browser_errors):
    with browser_errors.tolerated(outage(proxy.port)):
        server.kill()
        expect(reader.locator("#connection")).to_have_attribute(
            "data-state", re.compile("^(reconnecting|offline)$")
        )
        server.start()
        restarted = time.monotonic()
        after = ["Back after the restart", "And another"]
        for body in after:
            api.post(SLUG, body)
        expect_exactly_once(reader, after)
        recoveries["restart: 2 posts shown after the server came back (s)"] = round(
            time.monotonic() - restarted, 2
        )
        expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    history = states(reader)
    assert history[0] == "live" and history[-1] == "live", history
    assert "reconnecting" in history, history
    assert bodies(reader) == after[::-1]
    assert_no_reload(reader)


def test_edits_and_deletes_made_while_disconnected_apply_on_reconnect(
    reader, proxy, api, browser_errors
):
    kept = api.post(SLUG, "Penalty to City")["post"]["id"]
    doomed = api.post(SLUG, "Goal! (wrongly reported)")["post"]["id"]
    expect_exactly_once(reader, ["Penalty to City", "Goal! (wrongly reported)"])
    with browser_errors.tolerated(outage(proxy.port)):
        proxy.refuse(True)
        proxy.cut()
        status, _ = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{kept}",
                                {"body": "Penalty to City, saved by the keeper"})
        assert status == 200
        status, _ = api.request("DELETE", f"/api/liveblog/{SLUG}/posts/{doomed}")
        assert status == 200
        api.post(SLUG, "Still 0-0")
        restored = time.monotonic()
        proxy.refuse(False)
        expect(reader.locator(f'#feed article.post[data-post-id="{doomed}"]')).to_have_count(
            0, timeout=RECOVERY_TIMEOUT_MS
        )
        recoveries["edits: edit, delete and post applied after the network returned (s)"] = \
            round(time.monotonic() - restored, 2)
    edited = reader.locator(f'#feed article.post[data-post-id="{kept}"]')
    expect(edited.locator(".post-body")).to_have_text("Penalty to City, saved by the keeper")
    expect(edited.locator(".post-edited")).to_be_visible()
    assert bodies(reader) == ["Still 0-0", "Penalty to City, saved by the keeper"]
    assert_no_reload(reader)


def test_a_log_reset_makes_the_reader_drop_its_state_for_the_new_snapshot(
    reader, server, api
):
    api.post(SLUG, "Kept through the reset")
    ghost = api.post(SLUG, "Lost in the restore")["post"]["id"]
    expect_exactly_once(reader, ["Kept through the reset", "Lost in the restore"])
    old_epoch = reader.evaluate("window.liveblog.state.epoch")
    # As after restoring a backup that lacks the newest post: the row is gone without an event,
    # and the operator starts the log over.
    # The reset is an operator's (staff) job; the site's author is not staff.
    server.site.manage("shell", "-c", f"from liveblog.models import Post; "
                                      f"Post.objects.filter(pk={ghost}).delete(); "
                                      "from django.contrib.auth import get_user_model; "
                                      "get_user_model().objects.create_user('operator', "
                                      "is_staff=True)")
    reset = time.monotonic()
    server.site.manage("liveblog_reset_log", SLUG, "--as", "operator")
    status, blog = api.request("GET", f"/api/liveblog/{SLUG}/")
    assert status == 200 and blog["epoch"] != old_epoch
    # The daphne process learns of it at its next heartbeat and sends every reader a snapshot.
    expect(reader.locator(f'#feed article.post[data-post-id="{ghost}"]')).to_have_count(
        0, timeout=RECOVERY_TIMEOUT_MS
    )
    recoveries["reset: reader on the new epoch's snapshot after the reset (s)"] = round(
        time.monotonic() - reset, 2
    )
    assert reader.evaluate("window.liveblog.state.epoch") == blog["epoch"]
    assert reader.evaluate("window.liveblog.state.seq") == 0
    api.post(SLUG, "First of the new epoch")
    expect_exactly_once(reader, ["First of the new epoch"])
    assert reader.evaluate("window.liveblog.state.seq") == 1
    assert bodies(reader) == ["First of the new epoch", "Kept through the reset"]
    assert_no_reload(reader)
