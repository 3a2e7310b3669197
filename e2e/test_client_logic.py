"""Unit tests of the browser modules: e2e/js/*.test.js, run in Debian's Chromium, no server.

Each JavaScript test (registered with `test(name, body)` from e2e/js/testing.js) is one pytest case,
`test_js[<module>: <name>]`. It runs in a fresh browser context of its own: a blank harness page at
http://client.test/, the files of static/ under /static/ and of e2e/ under /e2e/ (and the feed as
the server renders it at /fixtures/feed.html, from the real templates). The test module is
imported, the one test is run, and its answer (passed, or the assertion's message and stack) becomes
the pytest result. An uncaught exception or a console error in the page fails the test as well.

FeedConnection gets the fake socket and the manual clock of e2e/client_harness.js, so backoff,
watchdogs and resyncs are checked to the millisecond without real waiting. Nothing here starts
a server.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.sync_api import Page, Route

pytestmark = pytest.mark.e2e

ORIGIN = "http://client.test"
ROOT = Path(__file__).resolve().parent.parent
JS_TESTS_DIR = ROOT / "e2e" / "js"
SERVED = {"/static/": ROOT / "static", "/e2e/": ROOT / "e2e"}
HARNESS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>client harness</title></head><body><main id="harness"></main></body></html>
"""
# `test("name", …)` at the start of a line: how a test module registers its tests. Collection
# reads the files (no browser needed to list the tests); every run checks the browser agrees.
TEST_CALL = re.compile(r"""^test\(\s*(["'])(?P<name>.+?)\1\s*,""", re.MULTILINE)


class JsTest(NamedTuple):
    module: str  # the URL path the page imports, e.g. /e2e/js/feed-state.test.js
    name: str

    def __str__(self) -> str:
        return f"{Path(self.module).name.removesuffix('.test.js')}: {self.name}"


def collect_js_tests() -> list[JsTest]:
    found = []
    for file in sorted(JS_TESTS_DIR.glob("*.test.js")):
        module = "/" + file.relative_to(ROOT).as_posix()
        found += [JsTest(module, match["name"]) for match in TEST_CALL.finditer(file.read_text())]
    return found


JS_TESTS = collect_js_tests()
JS_MODULES = sorted({js_test.module for js_test in JS_TESTS})


# --- Serving the modules ----------------------------------------------------------------------


def _content_type(path: Path) -> str:
    if path.suffix in (".js", ".mjs"):
        return "text/javascript"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


# A post of each kind the feed draws, shaped as the server sends them (protocol.post_json).
FIXTURE_PHOTO = {
    "src": "/media/liveblog/photos/match/a1-1024.jpg",
    "srcset": "/media/liveblog/photos/match/a1-320.jpg 320w, "
              "/media/liveblog/photos/match/a1-1024.jpg 1024w",
    "width": 1024, "height": 683, "alt": 'The "away" end <cheering>',
}


def _fixture_post(post_id: int, html: str, **fields) -> dict:
    return {
        "id": post_id, "client_id": f"c-{post_id}", "author": {"username": "ann", "name": "Ann"},
        "body": f"post {post_id}", "html": html, "created_at": f"2024-05-01T12:0{post_id}:00Z",
        "edited_at": None, "pinned": False, "key_event": False, "photo": None, **fields,
    }


def feed_fixture_html() -> str:
    """The live feed as the reader page renders it (the same view code and templates), for
    e2e/js/feed-view.test.js to compare the browser's drawing with. Rendered in this process:
    Django is configured by pytest-django, and no database is needed."""
    from datetime import UTC, datetime

    from django.template.loader import render_to_string

    from liveblog.selectors import BlogState, PostsPage
    from liveblog.views.pages import _feed_context

    blog = BlogState(id=1, slug="match", title="The match", description="", status="live",
                     epoch="E1", head=3, created_at=datetime(2024, 5, 1, 11, 0, tzinfo=UTC))
    posts = [
        _fixture_post(3, "<p>Red card &amp; a <em>penalty</em></p>", pinned=True, key_event=True,
                      edited_at="2024-05-01T12:05:00Z", photo=FIXTURE_PHOTO),
        _fixture_post(2, "<p><strong>GOAL!</strong> 1-0 &lt;3</p>", key_event=True),
        _fixture_post(1, "<p>Kick-off</p>"),
    ]
    page = PostsPage(blog=blog, posts=posts, next_before=None)
    return render_to_string("liveblog/_feed.html", {"blog": blog, **_feed_context(page)})


def _serve(route: Route) -> None:
    path = "/" + route.request.url.removeprefix(ORIGIN).lstrip("/").split("?")[0].split("#")[0]
    if path == "/":
        route.fulfill(status=200, content_type="text/html", body=HARNESS_HTML)
        return
    if path == "/fixtures/feed.html":
        route.fulfill(status=200, content_type="text/html", body=feed_fixture_html())
        return
    for prefix, directory in SERVED.items():
        if path.startswith(prefix):
            file = (directory / path.removeprefix(prefix)).resolve()
            if file.is_file() and file.is_relative_to(directory):
                route.fulfill(status=200, content_type=_content_type(file), body=file.read_bytes())
                return
    route.fulfill(status=404, content_type="text/plain", body=f"not served: {path}")


@pytest.fixture
def page(browser) -> Page:
    """The harness page in its own context; any uncaught exception or console error (a module
    that fails to load included) fails the test. Overrides e2e/conftest.py's `page` (which needs
    a daphne server) for this module: only the session's `browser` is shared."""
    context = browser.new_context()
    context.route(f"{ORIGIN}/**", _serve)
    harness = context.new_page()
    problems: list[str] = []
    harness.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    harness.on(
        "console",
        lambda message: problems.append(f"console.error: {message.text}")
        if message.type == "error" else None,
    )
    harness.goto(f"{ORIGIN}/")
    try:
        yield harness
    finally:
        context.close()
    if problems:
        pytest.fail("errors in the browser:\n" + "\n".join(problems), pytrace=False)


RUN_ONE = """async ([module, name]) => {
  const testing = await import("/e2e/js/testing.js");
  await import(module);
  return testing.run(name);
}"""


def readable_stack(stack: str) -> str:
    """The JS stack with the harness's URLs as paths in the repository (clickable in a terminal),
    without the runner's own frames below the test."""
    lines = stack.replace(f"{ORIGIN}/", "").splitlines()
    runner = next((n for n, line in enumerate(lines) if "e2e/js/testing.js" in line), len(lines))
    return "\n".join(lines[:runner])


def run_js_test(page: Page, module: str, name: str) -> dict:
    return page.evaluate(RUN_ONE, [module, name])


# --- The tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("js_test", JS_TESTS, ids=str)
def test_js(page, js_test: JsTest):
    result = run_js_test(page, js_test.module, js_test.name)
    if not result["passed"]:
        error = result["error"]
        stack = readable_stack(error["stack"])
        # V8 starts the stack with "Name: message"; do not say the message twice.
        heading = f"{error['name']}: {error['message']}"
        detail = stack if stack.startswith(heading) else f"{heading}\n{stack}".rstrip()
        pytest.fail(
            f"{js_test.module.lstrip('/')} › {js_test.name} "
            f"({result['assertions']} assertions checked)\n{detail}",
            pytrace=False,
        )


@pytest.mark.parametrize("module", JS_MODULES, ids=lambda module: Path(module).name)
def test_every_registered_js_test_is_collected(page, module: str):
    """Collection reads `test("…"` lines; a test registered any other way would never run."""
    registered = page.evaluate(
        """async (module) => {
          const testing = await import("/e2e/js/testing.js");
          await import(module);
          return testing.names();
        }""",
        module,
    )
    assert registered == [js_test.name for js_test in JS_TESTS if js_test.module == module]


def test_the_runner_reports_failures_with_the_message_and_where(page):
    """The runner itself can fail: a wrong value, a test that checks nothing, a rejection."""
    results = page.evaluate(
        """async () => {
          const { assert, run, test } = await import("/e2e/js/testing.js");
          test("wrong", () => assert.deepEqual({ ids: [1, 2] }, { ids: [1, 3] }, "the ids"));
          test("empty", () => {});
          test("rejects", async () => { await Promise.reject(new TypeError("boom")); });
          test("right", () => assert.equal(2, 2));
          const results = [];
          for (const name of ["wrong", "empty", "rejects", "right", "unknown"]) {
            results.push(await run(name)); // one at a time, as the runner does
          }
          return results;
        }"""
    )
    wrong, empty, rejects, right, unknown = results
    assert wrong["passed"] is False
    assert wrong["error"]["name"] == "AssertionError"
    assert wrong["error"]["message"].startswith("the ids\n.ids[1] is 2, not 3")
    # The stack starts at the test's own line, not inside the assertion helper.
    stack = wrong["error"]["stack"].splitlines()
    frames = [line for line in stack if line.lstrip().startswith("at ")]
    assert frames and "testing.js" not in frames[0], wrong["error"]["stack"]
    assert (empty["passed"], empty["error"]["message"]) == (False, "the test made no assertion")
    assert (rejects["passed"], rejects["error"]["name"], rejects["error"]["message"]) == (
        False, "TypeError", "boom")
    assert right == {"passed": True, "assertions": 1, "error": None}
    assert unknown["passed"] is False and "no test named" in unknown["error"]["message"]


def test_js_tests_were_found():
    """An empty parametrization would pass silently: make sure the files were read."""
    assert len(JS_MODULES) >= 5
    assert len(JS_TESTS) >= 30
