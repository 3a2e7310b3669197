"""The installable, offline-first app in real Chromium with a persistent profile (as a phone keeps
its browser data): installability, a cold start with no network, catching up when the network
returns, an app update after a deploy, and the offline page.

The cold-start render time is written to var/e2e-offline.json (quoted in the closing note).
"""

import json
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.common import REPO, wait_until
from devstack.daphne import DaphneServer, Site

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
MEASUREMENTS = REPO / "var" / "e2e-offline.json"
measured: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def measurement_log():
    yield
    if measured:
        MEASUREMENTS.parent.mkdir(exist_ok=True)
        MEASUREMENTS.write_text(json.dumps(measured, indent=2))


def offline_errors(port: int) -> str:
    """What Chromium logs while there is no network: failed websocket attempts and loads."""
    return (rf"(WebSocket connection to 'ws://127\.0\.0\.1:{port}/ws/(liveblog|desk)/{SLUG}/[^']*' "
            r"failed|net::ERR_INTERNET_DISCONNECTED|Failed to load resource)")


def poll(page: Page, script: str, *, timeout: float = 15, message: str) -> None:
    """Wait until `script` (a function, evaluated in the page) returns a truthy value. Polled
    from here: the page's CSP rightly forbids the eval that wait_for_function would need."""
    wait_until(lambda: page.evaluate(script), timeout=timeout, message=message)


def wait_for_offline_copy(page: Page, head: int) -> None:
    """The service worker controls the page and has cached it; IndexedDB holds `head`."""
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    poll(page, "async () => Boolean(await caches.match(location.href))",
         message="the page in the service worker's cache")
    poll(page, f"() => window.liveblog && window.liveblog.store.savedHead === {head}",
         message=f"IndexedDB to hold the feed up to seq {head}")


def test_the_reader_page_is_installable(open_browser, page_in, server):
    context = open_browser()
    page = page_in(context)
    page.goto(server.url + READER)
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    cdp = context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == []
    assert manifest["url"] == f"{server.url}/manifest.webmanifest"
    parsed = json.loads(manifest["data"])
    assert parsed["display"] == "standalone"
    for icon in parsed["icons"]:
        response = page.request.get(server.url + icon["src"])
        assert response.ok and response.headers["content-type"] == "image/png"
    # Chromium offers the install (beforeinstallprompt): the page shows its own button...
    install = page.locator("#install-app")
    expect(install).to_be_visible()
    expect(install).to_have_text("Install app")
    # ...and hides it once the app is installed.
    page.evaluate("() => window.dispatchEvent(new Event('appinstalled'))")
    expect(install).to_be_hidden()


def test_a_blog_opened_once_reads_offline_and_catches_up_exactly(
    open_browser, page_in, server, api, browser_errors
):
    for number in range(1, 21):
        api.post(SLUG, f"Update {number}")
    context = open_browser()
    page = page_in(context)
    page.goto(server.url + READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    # Two more arrive live: a cached page shows one page (20) of posts; only the local copy
    # has all 22.
    for number in (21, 22):
        api.post(SLUG, f"Update {number}")
    expect(page.locator("#feed article.post")).to_have_count(22)
    wait_for_offline_copy(page, head=22)
    context.close()

    # No signal at all: the browser is offline and the server is down.
    server.stop()
    with browser_errors.tolerated(offline_errors(server.port)):
        context = open_browser()
        context.set_offline(True)
        page = page_in(context)
        started = time.monotonic()
        page.goto(server.url + READER)
        posts = page.locator("#feed article.post")
        expect(posts).to_have_count(22)
        measured["cold start offline: navigation to 22 posts shown (ms)"] = round(
            (time.monotonic() - started) * 1000
        )
        measured["cold start offline: page script start to local render done (ms)"] = round(
            page.evaluate("window.liveblog.startedMs")
        )
        assert page.evaluate("window.liveblog.fromLocalCopy") is True
        expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
        expect(page.locator("#connection")).to_contain_text("last updated")
        expect(posts.locator(".post-body")).to_have_text(
            [f"Update {number}" for number in range(22, 0, -1)]
        )

        # While the reader is offline, 4 posts are published and one is edited.
        server.start()
        for number in range(23, 27):
            api.post(SLUG, f"Update {number}")
        oldest = api.request("GET", f"/api/liveblog/{SLUG}/posts?limit=100")[1]["posts"][-1]
        status, _ = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{oldest['id']}",
                                {"body": "Update 1 (corrected)"})
        assert status == 200
        back = time.monotonic()
        context.set_offline(False)
        expect(posts).to_have_count(26)
        expect(page.locator("#feed article.post", has_text="(corrected)")).to_have_count(1)
        measured["catch-up after the network returned: 4 posts + 1 edit shown (s)"] = round(
            time.monotonic() - back, 2
        )
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expected = [f"Update {number}" for number in range(26, 1, -1)] + ["Update 1 (corrected)"]
    expect(posts.locator(".post-body")).to_have_text(expected)


def test_a_page_never_visited_answers_offline_with_the_offline_page(
    open_browser, page_in, server, browser_errors
):
    context = open_browser()
    page = page_in(context)
    page.goto(server.url + READER)
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    context.set_offline(True)
    with browser_errors.tolerated(offline_errors(server.port)):
        page.goto(server.url + "/accounts/login/")
    expect(page.locator("h1")).to_have_text("You are offline")
    expect(page).to_have_url(f"{server.url}/accounts/login/")


def test_a_page_that_loaded_while_the_worker_installed_is_claimed_and_kept(
    open_browser, page_in, server
):
    """A page can miss the worker's claim: loaded while it was still installing (a sign-in
    redirect on a first visit), or shift-reloaded. It asks to be claimed, so this very page
    works offline, not only the next one."""
    context = open_browser()
    page = page_in(context)
    page.goto(server.url + READER)
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    with page.expect_navigation():
        context.new_cdp_session(page).send("Page.reload", {"ignoreCache": True})  # shift-reload
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the shift-reloaded page to be claimed")
    poll(page, "async () => Boolean(await caches.match(location.href))",
         message="the page in the service worker's cache")


@pytest.fixture
def deployable(tmp_path, static_files):
    """A site whose static files live in its own directory, so a test can deploy new ones."""
    (tmp_path / "site").mkdir()
    site = Site.create(
        tmp_path / "site",
        STATIC_ROOT=str(tmp_path / "static-root"),
        LIVEBLOG_EXTRA_STATIC_DIRS=str(tmp_path / "brand"),
    )
    (tmp_path / "brand" / "liveblog").mkdir(parents=True)
    site.manage("collectstatic", "--noinput", "-v0")
    server = DaphneServer(site)
    try:
        yield server.start(), tmp_path / "brand"
    finally:
        server.stop()


def deploy(server: DaphneServer, brand: Path, css: str) -> None:
    """A deploy: a changed stylesheet, collectstatic, the server restarted."""
    server.stop()
    stylesheet = REPO / "static" / "liveblog" / "app.css"
    shutil.copy(stylesheet, brand / "liveblog" / "app.css")
    with open(brand / "liveblog" / "app.css", "a") as file:
        file.write(f"\n{css}\n")
    server.site.manage("collectstatic", "--noinput", "-v0")
    server.start()


def test_a_deploy_offers_the_new_version_and_switching_serves_it(
    deployable, browser, browser_errors
):
    server, brand = deployable
    context = browser.new_context()
    page = context.new_page()
    browser_errors.watch(page, "reader")
    page.goto(server.url + READER)
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    old_css = page.locator("head style").text_content()  # app.css, inlined (bench `page`)
    old_worker = page.evaluate("fetch('/sw.js').then(r => r.text())")
    expect(page.locator("#update-banner")).to_be_hidden()

    marker = "/* deployed: a new look */ .site-name { letter-spacing: .01em; }"
    with browser_errors.tolerated(offline_errors(server.port)):  # the restart drops the socket
        deploy(server, brand, marker)
        page.reload()  # the browser looks for a new worker on navigation
    banner = page.locator("#update-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("A new version is available")
    assert page.evaluate("fetch('/sw.js').then(r => r.text())") != old_worker

    page.locator("#update-reload").click()  # the new worker takes over and the page reloads
    expect(page.locator("#update-banner")).to_be_hidden()
    poll(page, "async () => (await navigator.serviceWorker.getRegistration()).waiting === null",
         message="no worker left waiting")
    new_css = page.locator("head style").text_content()
    assert new_css != old_css
    assert marker in new_css
    context.close()

