"""A scheduled post in real Chromium against a real daphne process (its scheduler on, as in
production): a reader page opened before an editor schedules a post a few seconds ahead does not
show it before its time, and shows it at its time (within 1.5 s), once, at the top of the feed.

Two ways to schedule (DESIGN.md, "Desk"): the editor's own post created with `publish_at`, and a
contributor's submission the editor publishes with `publish_at`. Every wait is a condition with a
deadline (the browser's clock is the server's: one machine).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from devstack.daphne import ApiClient

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
API = f"/api/liveblog/{SLUG}"
AHEAD_SECONDS = 4
# The scheduler looks every 0.5 s; then the broadcast and the page's rendering.
ON_TIME_MS = 1500
CONTRIBUTOR, CONTRIBUTOR_PASSWORD = "carl", "carl-stringer-battery"
ADD_CONTRIBUTOR = f"""
from django.contrib.auth import get_user_model
get_user_model().objects.create_user({CONTRIBUTOR!r}, password={CONTRIBUTOR_PASSWORD!r})
"""
# The moment the first post containing `text` is in the feed (browser clock, ms), polled every
# 10 ms from before it can appear.
APPEARED = """text => {
  const posts = [...document.querySelectorAll("#feed article.post")];
  return posts.some((post) => post.textContent.includes(text)) && Date.now();
}"""


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def public_posts(server) -> list[dict]:
    """The posts API as a reader (no session) gets it."""
    with urllib.request.urlopen(f"{server.url}{API}/posts?limit=100", timeout=10) as response:
        return json.loads(response.read())["posts"]


def posts_with(page: Page, text: str):
    return page.locator("#feed article.post", has_text=text)


def own_post(server, api: ApiClient, text: str) -> Callable[[float], dict]:
    """The editor's post, created with publish_at: 202, on the desk until then."""
    def schedule(due: float) -> dict:
        status, answer = api.request("POST", f"{API}/posts", {
            "client_id": str(uuid.uuid4()), "body": text, "publish_at": iso(due),
        })
        assert status == 202, (status, answer)
        return answer

    return schedule


def submission(server, api: ApiClient, text: str) -> Callable[[float], dict]:
    """A contributor's submission (202, made now), which the editor then publishes with
    publish_at (202)."""
    server.site.manage("shell", "-c", ADD_CONTRIBUTOR)
    server.site.manage("liveblog_member", SLUG, CONTRIBUTOR, "--role", "contributor",
                       "--as", server.site.username)
    contributor = ApiClient(server.url).login(CONTRIBUTOR, CONTRIBUTOR_PASSWORD)
    status, submitted = contributor.request("POST", f"{API}/posts", {
        "client_id": str(uuid.uuid4()), "body": text,
    })
    assert (status, submitted["seq"], submitted["post"]["state"]) == (202, None, "submitted")

    def schedule(due: float) -> dict:
        status, answer = api.request(
            "POST", f"{API}/submissions/{submitted['post']['id']}/publish",
            {"publish_at": iso(due)},
        )
        assert status == 202, (status, answer)
        return answer

    return schedule


@pytest.mark.parametrize("prepare", [own_post, submission],
                         ids=["post with publish_at", "submission published with publish_at"])
def test_a_scheduled_post_reaches_an_open_reader_page_at_its_time_once(
    page, server, api, prepare
):
    earlier = api.post(SLUG, "Kick-off at Wembley")
    page.goto(READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#feed article.post")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    text = f"Embargoed: the line-ups {uuid.uuid4().hex[:8]}"
    schedule = prepare(server, api, text)
    due = time.time() + AHEAD_SECONDS
    answer = schedule(due)
    assert (answer["seq"], answer["post"]["state"]) == (None, "scheduled")
    assert not [post for post in public_posts(server) if text in post["body"]]

    # Just before its time: not on the page (nor anywhere the page could have it from).
    page.wait_for_function("due => Date.now() >= due", arg=due * 1000 - 400, polling=10)
    assert posts_with(page, text).count() == 0
    appeared_ms = page.wait_for_function(
        APPEARED, arg=text, polling=10, timeout=(AHEAD_SECONDS + 10) * 1000
    ).json_value()
    late_ms = appeared_ms - due * 1000
    assert 0 <= late_ms <= ON_TIME_MS, f"appeared {late_ms:.0f} ms after its time"
    # At the top of the feed, once, in the page that was open all along.
    expect(page.locator("#feed article.post").first).to_contain_text(text)
    expect(page.locator("#feed article.post")).to_have_count(2)
    assert page.evaluate("window.__sameDocument === true"), "the reader page reloaded"

    # Once, for good: a post published after it arrives behind it, and it is not repeated.
    later = api.post(SLUG, "Teams are out")
    expect(page.locator("#feed article.post").first).to_contain_text("Teams are out")
    expect(posts_with(page, text)).to_have_count(1)
    expect(page.locator("#feed article.post")).to_have_count(3)

    # Its post.created was appended at its time: the seq between the two others, made then.
    [post] = [post for post in public_posts(server) if text in post["body"]]
    assert earlier["seq"] + 1 == later["seq"] - 1
    created = datetime.fromisoformat(post["created_at"]).timestamp()
    assert due - 0.001 <= created <= due + ON_TIME_MS / 1000
    with urllib.request.urlopen(f"{server.url}{API}/events?since={earlier['seq']}") as response:
        events = json.loads(response.read())["events"]
    assert [(event["seq"], event["post"]["id"]) for event in events] == [
        (earlier["seq"] + 1, post["id"]), (later["seq"], later["post"]["id"]),
    ]

    page.reload()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(posts_with(page, text)).to_have_count(1)
