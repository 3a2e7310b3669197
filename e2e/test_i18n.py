"""The reader's language in real Chromium: the browser modules' words from the page's catalog
(connection status, "N new updates", Arabic plurals), relative times through Intl, the reader and
the console in two languages at once, the switch and what the service worker keeps after it, and
Arabic right to left."""

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bench.page import WorkerThrottle
from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer
from e2e.test_author_console import sign_in
from e2e.test_offline_pwa import offline_errors, poll

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
# The worker's fetches take over a second: more than an opened page waits before showing its copy.
SLOW_WORKER = {"offline": False, "latency": 1200, "downloadThroughput": -1, "uploadThroughput": -1}
I18N = "/static/liveblog/i18n.js"  # the module, unhashed: it reads the page's own catalog


@pytest.fixture
def context_in(browser, server, browser_errors) -> Callable[[str], BrowserContext]:
    """`context_in(locale)`: a fresh browser context whose language (Accept-Language and
    navigator.language) is `locale`; its pages' and workers' console errors fail the test."""
    contexts: list[BrowserContext] = []

    def make(locale: str) -> BrowserContext:
        context = browser.new_context(base_url=server.url, locale=locale)
        contexts.append(context)
        browser_errors.watch_workers(context, f"{locale} service worker")
        context.on("page", lambda page: browser_errors.watch(page, locale))
        return context

    yield make
    for context in contexts:
        context.close()


def wait_for_copy(page: Page, url: str, language: str) -> None:
    """The service worker keeps a copy of `url` in `language`."""
    poll(page, f"""async () => {{
      const copy = await caches.match("{url}", {{ ignoreVary: true }});
      return copy && (await copy.text()).includes('<html lang="{language}"');
    }}""", message=f"the worker's copy of {url} in {language}")


def open_live(page: Page, url: str = READER) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_reader_and_console_in_two_languages_at_once(context_in, server: DaphneServer, api):
    for n in range(1, 31):
        api.post(SLUG, f"Minute {n}: earlier update")
    reader = context_in("es-ES").new_page()
    author = context_in("ar").new_page()

    open_live(reader)
    expect(reader.locator("html")).to_have_attribute("lang", "es")
    expect(reader.locator("#connection .connection-text")).to_have_text("En directo")
    sign_in(author, server.url, server)
    expect(author.locator("html")).to_have_attribute("dir", "rtl")
    expect(author.locator("#connection")).to_have_attribute("data-state", "live")
    expect(author.locator("#connection .connection-text")).to_have_text("مباشر")
    expect(author.locator(".outbox-section h2")).to_have_text("صندوق الصادر")

    # The reader reads further down; three posts arrive and wait behind the button, in Spanish.
    reader.evaluate("window.scrollTo(0, 900)")
    for body in ("Corner", "Header", "Goal kick"):
        api.post(SLUG, body)
    expect(reader.locator("#new-updates")).to_have_text("3 actualizaciones nuevas")
    expect(author.locator("#feed article.post", has_text="Goal kick")).to_have_count(1)
    badge = author.locator("#feed article.post").first.locator(".badge-key")
    expect(badge).to_have_text("حدث بارز")

    # Arabic's six plural forms, from the console page's own catalog.
    forms = author.evaluate(f"""async () => {{
      const {{ interpolate, ngettext }} = await import("{I18N}");
      return [0, 1, 2, 3, 11, 100].map((count) => interpolate(
        ngettext("%(count)s queued update", "%(count)s queued updates", count), {{ count }}));
    }}""")
    assert forms == ["لا تحديثات في الانتظار", "تحديث واحد في الانتظار", "تحديثان في الانتظار",
                     "3 تحديثات في الانتظار", "11 تحديثًا في الانتظار", "100 تحديث في الانتظار"]
    # The reader's page stayed Spanish: languages are per browser, not per site.
    expect(reader.locator("#connection .connection-text")).to_have_text("En directo")


def test_the_switch_overrides_the_browser_and_the_worker_forgets_the_old_language(
    context_in, browser, server: DaphneServer, api: ApiClient, browser_errors
):
    api.post(SLUG, "Warm-up under way")
    context = context_in("de-DE")
    page = context.new_page()
    page.clock.install()
    open_live(page)
    time_of_post = page.locator("#feed article.post .post-time").first
    expect(time_of_post).to_have_text("gerade eben")
    page.clock.fast_forward("05:00")
    expect(time_of_post).to_have_text("vor 5 Min.")
    expect(page.locator("#connection .connection-text")).to_have_text("Live")
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    page.goto("/")
    for url in ("/offline/", READER, "/"):  # kept by the worker, in German for now
        wait_for_copy(page, url, "de")

    # On a network slower than an opened page waits for (PAGE_OPEN_TIMEOUT_MS in sw.js), the page
    # after the switch still waits for the server's answer (Chromium asks for it as `no-cache`,
    # as it does a reload): never the German copy.
    slow = WorkerThrottle(browser.new_browser_cdp_session(), conditions=SLOW_WORKER)
    wait_until(slow.apply, timeout=10, message="the service worker to be throttled")
    try:
        page.locator("#language-choice").select_option("es")
        page.locator(".language-switch button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("Blogs en directo")
        expect(page).to_have_url(server.url + "/")
    finally:
        slow.close()
    open_live(page, READER)  # remembered (the language cookie), over the browser's German
    expect(page.locator("#connection .connection-text")).to_have_text("En directo")
    expect(page.locator("h2#key-events-title")).to_have_text("Momentos clave")

    # The worker's copies come again in Spanish, pages not open at the switch included.
    for url in ("/offline/", READER, "/"):
        wait_for_copy(page, url, "es")
    context.set_offline(True)
    with browser_errors.tolerated(offline_errors(server.port)):
        page.goto("/")
        expect(page.locator("h1")).to_have_text("Blogs en directo")
        page.goto("/accounts/login/")  # never kept: the offline page
        expect(page.locator("h1")).to_have_text("No tienes conexión")


def test_arabic_is_right_to_left_and_the_layout_mirrors(context_in, api):
    """The inline start is the right in Arabic: the site's name sits on the right, and a quote's
    rule (border-inline-start) on its right. The second needs app.css's logical properties.
    A post keeps its own direction (dir="auto"): English in an Arabic page reads left to right."""
    api.post(SLUG, "> «الهدف الأول» قال المدرب")
    api.post(SLUG, "Kick-off in Madrid")
    page = context_in("ar").new_page()
    open_live(page)
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    width = page.evaluate("document.documentElement.clientWidth")
    name = page.locator(".site-name").bounding_box()
    assert name["x"] + name["width"] > width * 0.75, f"the site name is not on the right: {name}"
    borders = page.locator(".post-body blockquote").evaluate(
        "(quote) => [getComputedStyle(quote).borderRightWidth,"
        " getComputedStyle(quote).borderLeftWidth]"
    )
    english = page.locator("#feed article.post .post-body", has_text="Kick-off")
    expect(english).to_have_css("direction", "ltr")
    expect(page.locator("#feed article.post .post-body", has_text="المدرب")).to_have_css(
        "direction", "rtl")
    assert borders == ["3px", "0px"], f"the quote's rule (right, left): {borders}"
