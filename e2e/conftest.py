"""Playwright (sync API) in Debian's Chromium against a real daphne process per test.

No pytest-playwright plugin: the fixtures are written here. Every page made through `new_page`
(or the `page` fixture) records browser console errors and uncaught exceptions; any that occur
fail the test in teardown, so a CSP violation or a JS exception can never pass unnoticed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from devstack.daphne import ApiClient, DaphneServer, Site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# Web-first assertions poll up to this long (live delivery takes milliseconds; this is slack
# for a loaded CI machine, not a sleep).
expect.set_options(timeout=10_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "daphne_env(**env): extra environment for the test's daphne process"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- Browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def static_files() -> None:
    """Pages reference hashed static names; daphne serves them from the collected files."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def playwright_session():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session) -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the e2e tests drive Debian's Chromium "
            "(apt-get install chromium; Playwright's own browsers are not used)",
            pytrace=False,
        )
    browser = playwright_session.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


# --- Server -----------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path_factory, static_files) -> Site:
    return Site.create(tmp_path_factory.mktemp("site"))


@pytest.fixture
def server(site, request):
    """A daphne process for this test (env from `@pytest.mark.daphne_env(...)`), always
    stopped afterwards; its log is printed when the test failed."""
    marker = request.node.get_closest_marker("daphne_env")
    server = DaphneServer(site, **(marker.kwargs if marker else {}))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            print(f"--- daphne log ({server.log_path}) ---\n{server.log()}")


@pytest.fixture
def api(server) -> ApiClient:
    return ApiClient(server.url).login(server.site.username, server.site.password)


# --- Pages ------------------------------------------------------------------------------------


class BrowserErrors:
    """Console errors and uncaught exceptions from every page of the test."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._tolerated: list[re.Pattern] = []

    def watch(self, page: Page, name: str) -> None:
        page.on("console", lambda message: self._console(name, message))
        page.on("pageerror", lambda error: self._record(f"[{name}] uncaught: {error}"))

    def watch_workers(self, context: BrowserContext, name: str = "service worker") -> None:
        """Console errors of the context's service workers (their uncaught exceptions too)."""
        def watch(worker) -> None:
            worker.on("console", lambda message: self._console(name, message))

        for worker in context.service_workers:
            watch(worker)
        context.on("serviceworker", watch)

    def _console(self, name: str, message) -> None:
        if message.type != "error":
            return
        text = message.text
        where = message.location.get("url") or ""
        if any(pattern.search(text) for pattern in self._tolerated):
            return
        self._record(f"[{name}] console.error: {text}" + (f" ({where})" if where else ""))

    def _record(self, line: str) -> None:
        self.errors.append(line)

    @contextmanager
    def tolerated(self, pattern: str):
        """Errors matching `pattern` are expected inside this block (e.g. during an outage)."""
        compiled = re.compile(pattern)
        self._tolerated.append(compiled)
        try:
            yield
        finally:
            self._tolerated.remove(compiled)


@pytest.fixture
def browser_errors(request) -> BrowserErrors:
    errors = BrowserErrors()
    yield errors
    report = getattr(request.node, "report_call", None)
    if errors.errors and (report is None or report.passed):
        pytest.fail("errors in the browser:\n" + "\n".join(errors.errors), pytrace=False)
    elif errors.errors:
        print("errors in the browser:\n" + "\n".join(errors.errors))


@pytest.fixture
def new_page(browser, server, browser_errors):
    """`new_page(name)`: a page in a fresh browser context (its own cookies and storage)."""
    contexts: list[BrowserContext] = []

    def make(name: str = "page") -> Page:
        context = browser.new_context(base_url=server.url)
        contexts.append(context)
        page = context.new_page()
        browser_errors.watch(page, name)
        return page

    yield make
    for context in contexts:
        context.close()


# --- Persistent profiles (a phone keeps its browser data) --------------------------------------


@pytest.fixture
def profile(tmp_path) -> Path:
    """A browser profile directory that outlives a browser (closing and reopening it)."""
    return tmp_path / "profile"


@pytest.fixture
def open_browser(playwright_session, profile, browser_errors, server):
    """`open_browser()`: Chromium with the persistent profile; closed after the test, before
    the server stops (which the pages would otherwise log as errors)."""
    opened: list[BrowserContext] = []

    def launch() -> BrowserContext:
        context = playwright_session.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        )
        opened.append(context)
        return context

    yield launch
    for context in opened:
        context.close()


@pytest.fixture
def page_in(browser_errors):
    """`page_in(context)`: a new page whose console errors fail the test."""

    def make(context: BrowserContext) -> Page:
        page = context.new_page()
        browser_errors.watch(page, f"page {len(context.pages)}")
        return page

    return make


@pytest.fixture
def context(new_page) -> BrowserContext:
    return new_page("reader").context


@pytest.fixture
def page(context) -> Page:
    return context.pages[0]
