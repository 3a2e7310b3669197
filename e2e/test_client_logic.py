"""Unit tests of the reader client's logic: the real ES modules in Debian's Chromium, no server.

A fresh browser context per test serves a blank harness page at http://client.test/, the files of
static/ under /static/ and the test doubles (e2e/client_harness.js: a fake WebSocket and a manual
clock) under /e2e/. FeedState runs as it is; FeedConnection gets the fake socket, the manual clock
and a fixed `random()`, so backoff, watchdogs and resyncs are checked to the millisecond without any
real waiting. Nothing here starts Django.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

pytestmark = pytest.mark.e2e

ORIGIN = "http://client.test"
ROOT = Path(__file__).resolve().parent.parent
SERVED = {"/static/": ROOT / "static", "/e2e/": ROOT / "e2e"}
HARNESS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>client harness</title></head><body><main id="harness"></main></body></html>
"""
FEED_STATE = "/static/liveblog/feed-state.js"
FEED_CONNECTION = "/static/liveblog/feed-connection.js"
FEED_VIEW = "/static/liveblog/feed-view.js"


# --- Serving the modules ----------------------------------------------------------------------


def _content_type(path: Path) -> str:
    if path.suffix in (".js", ".mjs"):
        return "text/javascript"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _serve(route: Route) -> None:
    path = "/" + route.request.url.removeprefix(ORIGIN).lstrip("/").split("?")[0].split("#")[0]
    if path == "/":
        route.fulfill(status=200, content_type="text/html", body=HARNESS_HTML)
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


def constants(page: Page) -> dict:
    return page.evaluate(
        """async (path) => {
          const m = await import(path);
          return {
            first: m.BACKOFF_FIRST_MS, max: m.BACKOFF_MAX_MS, connect: m.CONNECT_TIMEOUT_MS,
            stable: m.STABLE_AFTER_MS, silent: m.SILENT_HEARTBEATS,
          };
        }""",
        FEED_CONNECTION,
    )


# --- Frames and posts -------------------------------------------------------------------------


def post(post_id: int, *, pinned: bool = False, key_event: bool = False, html: str | None = None,
         created_at: str = "2024-05-01T12:00:00Z") -> dict:
    return {
        "id": post_id, "client_id": f"c-{post_id}",
        "author": {"username": "ann", "name": "Ann"},
        "body": f"post {post_id}", "html": html or f"<p>post {post_id}</p>",
        "created_at": created_at, "edited_at": None, "pinned": pinned, "key_event": key_event,
    }


BLOG = {"slug": "match", "title": "The match", "status": "live"}


def snapshot(epoch: str, head: int, posts: list[dict], next_before: int | None = None,
             blog: dict | None = BLOG) -> dict:
    frame = {"type": "snapshot", "epoch": epoch, "head": head, "posts": posts,
             "next_before": next_before}
    if blog is not None:
        frame["blog"] = blog
    return frame


def created(seq: int, post_id: int | None = None, **fields) -> dict:
    return {"type": "event", "seq": seq, "kind": "post.created", "at": "2024-05-01T12:00:00Z",
            "post": post(post_id if post_id is not None else 100 + seq, **fields)}


def updated(seq: int, post_id: int, **fields) -> dict:
    return {"type": "event", "seq": seq, "kind": "post.updated", "at": "2024-05-01T12:00:00Z",
            "post": post(post_id, **fields)}


def deleted(seq: int, post_id: int) -> dict:
    return {"type": "event", "seq": seq, "kind": "post.deleted", "at": "2024-05-01T12:00:00Z",
            "post": {"id": post_id, "deleted": True}}


def blog_updated(seq: int, **fields) -> dict:
    return {"type": "event", "seq": seq, "kind": "blog.updated", "at": "2024-05-01T12:00:00Z",
            "blog": {**BLOG, **fields}}


def hello(*, heartbeat: float = 15, head: int = 0, epoch: str = "E1") -> dict:
    return {"type": "hello", "blog": "match", "epoch": epoch, "head": head,
            "heartbeat": heartbeat}


def live(head: int) -> dict:
    return {"type": "live", "head": head}


def ping(head: int) -> dict:
    return {"type": "ping", "head": head}


# --- FeedState in the page --------------------------------------------------------------------


class State:
    """A FeedState in the page (window.feedState), driven from Python."""

    def __init__(self, page: Page, first: dict | None = None) -> None:
        self.page = page
        page.evaluate(
            """async ([path, first]) => {
              const { FeedState } = await import(path);
              window.feedState = new FeedState();
              if (first) window.feedState.applySnapshot(first);
            }""",
            [FEED_STATE, first],
        )

    def apply(self, frame: dict) -> dict:
        return self.page.evaluate("(frame) => window.feedState.applyEvent(frame)", frame)

    def results(self, *frames: dict) -> list[str]:
        return [self.apply(frame)["result"] for frame in frames]

    def call(self, method: str, *args):
        return self.page.evaluate(
            "([method, args]) => window.feedState[method](...args)", [method, list(args)]
        )

    def view(self) -> dict:
        return self.page.evaluate(
            """() => {
              const s = window.feedState;
              return {
                epoch: s.epoch, seq: s.seq, blog: s.blog, nextBefore: s.nextBefore,
                ids: s.sorted().map((p) => p.id),
                posts: Object.fromEntries([...s.posts].map(([id, p]) => [id, p])),
                keyEvents: s.keyEvents().map((p) => p.id),
              };
            }"""
        )


def test_a_snapshot_replaces_the_whole_state(page):
    fresh = State(page)
    assert fresh.view()["seq"] is None
    assert fresh.apply(created(1)) == {"result": "no-base"}, "an event without a base applied"
    assert fresh.view()["ids"] == []

    state = State(page, snapshot("E1", 9, [post(9), post(8), post(7), post(2, pinned=True)],
                                 next_before=7))
    state.apply(created(10, 10))
    state.call("addOlder", {"posts": [post(6), post(5)], "next_before": 5})
    before = state.view()
    assert (before["epoch"], before["seq"], before["nextBefore"]) == ("E1", 10, 5)
    assert before["ids"] == [2, 10, 9, 8, 7, 6, 5]

    other_blog = {**BLOG, "title": "Replayed from a backup"}
    state.call("applySnapshot", snapshot("E2", 3, [post(3), post(1)], blog=other_blog))
    after = state.view()
    assert (after["epoch"], after["seq"], after["nextBefore"]) == ("E2", 3, None)
    assert after["ids"] == [3, 1], "posts of the old state survived the snapshot"
    assert after["blog"] == other_blog

    # A snapshot without `blog` (the posts page shape) keeps the blog; next_before is taken over.
    state.call("applySnapshot", {"epoch": "E2", "head": 4, "posts": [post(4)], "next_before": 4})
    assert state.view()["blog"] == other_blog
    assert state.view()["nextBefore"] == 4
    assert state.results(created(5)) == ["applied"], "events do not continue from the new head"


def test_the_next_seq_applies_and_reports_its_change(page):
    state = State(page, snapshot("E1", 3, [post(3)]))
    answer = state.apply(created(4, 4))
    assert answer == {"result": "applied",
                      "change": {"kind": "upsert", "post": post(4), "fresh": True}}
    assert state.view()["seq"] == 4
    assert state.view()["ids"] == [4, 3]

    # A create for a post that is already shown is not fresh (nothing new to announce).
    again = state.apply(created(5, 4, html="<p>edited</p>"))
    assert again["change"]["fresh"] is False
    assert state.view()["posts"]["4"]["html"] == "<p>edited</p>"

    # A snapshot at head 0 (a new epoch) is a base: seq 1 applies.
    state.call("applySnapshot", snapshot("E2", 0, []))
    assert state.results(created(1)) == ["applied"]


def test_duplicates_are_ignored_and_change_nothing(page):
    state = State(page, snapshot("E1", 0, []))
    assert state.results(created(1, 1), created(2, 2), updated(3, 1, pinned=True),
                         created(4, 4), created(5, 5)) == ["applied"] * 5
    before = state.view()

    # Replays of what was already applied — a deletion and an edit among them must not act.
    replay = [deleted(5, 5), updated(4, 4, html="<p>stale</p>"), created(1, 1), blog_updated(
        2, title="stale"), deleted(3, 1)]
    assert [state.apply(frame) for frame in replay] == [{"result": "duplicate"}] * 5
    # A replay overlapping live delivery: 3, 4, 5 came live already, then again in the replay.
    assert state.results(created(3, 3), created(4, 4), created(5, 5)) == ["duplicate"] * 3
    assert state.view() == before

    assert state.results(created(6, 6)) == ["applied"]
    assert state.view()["seq"] == 6


def test_a_gap_is_never_applied(page):
    state = State(page, snapshot("E1", 3, [post(3)], next_before=None))
    before = state.view()
    assert state.apply(created(5, 50)) == {"result": "gap"}
    assert state.apply(deleted(7, 3)) == {"result": "gap"}
    assert state.apply(blog_updated(9, title="later")) == {"result": "gap"}
    assert state.view() == before, "a frame beyond last + 1 changed the state"
    assert state.results(created(4, 40)) == ["applied"]
    assert state.view()["ids"] == [40, 3]


def test_out_of_order_frames_apply_only_in_order(page):
    state = State(page, snapshot("E1", 3, []))
    # 5 and 6 arrive around 4: only 4 is next; 6 is a gap once 5 was refused.
    assert state.results(created(5), created(4), created(6)) == ["gap", "applied", "gap"]
    assert state.view()["seq"] == 4
    assert state.view()["ids"] == [104]
    # The resent run fills in, in order.
    assert state.results(created(4), created(5), created(6)) == ["duplicate", "applied", "applied"]
    assert state.view()["ids"] == [106, 105, 104]


def test_updates_deletes_and_blog_changes(page):
    state = State(page, snapshot("E1", 2, [post(2), post(1)]))

    edit = state.apply(updated(3, 1, html="<p>corrected</p>", key_event=True))
    assert edit["result"] == "applied"
    assert edit["change"] == {"kind": "upsert", "fresh": False,
                              "post": post(1, html="<p>corrected</p>", key_event=True)}
    assert state.view()["posts"]["1"]["html"] == "<p>corrected</p>"

    pin = state.apply(updated(4, 1, pinned=True))
    assert pin["change"]["kind"] == "upsert"
    assert state.view()["ids"] == [1, 2], "a pinned post is not shown first"

    gone = state.apply(deleted(5, 2))
    assert gone == {"result": "applied", "change": {"kind": "remove", "id": 2}}
    assert state.view()["ids"] == [1]

    renamed = {**BLOG, "title": "Final whistle", "status": "ended"}
    change = state.apply(blog_updated(6, title="Final whistle", status="ended"))
    assert change == {"result": "applied", "change": {"kind": "blog", "blog": renamed}}
    assert state.view()["blog"] == renamed

    # A kind this client does not know still moves the seq on (the log stays gapless).
    assert state.apply({"type": "event", "seq": 7, "kind": "poll.created"}) == {
        "result": "applied", "change": {"kind": "none"}}
    assert state.view()["seq"] == 7
    assert state.results(created(8)) == ["applied"]


def test_updates_below_the_loaded_range(page):
    # Posts 20…25 are loaded; older ones (below next_before = 20) are not, except pinned ones.
    state = State(page, snapshot("E1", 10, [post(i) for i in range(25, 19, -1)], next_before=20))

    old_edit = state.apply(updated(11, 5, html="<p>edited long ago</p>"))
    assert old_edit == {"result": "applied", "change": {"kind": "none"}}
    assert 5 not in state.view()["ids"], "an edit pulled an unloaded old post into the feed"
    assert state.view()["seq"] == 11

    pinned = state.apply(updated(12, 6, pinned=True))
    assert pinned["change"] == {"kind": "upsert", "post": post(6, pinned=True), "fresh": False}
    assert state.view()["ids"][0] == 6, "a pinned old post is not shown on top"

    # Unpinned again: it goes back below the loaded range, so it leaves the feed.
    unpinned = state.apply(updated(13, 6, pinned=False))
    assert unpinned["change"] == {"kind": "remove", "id": 6}
    assert 6 not in state.view()["ids"]

    # The oldest loaded post (id == next_before) is inside the range.
    edge = state.apply(updated(14, 20, html="<p>edge</p>"))
    assert edge["change"]["kind"] == "upsert"
    assert state.view()["posts"]["20"]["html"] == "<p>edge</p>"


def test_add_older_ignores_posts_already_present(page):
    state = State(page, snapshot("E1", 5, [post(22), post(21), post(20), post(3, pinned=True)],
                                 next_before=20))
    state.apply(updated(6, 3, pinned=True, html="<p>live edit</p>"))

    added = state.call("addOlder", {"posts": [post(19), post(18), post(3, pinned=True)],
                                    "next_before": 18})
    assert [p["id"] for p in added] == [19, 18]
    view = state.view()
    assert view["ids"] == [3, 22, 21, 20, 19, 18]
    assert view["posts"]["3"]["html"] == "<p>live edit</p>", "an older page overwrote a post"
    assert view["nextBefore"] == 18
    assert state.call("inLoadedRange", post(18)) is True
    assert state.call("inLoadedRange", post(17)) is False
    assert state.call("inLoadedRange", post(1, pinned=True)) is True

    assert state.call("addOlder", {"posts": [post(18), post(17)], "next_before": None}) == [
        post(17)]
    assert state.view()["nextBefore"] is None
    assert state.call("inLoadedRange", post(1)) is True


def test_sorted_puts_pinned_first_then_newest(page):
    posts = [post(3, pinned=True), post(10), post(1), post(7, pinned=True), post(12), post(5)]
    state = State(page, snapshot("E1", 1, posts))
    assert state.view()["ids"] == [7, 3, 12, 10, 5, 1]
    state.apply(updated(2, 12, pinned=True))
    assert state.view()["ids"] == [12, 7, 3, 10, 5, 1]
    state.apply(updated(3, 7, pinned=False))
    assert state.view()["ids"] == [12, 3, 10, 7, 5, 1]


def test_key_events_are_the_flagged_posts_newest_first(page):
    posts = [post(2, key_event=True), post(9), post(4, key_event=True, pinned=True),
             post(7, key_event=True)]
    state = State(page, snapshot("E1", 1, posts))
    assert state.view()["keyEvents"] == [7, 4, 2]
    state.apply(updated(2, 9, key_event=True))
    state.apply(deleted(3, 4))
    state.apply(updated(4, 2, key_event=False))
    assert state.view()["keyEvents"] == [9, 7]


# --- FeedConnection with a fake socket and a manual clock -------------------------------------


class Client:
    """A FeedConnection in the page (window.t, see client_harness.js), driven from Python."""

    def __init__(self, page: Page, **options) -> None:
        self.page = page
        page.evaluate(
            """async (options) => {
              window.harness = await import('/e2e/client_harness.js');
              window.t = window.harness.setup(options);
            }""",
            options,
        )

    def js(self, expression: str, arg=None):
        """Evaluate `expression` with `t` (the setup) and `arg` in scope."""
        return self.page.evaluate(
            f"(arg) => {{ const t = window.t; return ({expression}); }}", arg
        )

    def connect(self) -> None:
        self.js("void t.connection.connect()")

    def deliver(self, *frames: dict, socket: int = -1) -> None:
        self.js("arg.frames.forEach((f) => t.sockets.at(arg.socket).deliver(f))",
                {"frames": list(frames), "socket": socket})

    def fail(self, socket: int = -1) -> None:
        self.js("void t.sockets.at(arg).fail()", socket)

    def advance(self, ms: float) -> None:
        self.js("void t.clock.advance(arg)", ms)

    @property
    def now(self) -> dict:
        return self.page.evaluate("() => window.harness.summary(window.t)")

    def sent(self, socket: int = -1) -> list[dict]:
        return self.now["sockets"][socket]["sent"]


def base(seq: int, epoch: str = "E1") -> dict:
    return snapshot(epoch, seq, [post(seq)] if seq else [])


def go_live(client: Client, seq: int, *, heartbeat: float = 15, epoch: str = "E1") -> None:
    client.connect()
    client.deliver(hello(heartbeat=heartbeat, head=seq, epoch=epoch), live(seq))
    assert client.now["status"] == "live"


def test_constants_match_the_design(page):
    # DESIGN.md: backoff 0.5 s doubling to 30 s; silent for 2.5 heartbeats = dead; 10 s connect.
    assert constants(page) == {"first": 500, "max": 30000, "connect": 10000, "stable": 10000,
                               "silent": 2.5}


def test_the_connect_url_carries_since_and_epoch(page):
    client = Client(page, url=None, slug="match", snapshot=base(7, epoch="a1b2c3"))
    client.connect()
    assert client.now["sockets"][0]["url"] == (
        "ws://client.test/ws/liveblog/match/?since=7&epoch=a1b2c3")

    client = Client(page, url=None, slug="half time", snapshot=base(0, epoch="e9"))
    client.connect()
    assert client.now["sockets"][0]["url"] == (
        "ws://client.test/ws/liveblog/half%20time/?since=0&epoch=e9")

    # No base yet: no since, and the server answers with a snapshot.
    client = Client(page, url="ws://client.test/ws/liveblog/match/")
    client.connect()
    assert client.now["sockets"][0]["url"] == "ws://client.test/ws/liveblog/match/"
    client.deliver(hello(head=4), snapshot("E1", 4, [post(4)]), live(4))
    assert client.now["seq"] == 4
    client.fail()
    client.advance(500)
    assert client.now["sockets"][1]["url"] == "ws://client.test/ws/liveblog/match/?since=4&epoch=E1"


def test_live_frame_sets_status_live_and_events_apply(page):
    client = Client(page, snapshot=base(7))
    client.connect()
    assert client.now["states"] == ["connecting"]
    client.deliver(hello(head=9), created(8, 8), created(9, 9))
    assert client.now["status"] == "connecting", "live before the replay was done"
    assert client.now["seq"] == 9
    client.deliver(live(9))
    now = client.now
    assert now["states"] == ["connecting", "live"]
    assert [c["post"]["id"] for c in now["changes"]] == [8, 9]

    # A frame that is not JSON and an error frame are survived; live events keep applying.
    client.deliver("not json{", {"type": "error", "code": "invalid", "detail": "test"},
                   created(10, 10))
    now = client.now
    assert now["seq"] == 10
    assert now["ids"] == [10, 9, 8, 7]
    assert now["status"] == "live"
    assert now["resets"] == 0
    assert now["sockets"][0]["sent"] == []


def test_a_gap_sends_one_resync_and_the_replay_heals_it(page):
    client = Client(page, snapshot=base(3))
    go_live(client, 3)
    client.deliver(created(5), created(6), created(7))
    now = client.now
    assert now["sockets"][0]["sent"] == [{"type": "resync", "since": 3, "epoch": "E1"}], (
        "expected exactly one resync from the last applied seq")
    assert now["seq"] == 3
    assert now["changes"] == []

    # The server answers like a new connection from since=3: replay 4…7, then live.
    client.deliver(created(4), created(5), created(6), created(7), live(7))
    client.deliver(created(8))
    now = client.now
    assert now["seq"] == 8
    assert [c["post"]["id"] for c in now["changes"]] == [104, 105, 106, 107, 108]
    assert len(now["sockets"]) == 1 and now["status"] == "live"

    # A later gap is a new question: one more resync, from the new position.
    client.deliver(created(10), created(11))
    assert client.sent() == [{"type": "resync", "since": 3, "epoch": "E1"},
                             {"type": "resync", "since": 8, "epoch": "E1"}]

    # Once a resync is answered (`live`), a gap from that same seq asks again.
    client.deliver(live(8), created(10))
    assert client.sent()[2:] == [{"type": "resync", "since": 8, "epoch": "E1"}], (
        "an answered resync still suppressed the next one")


def test_a_resync_answered_with_a_snapshot_replaces_the_state(page):
    client = Client(page, snapshot=snapshot("E1", 3, [post(3), post(2)]))
    go_live(client, 3)
    client.deliver(created(9), ping(9))
    assert client.sent() == [{"type": "resync", "since": 3, "epoch": "E1"}]
    # Too far behind for a replay: the answer is a snapshot at the head, then live.
    client.deliver(snapshot("E1", 9, [post(109), post(3)], next_before=3), live(9), created(10))
    now = client.now
    assert now["resets"] == 1
    assert (now["seq"], now["ids"], now["nextBefore"]) == (10, [110, 109, 3], 3)
    assert [c["post"]["id"] for c in now["changes"]] == [110]
    assert len(now["sockets"][0]["sent"]) == 1


def test_a_ping_ahead_asks_for_a_resync(page):
    client = Client(page, snapshot=base(5))
    go_live(client, 5)
    client.deliver(ping(5), ping(4))
    assert client.sent() == [], "a ping at (or behind) the last seq asked for a resync"

    client.deliver(ping(7))
    assert client.sent() == [{"type": "resync", "since": 5, "epoch": "E1"}]
    client.deliver(ping(7), ping(8))
    assert len(client.sent()) == 1, "asked again while the first resync was unanswered"

    client.deliver(created(6), created(7), created(8), live(8), ping(8))
    now = client.now
    assert now["seq"] == 8
    assert len(now["sockets"][0]["sent"]) == 1


def test_a_snapshot_of_another_epoch_replaces_the_state(page):
    client = Client(page, snapshot=snapshot("E1", 7, [post(7), post(6)], next_before=6))
    client.connect()
    assert client.now["sockets"][0]["url"].endswith("?since=7&epoch=E1")
    # The log was reset: the server has epoch E2 at head 2, and answers with its snapshot.
    client.deliver(hello(head=2, epoch="E2"),
                   snapshot("E2", 2, [post(31), post(30)], blog={**BLOG, "title": "Reset"}),
                   live(2))
    now = client.now
    assert (now["epoch"], now["seq"], now["ids"], now["nextBefore"]) == ("E2", 2, [31, 30], None)
    assert now["blog"]["title"] == "Reset"
    assert now["resets"] == 1
    assert now["changes"] == []
    assert now["status"] == "live"

    client.deliver(created(3, 32))
    assert client.now["ids"] == [32, 31, 30]
    client.fail()
    client.advance(500)
    assert client.now["sockets"][1]["url"].endswith("?since=3&epoch=E2")


def test_a_silent_socket_is_closed_and_replaced(page):
    limits = constants(page)
    heartbeat_s = 2
    silence_ms = heartbeat_s * 1000 * limits["silent"]
    client = Client(page, snapshot=base(4))
    go_live(client, 4, heartbeat=heartbeat_s)

    # Pings every heartbeat keep the socket for as long as they come.
    for _ in range(10):
        client.advance(heartbeat_s * 1000)
        client.deliver(ping(4))
    assert client.now["sockets"][0]["closeCalls"] == 0
    assert client.now["current"] == 0

    # Then nothing: alive up to SILENT_HEARTBEATS × heartbeat, dead after.
    client.advance(silence_ms - 1)
    assert client.now["sockets"][0]["closeCalls"] == 0
    assert client.now["status"] == "live"
    client.advance(1)
    now = client.now
    assert now["sockets"][0]["closeCalls"] == 1, "the silent socket was not closed"
    assert now["current"] == -1
    assert now["status"] == "reconnecting"
    assert now["waits"] == [limits["first"]], "no reconnect scheduled (attempt was reset: live)"

    client.advance(limits["first"])
    now = client.now
    assert len(now["sockets"]) == 2
    assert now["sockets"][1]["url"].endswith("?since=4&epoch=E1")
    assert now["overlaps"] == []

    # The stalled socket reports its close much later: that must not touch the new one.
    client.js("void t.sockets[0].finishClose(1006)")
    now = client.now
    assert now["current"] == 1
    assert now["waits"] == [limits["connect"]], "a second reconnect was scheduled"

    # The new socket answers with hello and stalls: hello alone sets the silence limit.
    client.deliver(hello(head=4, heartbeat=heartbeat_s))
    client.advance(silence_ms - 1)
    assert client.now["sockets"][1]["closeCalls"] == 0, "closed before 2.5 heartbeats of silence"
    client.advance(1)
    now = client.now
    assert now["sockets"][1]["closeCalls"] == 1
    assert now["current"] == -1


def test_a_connect_without_an_answer_is_abandoned(page):
    limits = constants(page)
    client = Client(page, snapshot=base(2))
    client.connect()
    client.advance(limits["connect"] - 1)
    assert client.now["sockets"][0]["closeCalls"] == 0
    assert client.now["current"] == 0
    client.advance(1)
    now = client.now
    assert now["sockets"][0]["closeCalls"] == 1, "a connect that never answered was kept"
    assert now["current"] == -1
    assert now["status"] == "reconnecting"
    assert now["waits"] == [limits["first"]]
    client.advance(limits["first"])
    assert len(client.now["sockets"]) == 2

    # A connect that answers in time is kept past the connect timeout.
    client.advance(limits["connect"] - 1000)
    client.deliver(hello(head=2, heartbeat=15))
    client.advance(1000)
    now = client.now
    assert now["sockets"][1]["closeCalls"] == 0
    assert now["current"] == 1


def test_never_two_sockets(page):
    client = Client(page, snapshot=base(1))
    client.connect()
    client.js("void t.connection.reconnectNow()")
    client.connect()
    assert len(client.now["sockets"]) == 1, "a second socket while the first was connecting"
    client.deliver(hello(head=1), live(1))
    client.js("void t.connection.reconnectNow()")
    client.connect()
    assert len(client.now["sockets"]) == 1, "a second socket while the first was live"

    # Dropped: a retry waits; reconnecting now takes its place instead of adding one.
    client.fail()
    assert client.now["waits"] == [500]
    client.js("void t.connection.reconnectNow()")
    assert len(client.now["sockets"]) == 2
    client.advance(1000)  # past the cancelled retry, before the new socket's connect timeout
    now = client.now
    assert len(now["sockets"]) == 2, "the cancelled retry still opened a socket"
    assert now["overlaps"] == []


def test_a_socket_that_cannot_be_created_is_retried_with_backoff(page):
    client = Client(page, snapshot=base(1), random=1, refuse=2)
    client.connect()
    assert client.now["sockets"] == []
    assert client.now["waits"] == [500]
    client.advance(500)
    assert client.now["waits"] == [1000]
    client.advance(1000)
    now = client.now
    assert now["refused"] == [0, 500]
    assert [s["createdAt"] for s in now["sockets"]] == [1500]
    client.deliver(hello(head=1), live(1))
    assert client.now["status"] == "live"


def fail_and_measure_waits(client: Client, count: int) -> list[float]:
    """Fail the current socket `count` times; the time before each next socket appears."""
    waits = []
    for _ in range(count):
        client.fail()
        (wait,) = client.now["waits"]
        sockets = len(client.now["sockets"])
        if wait > 0:
            client.advance(wait - 1)
            assert len(client.now["sockets"]) == sockets, f"reconnected before {wait} ms"
            client.advance(1)
        else:
            client.advance(0)
        assert len(client.now["sockets"]) == sockets + 1, f"no reconnect after {wait} ms"
        waits.append(wait)
    return waits


def test_backoff_doubles_up_to_the_cap_with_random_one(page):
    client = Client(page, snapshot=base(1), random=1)
    client.connect()
    waits = fail_and_measure_waits(client, 9)
    assert waits == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    now = client.now
    assert now["overlaps"] == []
    assert now["states"] == ["connecting", "reconnecting"]


def test_backoff_waits_nothing_with_random_zero(page):
    client = Client(page, snapshot=base(1), random=0)
    client.connect()
    assert fail_and_measure_waits(client, 6) == [0] * 6
    assert client.now["now"] == 0


def test_backoff_delay_stays_within_its_ceiling(page):
    result = page.evaluate(
        """async (path) => {
          const { backoffDelay } = await import(path);
          const draws = [0, 1e-9, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999, 1];
          for (let i = 0; i < 200; i += 1) draws.push(Math.random());
          const bad = [];
          const exact = [];
          for (let attempt = 0; attempt <= 60; attempt += 1) {
            const ceiling = Math.min(30000, 500 * 2 ** attempt);
            for (const r of draws) {
              const delay = backoffDelay(attempt, () => r);
              if (!(delay >= 0 && delay <= ceiling)) bad.push({ attempt, r, delay });
            }
            exact.push(backoffDelay(attempt, () => 1));
            const byDefault = backoffDelay(attempt);
            if (!(byDefault >= 0 && byDefault <= ceiling)) bad.push({ attempt, byDefault });
          }
          return { bad, exact };
        }""",
        FEED_CONNECTION,
    )
    assert result["bad"] == []
    assert result["exact"][:8] == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    assert set(result["exact"][6:]) == {30000}


def test_attempts_reset_after_a_stable_live_connection_but_not_before(page):
    limits = constants(page)
    client = Client(page, snapshot=base(1), random=1)
    client.connect()
    assert fail_and_measure_waits(client, 3) == [500, 1000, 2000]

    # Live, but dropped just before STABLE_AFTER_MS: the backoff goes on growing.
    client.deliver(hello(head=1), live(1))
    client.advance(limits["stable"] - 1)
    assert client.now["attempt"] == 3
    assert fail_and_measure_waits(client, 1) == [4000]

    # Live for STABLE_AFTER_MS: the next drop starts again from the first wait.
    client.deliver(hello(head=1), live(1))
    client.advance(limits["stable"])
    assert client.now["attempt"] == 0
    assert fail_and_measure_waits(client, 2) == [500, 1000]

    # The stability timer of a connection dropped just before it fired is cancelled: it must
    # not reset the backoff while the next wait runs.
    client.deliver(hello(head=1), live(1))
    client.advance(limits["stable"] - 1)
    assert fail_and_measure_waits(client, 1) == [2000]
    assert client.now["attempt"] == 3
    assert fail_and_measure_waits(client, 1) == [4000]


def test_status_goes_connecting_live_then_reconnecting_or_offline(page):
    client = Client(page, snapshot=base(1), online=True)
    go_live(client, 1)
    client.fail()
    assert client.now["states"] == ["connecting", "live", "reconnecting"]
    client.advance(500)
    assert client.now["states"] == ["connecting", "live", "reconnecting"]
    client.deliver(hello(head=1), live(1))
    assert client.now["states"] == ["connecting", "live", "reconnecting", "live"]

    # The server closes the socket (a deploy): the same path.
    client.js("void t.sockets.at(-1).finishClose(1012)")
    assert client.now["status"] == "reconnecting"

    client = Client(page, snapshot=base(1), online=False)
    go_live(client, 1)
    client.fail()
    assert client.now["states"] == ["connecting", "live", "offline"]
    client.advance(500)  # a retry while still offline stays "offline"
    client.fail()
    assert client.now["states"] == ["connecting", "live", "offline"]
    client.js("void (t.online = true)")
    client.advance(1000)
    assert client.now["states"] == ["connecting", "live", "offline", "reconnecting"]
    client.deliver(hello(head=1), live(1))
    assert client.now["status"] == "live"


def test_start_follows_the_network_and_the_tab(page):
    client = Client(page, snapshot=base(1), random=1)
    assert page.evaluate("document.visibilityState") == "visible"
    client.js("void t.connection.start()")
    assert len(client.now["sockets"]) == 1
    assert fail_and_measure_waits(client, 3) == [500, 1000, 2000]
    # Shown again while a connect is under way: no second socket, and the backoff stands.
    client.js("void document.dispatchEvent(new Event('visibilitychange'))")
    assert len(client.now["sockets"]) == 4
    assert client.now["attempt"] == 3
    client.fail()
    assert client.now["waits"] == [4000]

    client.js("void (t.online = false, window.dispatchEvent(new Event('offline')))")
    assert client.now["status"] == "offline"
    # The network is back: reconnect at once, with the backoff started over.
    client.js("void (t.online = true, window.dispatchEvent(new Event('online')))")
    now = client.now
    assert len(now["sockets"]) == 5
    assert now["status"] == "reconnecting"
    assert fail_and_measure_waits(client, 1) == [500]

    # A tab shown again while a socket is up does not open another.
    client.deliver(hello(head=1), live(1))
    client.js("void (window.dispatchEvent(new Event('online')), "
              "document.dispatchEvent(new Event('visibilitychange')))")
    assert len(client.now["sockets"]) == 6
    # …but while waiting to retry it reconnects at once.
    client.fail()
    client.js("void document.dispatchEvent(new Event('visibilitychange'))")
    now = client.now
    assert len(now["sockets"]) == 7
    assert now["overlaps"] == []


# --- relativeTime -----------------------------------------------------------------------------


def test_relative_time(page):
    result = page.evaluate(
        """async (path) => {
          const { relativeTime } = await import(path);
          const now = new Date("2024-05-01T12:00:00Z");
          const ago = (seconds) => relativeTime(new Date(now - seconds * 1000), now);
          const absolute = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });
          const old = new Date(now - 25 * 3600 * 1000);
          const older = new Date("2023-11-20T08:30:00Z");
          return {
            cases: [0, 10, 44, 45, 4 * 60, 59 * 60, 2 * 3600, 23 * 3600].map(ago),
            skewed: relativeTime(new Date(+now + 5000), now),
            old: relativeTime(old, now), oldExpected: absolute.format(old),
            older: relativeTime(older, now), olderExpected: absolute.format(older),
            defaultNow: relativeTime(new Date(Date.now() - 3 * 60 * 1000)),
          };
        }""",
        FEED_VIEW,
    )
    assert result["cases"] == ["just now", "just now", "just now", "1 min ago", "4 min ago",
                               "59 min ago", "2 h ago", "23 h ago"]
    assert result["skewed"] == "just now"
    assert result["old"] == result["oldExpected"]
    assert "ago" not in result["old"] and "2024" in result["old"]
    assert result["older"] == result["olderExpected"] and "2023" in result["older"]
    assert result["defaultNow"] == "3 min ago"


# --- The local copy (feed-store.js) -----------------------------------------------------------

FEED_STORE = "/static/liveblog/feed-store.js"


def test_the_stored_record_keeps_the_newest_posts_and_every_pinned_one(page):
    result = page.evaluate(
        """async ([statePath, storePath, posts]) => {
          const { FeedState } = await import(statePath);
          const { recordOf, MAX_POSTS_PER_BLOG } = await import(storePath);
          const state = new FeedState({ epoch: "E1", seq: 300, blog: { slug: "match" }, posts });
          const record = recordOf(state, 1234);
          return { max: MAX_POSTS_PER_BLOG, ids: record.posts.map((p) => p.id),
                   next_before: record.next_before, head: record.head, epoch: record.epoch,
                   slug: record.slug, savedAt: record.savedAt };
        }""",
        [FEED_STATE, FEED_STORE, [post(1, pinned=True)] + [post(n) for n in range(2, 302)]],
    )
    kept = result["ids"]
    assert result["max"] == 200
    assert kept[0] == 1  # the old pinned post stays
    assert kept[1:] == list(range(301, 101, -1))  # the newest 200
    assert result["next_before"] == 102  # older ones come back through "Older updates"
    assert (result["head"], result["epoch"], result["slug"], result["savedAt"]) == (
        300, "E1", "match", 1234)


def test_a_page_starts_from_the_stored_copy_only_when_it_is_further_along(page):
    result = page.evaluate(
        """async (path) => {
          const { newest } = await import(path);
          const page = { epoch: "E1", head: 10 };
          return [
            newest(page, undefined) === page,
            newest(page, { epoch: "E1", head: 12 }).head,
            newest(page, { epoch: "E1", head: 10 }) === page,  // same head: the copy
            newest(page, { epoch: "E1", head: 9 }) === page,
            newest(page, { epoch: "E0", head: 99 }) === page,
          ];
        }""",
        FEED_STORE,
    )
    assert result == [True, 12, False, True, True]


def test_the_store_saves_once_for_a_burst_and_bounds_the_number_of_blogs(page):
    result = page.evaluate(
        """async ([statePath, storePath]) => {
          const { FeedState } = await import(statePath);
          const { FeedStore, MAX_BLOGS } = await import(storePath);
          const store = await FeedStore.open();
          for (let n = 0; n < MAX_BLOGS + 3; n += 1) {
            const state = new FeedState({ epoch: "E", seq: n, blog: { slug: `blog-${n}` } });
            await store.save(state);
            await new Promise((resolve) => setTimeout(resolve, 2)); // distinct savedAt
          }
          const oldest = await store.load("blog-0");
          const newestSaved = await store.load(`blog-${MAX_BLOGS + 2}`);
          const state = new FeedState({ epoch: "E", seq: 1, blog: { slug: "burst" } });
          let saves = 0;
          const save = store.save.bind(store);
          store.save = (latest) => { saves += 1; return save(latest); };
          for (let seq = 1; seq <= 5; seq += 1) { state.seq = seq; store.saveSoon(state); }
          const deadline = Date.now() + 5000; // wait for the condition, with a deadline
          while (store.savedHead !== 5 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          const burst = await store.load("burst");
          return { oldest: oldest ?? null, newest: newestSaved.head, burst: burst.head,
                   savedHead: store.savedHead, saves };
        }""",
        [FEED_STATE, FEED_STORE],
    )
    assert result == {"oldest": None, "newest": 22, "burst": 5, "savedHead": 5, "saves": 1}


# --- The author's outbox (outbox.js) ----------------------------------------------------------


def test_the_outbox_retry_schedule_doubles_from_2_s_to_60_s_with_jitter(page):
    first, ceiling, bounds = page.evaluate(
        """async (path) => {
          const { retryDelay, RETRY_FIRST_MS, RETRY_MAX_MS } = await import(path);
          return [RETRY_FIRST_MS, RETRY_MAX_MS, [0, 1, 2, 3, 4, 5, 6, 10].map(
            (n) => [retryDelay(n, () => 0), retryDelay(n, () => 1)])];
        }""",
        "/static/liveblog/outbox.js",
    )
    assert (first, ceiling) == (2000, 60000)
    # Half to all of a cap that doubles from 2 s up to 60 s.
    assert bounds == [[1000, 2000], [2000, 4000], [4000, 8000], [8000, 16000],
                      [16000, 32000], [30000, 60000], [30000, 60000], [30000, 60000]]
