"""Accessibility in real Chromium (issue 19 part 1).

axe-core (node_modules/axe-core, pinned in package.json) checks the WCAG 2.1 A and AA rules on
every page and on the states a live page goes through, each in the light and the dark theme.
What axe cannot see is checked here too: announcements (politely "N new updates", key events
assertively, never the whole feed), focus that stays put when posts arrive, the keyboard with a
visible focus ring, reduced motion, no horizontal scrolling at 320 px and at 200 % zoom, and
touch targets of at least 44 × 44 CSS px.

One daphne process serves the whole module (a server per test would cost more than the checks);
the tests run in file order on the blog it holds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import cache

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.common import REPO, wait_until
from devstack.daphne import ApiClient, DaphneServer, Site
from e2e.test_author_console import sign_in, wait_for_offline_console
from e2e.test_offline_pwa import offline_errors, wait_for_offline_copy

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
CONSOLE = f"/liveblog/{SLUG}/write/"
EMBED = f"/liveblog/{SLUG}/embed/"
MAX_BODY_CHARS = 400  # the module's server refuses longer posts: a failed outbox entry on demand
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"  # package.json pins it exactly
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LONG_WORD = "Grandstand" * 12  # 120 letters with no place to break
LONG_URL = "https://example.com/" + "match-report/" * 12
MIN_TARGET_PX = 44  # WCAG 2.5.5 (AAA), which the issue asks for; 2.5.8 (AA) asks 24

RUN_AXE = """async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
  return result.violations.map((violation) => ({
    id: violation.id, help: violation.help,
    nodes: violation.nodes.map((node) => ({
      target: node.target.join(" "), summary: node.failureSummary,
    })),
  }));
}"""

# The colour behind an element: the first background from it up that is not transparent.
BEHIND = """const behind = (node) => {
  for (; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    if (colour !== "transparent" && !colour.endsWith(", 0)")) return colour;
  }
  return "rgb(255, 255, 255)";
};"""
PAGE_BACKGROUND = "() => { " + BEHIND + " return behind(document.body); }"


# Form fields and the colour behind them: their edge is what shows where to type, so it needs
# 3:1 against that colour (WCAG 1.4.11, non-text contrast, which axe does not check).
FIELD_EDGES = "() => { " + BEHIND + """
  return [...document.querySelectorAll("input:not([type=hidden]), textarea, select")]
    .filter((field) => field.checkVisibility() && !field.classList.contains("visually-hidden")
      && !["checkbox", "radio", "file"].includes(field.type))
    .map((field) => [field.outerHTML.slice(0, 80), getComputedStyle(field).borderTopColor,
                     behind(field.parentElement)]);
}"""


def rgb(colour: str) -> list[float]:
    return [float(part) for part in colour[colour.index("(") + 1:-1].split(",")[:3]]


def contrast(first: list[float], second: list[float]) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def jpeg(size: tuple[int, int] = (1600, 900)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 110, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


@cache
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make node_modules/.installed` installs axe-core",
                    pytrace=False)
    return AXE.read_text()


def luminance(rgb: list[float]) -> float:
    """WCAG relative luminance of an sRGB colour (0 black … 1 white)."""
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(channel) for channel in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


class Audit:
    """axe on one page state after another, in both themes; the failures are all reported
    together at the end (one missing label should not hide the next state's problems)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, page: Page, state: str) -> None:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            if not page.evaluate("() => typeof axe === 'object'"):
                page.evaluate(axe_source())  # through CDP: the page's CSP does not apply
            for violation in page.evaluate(RUN_AXE, WCAG_TAGS):
                for node in violation["nodes"]:
                    self.problems.append(
                        f"{state} ({scheme}): {violation['id']} ({violation['help']}) at "
                        f"{node['target']}: {node['summary']}"
                    )
            for field, edge, behind in page.evaluate(FIELD_EDGES):
                if contrast(rgb(edge), rgb(behind)) < 3:
                    self.problems.append(f"{state} ({scheme}): the edge of {field} ({edge}) is "
                                         f"under 3:1 against {behind} (WCAG 1.4.11)")
            if scheme == "dark":
                background = page.evaluate(PAGE_BACKGROUND)
                if luminance(rgb(background)) > 0.2:
                    self.problems.append(f"{state} (dark): the background {background} is not "
                                         "dark")
        page.emulate_media(color_scheme="light")

    def assert_clean(self) -> None:
        assert not self.problems, "axe (WCAG 2.1 A+AA) found:\n" + "\n".join(self.problems)


# --- One server, one blog for the module ---------------------------------------------------------


@pytest.fixture(scope="module")
def a11y_server(tmp_path_factory, static_files) -> Iterator[DaphneServer]:
    site = Site.create(tmp_path_factory.mktemp("a11y"))
    server = DaphneServer(site, LIVEBLOG_MAX_BODY_CHARS=str(MAX_BODY_CHARS))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def author_api(a11y_server) -> ApiClient:
    """Signed in as the blog's author, with a blog as a newsroom's would look: more posts than
    one page, a key event, a pinned post, a photo, links, and words and URLs too long for a
    phone's line."""
    site = a11y_server.site
    api = ApiClient(a11y_server.url).login(site.username, site.password)
    status, answer = api.request("PATCH", f"/api/liveblog/{SLUG}/", {
        "description": "Every kick of the cup final at Wembley, as it happens.",
    })
    assert status == 200, answer
    for minute in range(1, 23):
        api.post(SLUG, f"Minute {minute}: a quiet spell in midfield.")
    api.post(SLUG, "Kick-off at Wembley: the final is under way", key_event=True)
    # Pinned: on top of the first page, whatever the tests post after them.
    api.post(SLUG, f"The longest word of the day: {LONG_WORD}. Report: <{LONG_URL}>", pinned=True)
    api.post(SLUG, "Both sides unchanged. [The team sheets](https://example.com/team-sheets)")
    photo = api.post_photo(SLUG, jpeg(), alt="Fans fill the stands before kick-off")
    status, answer = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{photo['post']['id']}",
                                 {"pinned": True})
    assert status == 200, answer
    return api


@pytest.fixture
def open_context(browser: Browser, a11y_server, browser_errors):
    """`open_context(**options)`: a fresh browser context on the module's server; its pages'
    console errors fail the test (e2e/conftest.py's BrowserErrors)."""
    contexts: list[BrowserContext] = []

    def make(**options) -> tuple[BrowserContext, Page]:
        context = browser.new_context(base_url=a11y_server.url, **options)
        contexts.append(context)
        page = context.new_page()
        browser_errors.watch(page, f"page {len(contexts)}")
        return context, page

    yield make
    for context in contexts:
        context.close()


def open_reader(page: Page) -> None:
    page.goto(READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def open_console(page: Page, server: DaphneServer) -> None:
    sign_in(page, server.url, server)
    expect(page.locator("#compose")).to_have_attribute("data-ready", "true")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def attach_photo(page: Page) -> None:
    page.locator("#compose-photo").set_input_files(
        {"name": "stands.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}
    )
    expect(page.locator("#photo-chosen")).to_be_visible()


def write(page: Page, text: str) -> None:
    page.locator("#compose textarea[name=body]").fill(text)
    page.locator("#compose button[type=submit]").click()


# --- axe on every page and state -----------------------------------------------------------------


def test_axe_finds_nothing_on_the_public_pages_in_every_state(
    open_context, a11y_server, author_api, browser_errors
):
    audit = Audit()
    _, page = open_context()
    page.goto("/")
    audit.check(page, "blog list")
    page.goto("/offline/")
    audit.check(page, "offline page")
    page.goto(EMBED)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    audit.check(page, "embed")

    open_reader(page)
    expect(page.locator("#key-events")).to_be_visible()
    audit.check(page, "reader, live")
    page.evaluate("window.scrollTo(0, 1200)")
    wait_until(lambda: page.evaluate("window.scrollY") >= 1200, timeout=5, message="scrolled")
    author_api.post(SLUG, "Corner to England")
    author_api.post(SLUG, "Header over the bar")
    expect(page.locator("#new-updates")).to_have_text("2 new updates")
    audit.check(page, "reader, 2 new updates waiting")

    wait_for_offline_copy(page, head=author_api.request("GET", f"/api/liveblog/{SLUG}/")[1]["head"])
    try:
        with browser_errors.tolerated(offline_errors(a11y_server.port)):
            a11y_server.stop()  # the connection drops; the browser is still online
            expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
            audit.check(page, "reader, reconnecting")
            page.context.set_offline(True)
            page.reload()  # the service worker's copy
            expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
            audit.check(page, "reader, offline")
            page.close()
    finally:
        a11y_server.start()  # for the module's other tests
    audit.assert_clean()


def test_axe_finds_nothing_on_sign_in_and_the_console_in_every_state(
    open_context, a11y_server, author_api, browser_errors
):
    audit = Audit()
    context, page = open_context()
    page.goto(f"/accounts/login/?next={CONSOLE}")
    audit.check(page, "sign-in")
    open_console(page, a11y_server)
    audit.check(page, "console, empty")
    page.locator("#compose textarea[name=body]").fill("**Goal!** 1-0, a [header](https://example.com)")
    expect(page.locator("#compose-preview")).to_be_visible()
    audit.check(page, "console, draft")

    wait_for_offline_console(page)
    with browser_errors.tolerated(r"status of 400 \(Bad Request\)"):  # Chromium logs the refusal
        write(page, "Too long for this blog " + "x" * MAX_BODY_CHARS)
        expect(page.locator("#outbox li[data-state=failed]")).to_have_count(1)
    with browser_errors.tolerated(offline_errors(a11y_server.port)):
        context.set_offline(True)
        write(page, "Written in the tunnel")
        expect(page.locator("#outbox li[data-state=queued]")).to_have_count(1)
        audit.check(page, "console, queued and failed outbox entries")
        attach_photo(page)
        audit.check(page, "console, photo attached")
        # Signing out with an unsent update asks first (a modal dialog).
        page.locator("#sign-out button[type=submit]").click()
        expect(page.locator("#sign-out-dialog")).to_be_visible()
        audit.check(page, "console, sign-out dialog")
        page.locator("#sign-out-dialog button[value=cancel]").click()
        expect(page.locator("#sign-out-dialog")).to_be_hidden()
        page.close()
    audit.assert_clean()


# --- What axe cannot see --------------------------------------------------------------------------

# Live regions around or inside the feed: a post arriving there would be read out whole.
FEED_IS_LIVE = """() => {
  const live = ["[aria-live]:not([aria-live=off])", "[role=status]", "[role=log]", "[role=alert]",
                "[role=marquee]", "[role=timer]"].join(", ");
  const feed = document.getElementById("feed");
  return Boolean(feed.closest(live) || feed.querySelector(live));
}"""
FOCUS_MARK = "() => { document.activeElement.dataset.focusProbe = 'here'; }"
# Everything the polite region says, in order (a repeated text is said again after a clearing).
RECORD_ANNOUNCEMENTS = """() => {
  window.announced = [];
  const region = document.getElementById("feed-announcer");
  new MutationObserver(() => {
    if (region.textContent) window.announced.push(region.textContent);
  }).observe(region, { childList: true, characterData: true, subtree: true });
}"""
FOCUS_KEPT = "() => document.activeElement?.dataset.focusProbe === 'here'"


def test_new_posts_are_announced_key_events_assertively_and_focus_never_moves(
    open_context, author_api
):
    # The regions are in the server's HTML, before any script runs or any post arrives.
    _, static = open_context(java_script_enabled=False)
    static.goto(READER)
    expect(static.locator("#feed-announcer")).to_have_attribute("role", "status")
    expect(static.locator("#feed-announcer")).to_have_attribute("aria-live", "polite")
    expect(static.locator("#key-event-announcer")).to_have_attribute("aria-live", "assertive")
    assert static.evaluate(FEED_IS_LIVE) is False, "the feed is a live region: every post is read"
    static.close()

    _, page = open_context()
    open_reader(page)
    polite, assertive = page.locator("#feed-announcer"), page.locator("#key-event-announcer")
    expect(polite).to_have_text("")
    page.evaluate(RECORD_ANNOUNCEMENTS)

    def announced(*texts: str) -> None:
        wait_until(lambda: page.evaluate("window.announced.length") >= len(texts), timeout=10,
                   message=f"the announcements {texts}")
        assert page.evaluate("window.announced") == list(texts)

    def announcements_end_with(text: str) -> list[str]:
        wait_until(lambda: page.evaluate("window.announced.at(-1)") == text, timeout=10,
                   message=f"the announcement {text!r}")
        return page.evaluate("window.announced")

    # The keyboard is on the site's name, at the top, when posts arrive there.
    page.locator(".site-name").focus()
    page.evaluate(FOCUS_MARK)
    card = author_api.post(SLUG, "Yellow card for the keeper")["post"]
    expect(page.locator("#feed article.post").filter(has_text="Yellow card")).to_be_visible()
    announced("1 new update")
    author_api.post(SLUG, "**GOAL!** England lead 1-0", key_event=True)
    expect(assertive).to_have_text("Key event: GOAL! England lead 1-0")
    announced("1 new update", "1 new update")
    # A post made a key event later is said at once too (and is no new update).
    status, answer = author_api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{card['id']}",
                                        {"key_event": True})
    assert status == 200, answer
    expect(assertive).to_have_text("Key event: Yellow card for the keeper")
    assert page.evaluate(FOCUS_KEPT), "a post arrived and the focus moved"

    # Scrolled down, the posts wait behind the button; the count is announced, focus stays.
    page.evaluate("window.scrollTo(0, 1200)")
    wait_until(lambda: page.evaluate("window.scrollY") >= 1200, timeout=5, message="scrolled")
    # On a link further down (focused where it is: scrolling to it could reach the top).
    page.locator("#feed article.post a[href]", has_text="The team sheets").evaluate(
        "link => link.focus({ preventScroll: true })"
    )
    page.evaluate(FOCUS_MARK)
    for text in ("Free kick", "Wall holds", "Corner"):
        author_api.post(SLUG, text)
    expect(page.locator("#new-updates")).to_have_text("3 new updates")
    # Said once for posts that arrive together (on a slow machine they may come as two).
    assert announcements_end_with("3 new updates")[2:] in (
        ["3 new updates"], ["1 new update", "3 new updates"], ["2 new updates", "3 new updates"]
    )
    assert page.evaluate(FOCUS_KEPT), "posts arrived behind the button and the focus moved"
    assert page.evaluate(FEED_IS_LIVE) is False

    # The button works from the keyboard, and its focus goes to the newest update it shows.
    page.locator("#new-updates").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#new-updates")).to_be_hidden()
    assert page.evaluate("document.activeElement.matches('article.post') && "
                         "document.activeElement.textContent.includes('Corner')")


# One step of a Tab walk: the focused element, and whether its focus is visible. The file input
# is hidden behind its label ("Add photo"), which shows the ring for it.
FOCUSED = "() => { " + BEHIND + """
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const seen = element.dataset.tabStop !== undefined;
  element.dataset.tabStop = "";
  const shown = element.classList.contains("visually-hidden") ? element.labels[0] : element;
  const style = getComputedStyle(shown);
  const rect = shown.getBoundingClientRect();
  return {
    seen, what: element.outerHTML.slice(0, 100),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2
      ? style.outlineColor : null,
    behind: behind(shown.parentElement), // where the ring is drawn (outline-offset: 2px)
    shadow: style.boxShadow !== "none",
    visible: rect.width >= 1 && rect.height >= 1,
  };
}"""
# Controls a person can see and use that the walk did not reach.
UNREACHED = """() => [...document.querySelectorAll(
  "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
)].filter((element) => element.tabIndex >= 0 && !element.disabled
  && (element.checkVisibility() || element.classList.contains("visually-hidden"))
  && element.dataset.tabStop === undefined).map((element) => element.outerHTML.slice(0, 100))"""


def tab_through(page: Page, where: str, limit: int = 150) -> list[str]:
    """Tab from the top of the page to its end; what was wrong on the way."""
    page.evaluate("""() => {
      for (const element of document.querySelectorAll("[data-tab-stop]")) {
        delete element.dataset.tabStop;
      }
      window.scrollTo(0, 0);
      document.activeElement?.blur();
    }""")
    problems = []
    stops = 0
    previous = None
    for _ in range(limit):
        page.keyboard.press("Tab")
        step = page.evaluate(FOCUSED)
        if step is None:
            break
        if step["seen"]:
            if step["what"] == previous:
                continue  # a date input's fields: one element, several stops
            break
        previous = step["what"]
        stops += 1
        # A ring of 2 px or more with 3:1 against what is around it (WCAG 1.4.11).
        ring = step["outline"] and contrast(rgb(step["outline"]), rgb(step["behind"])) >= 3
        if not (ring or step["shadow"]):
            problems.append(f"{where}: no visible focus ring on {step['what']} "
                            f"(outline {step['outline']} on {step['behind']})")
        if not step["visible"]:
            problems.append(f"{where}: focus on something not on screen: {step['what']}")
    problems += [f"{where}: not reachable with Tab: {html}" for html in page.evaluate(UNREACHED)]
    assert stops >= 5, f"{where}: Tab reached only {stops} controls"
    return problems


def test_every_control_works_from_the_keyboard_with_a_visible_focus_ring(
    open_context, a11y_server, author_api
):
    _, page = open_context()
    open_reader(page)
    problems = tab_through(page, "reader")
    page.emulate_media(color_scheme="dark")
    problems += tab_through(page, "reader, dark")
    page.emulate_media(color_scheme="light")
    open_console(page, a11y_server)
    problems += tab_through(page, "console")
    assert not problems, "\n".join(problems)

    # Writing a key event with the keyboard alone: type, Space on the checkbox, Enter to send.
    # A post from another author that arrives meanwhile leaves the cursor where it was.
    page.locator("#compose-body").focus()
    page.keyboard.type("Sent from the ")
    author_api.post(SLUG, "Written by a colleague")
    expect(page.locator("#feed article.post", has_text="Written by a colleague")).to_be_visible()
    page.keyboard.type("keyboard")
    expect(page.locator("#compose-body")).to_be_focused()
    expect(page.locator("#compose-body")).to_have_value("Sent from the keyboard")
    page.locator("#compose input[name=key_event]").focus()
    page.keyboard.press("Space")
    page.locator("#compose button[type=submit]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#outbox li", has_text="Sent from the keyboard")).to_have_attribute(
        "data-state", "sent"
    )
    sent = page.locator("#feed article.post.is-key", has_text="Sent from the keyboard")
    expect(sent).to_be_visible()


DOT_ANIMATION = """() => getComputedStyle(
  document.querySelector("#connection .connection-dot")).animationName"""
# Clicking "N new updates" scrolls to the top: at once, or smoothly over a while.
REVEAL_SCROLL = """() => {
  document.getElementById("new-updates").click();
  return window.scrollY;
}"""


def test_reduced_motion_stops_every_animation(open_context, author_api):
    _, moving = open_context()
    open_reader(moving)
    assert moving.evaluate(DOT_ANIMATION) == "pulse"  # the live dot moves for those who like it
    _, page = open_context(reduced_motion="reduce")
    open_reader(page)
    assert page.evaluate(DOT_ANIMATION) == "none"
    assert page.evaluate("document.getAnimations().map((a) => a.animationName)") == []
    page.evaluate("window.scrollTo(0, 1200)")
    wait_until(lambda: page.evaluate("window.scrollY") >= 1200, timeout=5, message="scrolled")
    author_api.post(SLUG, "Substitution")
    expect(page.locator("#new-updates")).to_be_visible()
    assert page.evaluate(REVEAL_SCROLL) == 0, "revealing new posts scrolled smoothly"


# Controls smaller than a finger. Exempt, as WCAG 2.5.5 and 2.5.8 allow ("inline": the target is
# in a sentence, its size set by the line of text): links inside a post's text or a preview of
# it, and links in a sentence of a paragraph. A checkbox's target is its label; the hidden file
# input's is its "Add photo" label.
SMALL_TARGETS = """(minimum) => {
  const inSentence = (link) => {
    if (link.closest(".post-body, .compose-preview, .submission-body")) return true;
    const paragraph = link.closest("p");
    return Boolean(paragraph) && paragraph.textContent.length - link.textContent.length >= 20;
  };
  const small = [];
  for (const element of document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary"
  )) {
    const hiddenInput = element.classList.contains("visually-hidden");
    if (!hiddenInput && !element.checkVisibility()) continue;
    if (element.matches("a") && inSentence(element)) continue;
    const target = hiddenInput || element.type === "checkbox" ? element.labels[0] : element;
    if (!target.checkVisibility()) continue;
    const { width, height } = target.getBoundingClientRect();
    if (width < minimum - 0.5 || height < minimum - 0.5) {
      small.push(`${Math.round(width)}×${Math.round(height)}: ${target.outerHTML.slice(0, 100)}`);
    }
  }
  return small;
}"""
PAGE_WIDTHS = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
# How far the console's send button is from the left and the right of its row: it sits at the
# row's inline end (margin-inline-start: auto), the right in English, the left in Arabic.
SEND_BUTTON_GAPS = """() => {
  const button = document.querySelector("#compose button[type=submit]").getBoundingClientRect();
  const row = document.querySelector(".compose-options").getBoundingClientRect();
  return [button.left - row.left, row.right - button.right];
}"""
# 320 CSS px is a small phone, and what a 1280 px window shows at 400 % zoom (WCAG 1.4.10);
# 640 CSS px at twice the pixels is that window at 200 % zoom.
SCREENS = {
    "320 px": {"viewport": {"width": 320, "height": 640}},
    "200 % zoom": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
}


def test_pages_fit_a_small_screen_and_zoom_with_finger_sized_targets(
    open_context, a11y_server, author_api
):
    problems = []

    def inspect(page: Page, where: str, screen: str) -> None:
        width, client = page.evaluate(PAGE_WIDTHS)
        if width > client:
            problems.append(f"{where} at {screen}: scrolls sideways ({width} > {client} px)")
        if screen == "320 px":
            problems.extend(f"{where}: target under {MIN_TARGET_PX} px, {small}"
                            for small in page.evaluate(SMALL_TARGETS, MIN_TARGET_PX))

    for screen, options in SCREENS.items():
        _, page = open_context(**options)
        page.goto("/")
        inspect(page, "blog list", screen)
        page.goto("/offline/")
        inspect(page, "offline page", screen)
        page.goto(EMBED)  # in a narrow article column
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        inspect(page, "embed", screen)
        open_reader(page)
        expect(page.locator("#feed figure.post-photo img")).to_be_visible()
        expect(page.locator("#feed article.post", has_text=LONG_WORD)).to_be_visible()
        inspect(page, "reader", screen)
        page.evaluate("document.documentElement.dir = 'rtl'")
        inspect(page, "reader, right to left", screen)
        page.goto(f"/accounts/login/?next={CONSOLE}")
        inspect(page, "sign-in", screen)
        open_console(page, a11y_server)
        page.locator("#compose-body").fill(f"{LONG_WORD} {LONG_URL}")
        attach_photo(page)
        expect(page.locator("#compose-preview")).to_be_visible()
        inspect(page, "console", screen)
        # Right to left (the Arabic pages' dir="rtl"): the layout mirrors, and still fits.
        left, right = page.evaluate(SEND_BUTTON_GAPS)
        page.evaluate("document.documentElement.dir = 'rtl'")
        inspect(page, "console, right to left", screen)
        rtl_left, rtl_right = page.evaluate(SEND_BUTTON_GAPS)
        if not (right < 1 < left and rtl_left < 1 < rtl_right):
            problems.append(f"console at {screen}: the send button is not at the row's end "
                            f"(gaps left/right: ltr {left}/{right}, rtl {rtl_left}/{rtl_right})")
    assert not problems, "\n".join(problems)
