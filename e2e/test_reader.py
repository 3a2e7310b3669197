"""Readers and the author in real Chromium against a real daphne process.

Every wait is a web-first assertion (or a polled condition) with a deadline; nothing sleeps.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from devstack.daphne import ApiClient

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
CONSOLE = f"/liveblog/{SLUG}/write/"
# How long a reader may take to come back after the server does: the client's full-jitter
# backoff grows while the server is down (up to 8 s after four failed attempts).
RECONNECT_TIMEOUT_MS = 40_000
READING_PROBE = """() => {
  const posts = [...document.querySelectorAll("#feed article.post")];
  const reading = posts.find((post) => post.getBoundingClientRect().top >= 0);
  return [reading.dataset.postId, reading.getBoundingClientRect().top];
}"""


def posts_with(page: Page, text: str):
    return page.locator("#feed article.post", has_text=text)


def open_reader(page: Page) -> None:
    page.goto(READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_reader_sees_a_post_live(page, api):
    open_reader(page)
    expect(page.locator("#feed article.post")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    created = api.post(SLUG, "**Goal!** Kane scores from the spot")

    article = page.locator(f'#feed article.post[data-post-id="{created["post"]["id"]}"]')
    expect(article).to_have_count(1)
    expect(article).to_be_visible()
    expect(article.locator(".post-body")).to_contain_text("Goal! Kane scores from the spot")
    expect(article.locator(".post-body strong")).to_have_text("Goal!")
    expect(page.locator("#feed article.post")).to_have_count(1)
    expect(page.locator(".feed-empty")).to_be_hidden()
    assert page.evaluate("window.__sameDocument === true"), "the reader page reloaded"


@pytest.mark.daphne_env(LIVEBLOG_HEARTBEAT_SECONDS="1")
def test_author_posts_from_the_console_and_a_reader_survives_a_server_crash(
    new_page, server, api, browser_errors
):
    # The author signs in through the real login form and opens the console.
    author = new_page("author")
    author.goto(f"/accounts/login/?next={CONSOLE}")
    author.locator("#id_username").fill(server.site.username)
    author.locator("#id_password").fill(server.site.password)
    author.locator(".login-form button[type=submit]").click()
    expect(author).to_have_url(re.compile(re.escape(CONSOLE) + "$"))
    expect(author.locator("#compose")).to_have_attribute("data-ready", "true")

    # A reader in another browser context (no session), live before anything is posted.
    reader = new_page("reader")
    open_reader(reader)
    reader.evaluate("window.__sameDocument = true")

    text = "Half-time: 1-0 after a tense first half"
    author.locator("#compose textarea[name=body]").fill(text)
    author.locator("#compose button[type=submit]").click()
    sent = author.locator("#outbox li", has_text=text)
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("data-state", "sent")
    expect(author.locator("#compose textarea[name=body]")).to_have_value("")

    expect(posts_with(reader, text)).to_have_count(1)
    expect(posts_with(reader, text)).to_be_visible()

    # The server crashes: the reader notices and says so; the reconnect attempts that fail while
    # it is down are logged by Chromium as console errors, which are expected here only.
    connection = reader.locator("#connection")
    # (The author's console follows the feed and the desk: both sockets retry; the feed tries
    # an event stream too after two failed websockets, a "Failed to load resource" with no URL
    # in its text.)
    outage = (rf"^WebSocket connection to 'ws://127\.0\.0\.1:{server.port}"
              rf"/ws/(liveblog|desk)/{SLUG}/[^']*' failed: "
              r"|^Failed to load resource: net::ERR_")
    with browser_errors.tolerated(outage):
        server.kill()
        expect(connection).to_have_attribute(
            "data-state", re.compile(r"^(reconnecting|offline)$")
        )
        server.start()
        later = ["Second half under way", "Saka hits the post"]
        for body in later:
            api.post(SLUG, body)
        for body in later:
            expect(posts_with(reader, body)).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)
        expect(connection).to_have_attribute("data-state", "live",
                                             timeout=RECONNECT_TIMEOUT_MS)

    for body in [text, *later]:
        expect(posts_with(reader, body)).to_have_count(1)
        expect(posts_with(reader, body)).to_be_visible()
    expect(reader.locator("#feed article.post")).to_have_count(3)
    # Newest first.
    expect(reader.locator("#feed article.post .post-body")).to_contain_text(
        [later[1], later[0], text]
    )
    assert reader.evaluate("window.__sameDocument === true"), "the reader page reloaded"


def test_edits_and_deletes_arrive_live(page, api: ApiClient):
    open_reader(page)
    created = api.post(SLUG, "Yellow card for number 4")
    post_id = created["post"]["id"]
    article = page.locator(f'#feed article.post[data-post-id="{post_id}"]')
    expect(article.locator(".post-body")).to_have_text("Yellow card for number 4")
    expect(article.locator(".post-edited")).to_be_hidden()

    status, answer = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{post_id}",
                                 {"body": "Yellow card for number 6 (not 4)"})
    assert status == 200, answer
    expect(article.locator(".post-body")).to_have_text("Yellow card for number 6 (not 4)")
    expect(article.locator(".post-edited")).to_be_visible()
    expect(article.locator(".post-edited")).to_have_text("edited")
    expect(page.locator("#feed article.post")).to_have_count(1)

    status, answer = api.request("DELETE", f"/api/liveblog/{SLUG}/posts/{post_id}")
    assert status == 200, answer
    expect(article).to_have_count(0)
    expect(page.locator("#feed article.post")).to_have_count(0)


def test_a_scrolled_away_reader_is_not_yanked(page, api):
    for n in range(1, 31):
        api.post(SLUG, f"Minute {n}: earlier update")
    open_reader(page)
    expect(page.locator("#feed article.post").first).to_contain_text("Minute 30")

    page.evaluate("window.scrollTo(0, 900)")
    page.wait_for_function("window.scrollY >= 900")
    scrolled = page.evaluate("window.scrollY")
    # The post at the top of the viewport: where the reader is reading.
    reading_id, reading_top = page.evaluate(READING_PROBE)

    fresh = ["Corner to England", "Header over the bar", "Goal kick"]
    for body in fresh:
        api.post(SLUG, body)

    button = page.locator("#new-updates")
    expect(button).to_be_visible()
    expect(button).to_have_text("3 new updates")
    for body in fresh:
        expect(posts_with(page, body)).to_have_count(1)
        expect(posts_with(page, body)).to_be_hidden()
    now_top = page.locator(f'#feed article.post[data-post-id="{reading_id}"]').evaluate(
        "element => element.getBoundingClientRect().top"
    )
    now_scrolled = page.evaluate("window.scrollY")
    assert now_top == reading_top, (
        f"the post being read (#{reading_id}) moved on screen from y={reading_top} to "
        f"y={now_top} when 3 posts arrived"
    )
    assert now_scrolled == scrolled, (
        f"window.scrollY changed from {scrolled} to {now_scrolled} when 3 posts arrived "
        "while the reader was scrolled down (the page above the reader changed height; "
        "only the browser's scroll anchoring kept the text in place)"
    )

    button.click()
    for body in fresh:
        expect(posts_with(page, body)).to_be_visible()
    expect(button).to_be_hidden()
    # Revealing takes the reader to the newest post.
    expect(posts_with(page, fresh[-1])).to_be_in_viewport()
    expect(page.locator("#feed article.post .post-body").first).to_have_text(fresh[-1])


def test_pages_declare_an_icon_that_loads(page):
    """Without a working icon every page load logs a 404 console error (/favicon.ico)."""
    open_reader(page)
    href = page.evaluate(
        "document.querySelector('link[rel~=icon]')?.href ?? new URL('/favicon.ico', location).href"
    )
    response = page.request.get(href)
    assert response.ok, f"the page's icon {href} answers {response.status}"


def test_key_events_are_summarised_with_links_to_them(page, api):
    api.post(SLUG, "Kick-off at Wembley", key_event=True)
    open_reader(page)
    summary = page.locator("#key-events")
    expect(summary).to_be_visible()
    expect(summary.locator("li")).to_have_count(1)
    created = api.post(SLUG, "**GOAL!** 1-0 after a header from a corner", key_event=True)
    api.post(SLUG, "A quiet spell in midfield")
    expect(summary.locator("li")).to_have_count(2)
    newest = summary.locator("li a").first
    expect(newest).to_contain_text("GOAL! 1-0 after a header")
    expect(newest).to_have_attribute("href", f"#post-{created['post']['id']}")
    newest.click()
    expect(page).to_have_url(re.compile(f"#post-{created['post']['id']}$"))
    expect(page.locator(f"#post-{created['post']['id']}")).to_be_in_viewport()


def test_load_older_fetches_the_next_page_and_never_the_first_one(page, api):
    for number in range(1, 26):
        api.post(SLUG, f"Update number {number}")
    api_reads = []
    page.on("request", lambda request: api_reads.append(request.url)
            if "/api/liveblog/" in request.url else None)
    open_reader(page)
    posts = page.locator("#feed article.post")
    expect(posts).to_have_count(20)
    older = page.locator("#load-older")
    expect(older).to_be_visible()
    older.click()
    expect(posts).to_have_count(25)
    expect(older).to_be_hidden()
    texts = posts.locator(".post-body").all_inner_texts()
    assert texts == [f"Update number {number}" for number in range(25, 0, -1)]
    # The server-rendered first page was reused: the only API read is the older page.
    assert len(api_reads) == 1 and "before=" in api_reads[0], api_reads
    # A post arriving now still goes on top, once.
    api.post(SLUG, "Update number 26")
    expect(posts).to_have_count(26)
    expect(posts.first).to_contain_text("Update number 26")


def test_a_pinned_post_stays_on_top(page, api):
    welcome = api.post(SLUG, "Welcome to the live coverage")["post"]["id"]
    api.post(SLUG, "Teams are out")
    open_reader(page)
    posts = page.locator("#feed article.post")
    expect(posts.first).to_contain_text("Teams are out")
    status, _ = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{welcome}", {"pinned": True})
    assert status == 200
    expect(posts.first).to_contain_text("Welcome to the live coverage")
    expect(posts.first.locator(".badge-pinned")).to_be_visible()
    api.post(SLUG, "Kick-off")
    expect(posts).to_have_count(3)
    expect(posts.locator(".post-body")).to_have_text(
        ["Welcome to the live coverage", "Kick-off", "Teams are out"]
    )


def test_times_are_relative_and_move_on(page, api):
    page.clock.install()
    api.post(SLUG, "Warm-up under way")
    open_reader(page)
    time_of_post = page.locator("#feed article.post .post-time").first
    expect(time_of_post).to_have_text("just now")
    page.clock.fast_forward("05:00")
    expect(time_of_post).to_have_text("5 min. ago")  # Intl.RelativeTimeFormat, short
    assert time_of_post.get_attribute("title"), "the absolute time is in the title"
