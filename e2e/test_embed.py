"""The blog embedded in another site's article page, in real Chromium.

The article page is served by a plain HTTP server on another loopback address (127.0.0.2: another
origin and another site than the Liveblog server on 127.0.0.1), with a frame from a third origin
(127.0.0.3) that plays the hostile neighbour. Nothing sleeps: every wait is a condition with a
deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Frame, Page, expect

from devstack.common import wait_until
from e2e.test_offline_pwa import offline_errors, wait_for_offline_copy

pytestmark = pytest.mark.e2e

SLUG = "match"
FRAME = "iframe[data-liveblog-embed]"
FAKE_HEIGHT = 4321  # what the third origin claims; the frame must never take it

# The hostile neighbour: tells the embedding page a height and says hello to every frame it can
# reach, and records any message that comes back.
THIRD_PAGE = """<!doctype html><title>ads</title><body data-received="0"><script>
let received = 0;
window.addEventListener("message", () => { document.body.dataset.received = String(++received); });
window.attack = () => {
  parent.postMessage({ type: "liveblog:height", height: FAKE_HEIGHT }, "*");
  for (let i = 0; i < parent.frames.length; i++) {
    if (parent.frames[i] !== window) parent.frames[i].postMessage({ type: "liveblog:hello" }, "*");
  }
};
</script></body>""".replace("FAKE_HEIGHT", str(FAKE_HEIGHT))


def article(liveblog: str, third: str | None = None) -> str:
    """A CMS story page with the one-line snippet, as the Embed panel gives it."""
    neighbour = f'<iframe id="third" src="{third}/third.html" title="ad"></iframe>' if third else ""
    # The page's own record of the messages it got: once the fake one is there, embed.js's
    # listener has seen it too (one dispatch runs every listener).
    recorder = ('<script>window.heights = []; window.addEventListener("message", '
                '(event) => window.heights.push(event.data && event.data.height));</script>')
    return f"""<!doctype html><html lang="en"><head><title>Story</title>{recorder}</head><body>
<h1>Cup final: as it happened</h1><p>Our reporters at the stadium.</p>
<script src="{liveblog}/embed.js" data-blog="{SLUG}" async></script>
<p id="after-the-blog">More stories</p>{neighbour}
</body></html>"""


@contextmanager
def web_server(host: str, pages: dict[str, str]) -> Iterator[str]:
    """Serves `pages` (path -> HTML) on `host` and a free port; yields the origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            if self.path == "/favicon.ico":  # asked by every page; none here
                self.send_response(204)
                self.end_headers()
                return
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def allow(api, origins: list[str]) -> None:
    status, answer = api.request("PATCH", f"/api/liveblog/{SLUG}/", {"embed_origins": origins})
    assert status == 200, answer
    assert answer["blog"]["embed_origins"] == origins


def embed_frame(page: Page) -> Frame:
    wait_until(lambda: any("/embed/" in frame.url for frame in page.frames), timeout=10)
    return next(frame for frame in page.frames if "/embed/" in frame.url)


def fitted(page: Page, frame: Frame) -> tuple[int, int, bool]:
    """(frame element's height, its content's height, whether the content scrolls)."""
    outer = page.eval_on_selector(FRAME, "frame => frame.getBoundingClientRect().height")
    inner, scrolls = frame.evaluate("""() => [
      Math.ceil(document.documentElement.getBoundingClientRect().height),
      document.documentElement.scrollHeight > window.innerHeight,
    ]""")
    return round(outer), inner, scrolls


def wait_fitted(page: Page, frame: Frame) -> int:
    def fits() -> bool:
        outer, inner, scrolls = fitted(page, frame)
        return outer == inner and not scrolls

    wait_until(fits, timeout=10)
    return fitted(page, frame)[0]


def test_article_page_embeds_the_blog_live_and_the_frame_fits_it(new_page, server, api):
    api.post(SLUG, "Kick-off at Wembley", key_event=True)
    with web_server("127.0.0.3", {"/third.html": THIRD_PAGE}) as third:
        news_pages = {"/story.html": article(server.url, third)}
        with web_server("127.0.0.2", news_pages) as news:
            allow(api, [news])
            page = new_page("article")
            page.goto(f"{news}/story.html")

            frame = embed_frame(page)
            expect(frame.locator("#connection")).to_have_attribute("data-state", "live")
            expect(frame.locator("#feed article.post")).to_have_count(1)
            first = wait_fitted(page, frame)
            # Placed where the snippet is, in the article's flow.
            assert page.evaluate("""() => {
              const frame = document.querySelector("iframe[data-liveblog-embed]");
              return frame.nextElementSibling.id;
            }""") == "after-the-blog"

            # The embedding page cannot reach into the frame.
            assert page.evaluate("""() => {
              const frame = document.querySelector("iframe[data-liveblog-embed]");
              try { frame.contentWindow.document; return "readable"; }
              catch (error) { return frame.contentDocument === null ? error.name : "leaked"; }
            }""") == "SecurityError"

            # A third origin claims a height and says hello to the frame: both are ignored.
            neighbour = next(f for f in page.frames if f.url.startswith(third))
            neighbour.evaluate("attack()")
            wait_until(lambda: FAKE_HEIGHT in page.evaluate("window.heights"), timeout=10)
            assert fitted(page, frame)[0] == first

            created = api.post(SLUG, "GOAL! " + "A long description of the goal. " * 30)
            post = frame.locator(f'#post-{created["post"]["id"]}')
            expect(post).to_be_visible()
            grown = wait_fitted(page, frame)
            assert grown > first, (first, grown)
            assert grown != FAKE_HEIGHT
            assert neighbour.evaluate("document.body.dataset.received") == "0"

            # A link inside the embed opens in the reader's whole tab, not in the frame.
            with page.expect_navigation(url=f"{server.url}/liveblog/{SLUG}/"):
                frame.locator("#blog-title").click()


@pytest.mark.parametrize("listed", [[], ["http://127.0.0.2:9"]], ids=["empty-list", "other-site"])
def test_a_site_not_on_the_list_gets_no_frame(new_page, server, api, browser_errors, listed):
    allow(api, listed)
    with web_server("127.0.0.2", {"/story.html": article(server.url)}) as news:
        assert news not in listed
        page = new_page("article")
        with browser_errors.tolerated("frame-ancestors"):
            with page.expect_console_message(
                lambda message: "frame-ancestors" in message.text, timeout=10_000
            ) as refused:
                page.goto(f"{news}/story.html")
            expected = "'none'" if not listed else listed[0]
            assert expected in refused.value.text
            # The frame is there, empty: Chromium replaced the refused page with its error page.
            wait_until(lambda: page.locator(FRAME).count() == 1, timeout=10)
            assert not any("/embed/" in frame.url for frame in page.frames)


def test_a_same_site_embed_is_read_offline_like_the_reader_page(
    new_page, server, api, browser_errors
):
    """Embedded by a page of the same site (the newsroom's live.news.example in news.example:
    here another port of 127.0.0.1), the frame keeps its offline copy: reloaded without a
    network it shows what it had, and catches up by seq, exactly once, when the network
    returns. (In another site's page, Chromium refuses storage to the frame, as browsers that
    block third-party cookies do: the embed is live there, without an offline copy.)"""
    first = api.post(SLUG, "Kick-off")
    with web_server("127.0.0.1", {"/story.html": article(server.url)}) as news:
        allow(api, [news])
        page = new_page("article")
        page.goto(f"{news}/story.html")
        frame = embed_frame(page)
        expect(frame.locator("#connection")).to_have_attribute("data-state", "live")
        wait_for_offline_copy(frame, first["seq"])  # the PATCH took no seq
        page.context.set_offline(True)
        with browser_errors.tolerated(offline_errors(server.port)):
            frame.evaluate("location.reload()")
            frame = embed_frame(page)
            expect(frame.locator("#feed article.post")).to_have_count(1)
            expect(frame.locator("#connection")).to_have_attribute("data-state", "offline")
            missed = api.post(SLUG, "Missed while offline")
            page.context.set_offline(False)
            expect(frame.locator(f'#post-{missed["post"]["id"]}')).to_have_count(1)
        expect(frame.locator("#connection")).to_have_attribute("data-state", "live")
        expect(frame.locator("#feed article.post")).to_have_count(2)
