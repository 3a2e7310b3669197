"""The newsroom desk on two phones, in real Chromium against a real daphne process: a contributor
submits (with a photo, through a network that cuts out), an editor sees it arrive live, edits and
publishes it, and every reader sees it exactly once; returned with a note and revised; and an
editor's phone that drops off catches up with what arrived meanwhile, each once.

Each phone is a browser context of its own (its own cookies and storage), phone-sized, signed in
as a different person. The contributor's phone is 320 px wide: the smallest the desk supports.
"""

from __future__ import annotations

import io
import re
import uuid

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from devstack.daphne import ApiClient, DaphneServer
from devstack.proxy import FlakyProxy

pytestmark = [pytest.mark.e2e, pytest.mark.daphne_env(LIVEBLOG_HEARTBEAT_SECONDS="1")]

SLUG = "match"
CONSOLE = f"/liveblog/{SLUG}/write/"
READER = f"/liveblog/{SLUG}/"
PASSWORD = "desk-password-123"
EDITOR, CONTRIBUTOR = "edith", "carlos"
# Slack for retries with backoff and reconnects on a loaded machine, not a sleep.
RECOVERY_TIMEOUT_MS = 20_000
PHONE = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}


# --- People and phones ------------------------------------------------------------------------


@pytest.fixture
def people(server: DaphneServer, api: ApiClient) -> None:
    """An editor and a contributor on the blog, given their roles by its owner (the site's
    author) through the members API."""
    server.site.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model; User = get_user_model(); "
        f"User.objects.create_user({EDITOR!r}, password={PASSWORD!r}, first_name='Edith'); "
        f"User.objects.create_user({CONTRIBUTOR!r}, password={PASSWORD!r}, first_name='Carlos')"
    ))
    for username, role in ((EDITOR, "editor"), (CONTRIBUTOR, "contributor")):
        status, member = api.request("PUT", f"/api/liveblog/{SLUG}/members/{username}",
                                     {"role": role})
        assert status == 200 and member["role"] == role, member


@pytest.fixture
def phone(browser: Browser, server: DaphneServer, browser_errors, people):
    """`phone(name, username, base_url, width)`: a signed-in phone on the author console. Its
    context is closed after the test, before the server (and any proxy) stops."""
    contexts: list[BrowserContext] = []

    def open_phone(name: str, username: str, base_url: str, width: int = 360) -> Page:
        context = browser.new_context(
            base_url=base_url, viewport={"width": width, "height": 740}, **PHONE
        )
        contexts.append(context)
        page = context.new_page()
        browser_errors.watch(page, name)
        page.goto(f"{base_url}/accounts/login/?next={CONSOLE}")
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(PASSWORD)
        page.locator(".login-form button[type=submit]").click()
        expect(page).to_have_url(re.compile(re.escape(CONSOLE) + "$"))
        expect(page.locator("#compose")).to_have_attribute("data-ready", "true")
        expect(page.locator("#desk-connection")).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        return page

    yield open_phone
    for context in contexts:
        context.close()


@pytest.fixture
def proxy(server: DaphneServer):
    proxy = FlakyProxy(server.port, port=server.site.front_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def contributor_api(server: DaphneServer, people) -> ApiClient:
    return ApiClient(server.url).login(CONTRIBUTOR, PASSWORD)


def reader_page(browser: Browser, server: DaphneServer, browser_errors) -> Page:
    context = browser.new_context(base_url=server.url, viewport={"width": 360, "height": 740},
                                  **PHONE)
    page = context.new_page()
    browser_errors.watch(page, "reader")
    page.goto(server.url + READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


@pytest.fixture
def reader(browser: Browser, server: DaphneServer, browser_errors):
    page = reader_page(browser, server, browser_errors)
    yield page
    page.context.close()


# --- Helpers -----------------------------------------------------------------------------------


def jpeg(size: tuple[int, int] = (1200, 800)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size)
    for x in range(0, size[0], 40):  # some content, so it is not a flat colour
        image.paste((x % 255, 90, 255 - x % 255), (x, 0, x + 20, size[1]))
    data = io.BytesIO()
    image.save(data, "JPEG", quality=85)
    return data.getvalue()


def queue_item(page: Page, text: str) -> Locator:
    return page.locator("#desk li.submission", has_text=text)


def own_item(page: Page, text: str) -> Locator:
    return page.locator("#my-submissions li.submission", has_text=text)


def submission_id(item: Locator) -> int:
    return int(item.get_attribute("data-submission-id"))


def offline_errors(port: int) -> str:
    """What Chromium logs, as console errors, while a phone's network is down: expected."""
    return (rf"(WebSocket connection to 'ws://127\.0\.0\.1:{port}/ws/[^']*' failed"
            r"|net::ERR_|Failed to load resource)")


def assert_no_reload(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def assert_fits(page: Page, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"the console is {overflow} px wide on a {width} px phone"


# Everything this origin keeps: IndexedDB's rows as JSON (blobs show as {}), the Cache Storage's
# URLs, and the text of the pages cached there.
STORED = """async () => {
  const idb = [];
  for (const { name } of await indexedDB.databases()) {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open(name);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    for (const store of db.objectStoreNames) {
      const rows = await new Promise((resolve, reject) => {
        const request = db.transaction(store).objectStore(store).getAll();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      idb.push(`${name}/${store}: ${JSON.stringify(rows)}`);
    }
    db.close();
  }
  const urls = [];
  const pages = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      urls.push(request.url);
      const response = await cache.match(request);
      if ((response.headers.get("Content-Type") || "").startsWith("text/html")) {
        pages.push(await response.text());
      }
    }
  }
  return { idb: idb.join("\\n"), urls, pages: pages.join("\\n") };
}"""
DESK_URL = re.compile(r"/api/liveblog/[^/]+/(desk|submissions)|[?&]desk=1")


def assert_nothing_of_the_desk_kept(page: Page, *texts: str) -> None:
    """The desk is followed from memory only: none of its unpublished text, no desk API answer
    and no desk photo is in this phone's IndexedDB or Cache Storage."""
    stored = page.evaluate(STORED)
    assert stored["idb"], "IndexedDB was read (the outbox and the feed's copy are there)"
    for text in texts:
        assert text not in stored["idb"], f"{text!r} is in IndexedDB"
        assert text not in stored["pages"], f"{text!r} is in a cached page"
    kept = [url for url in stored["urls"] if DESK_URL.search(url)]
    assert not kept, f"the desk is in the Cache Storage: {kept}"


# --- The tests ---------------------------------------------------------------------------------


def test_a_photo_submitted_over_a_flaky_network_is_edited_published_and_read_once(
    phone, proxy, reader, server, api, browser_errors
):
    editor = phone("editor", EDITOR, server.url)
    contributor = phone("contributor", CONTRIBUTOR, proxy.url, width=320)
    expect(contributor.locator("#compose-note")).to_contain_text("go to the desk")
    expect(contributor.locator("#compose button[type=submit]")).to_have_text("Send to the desk")
    expect(contributor.locator("#compose [name=publish_at]")).to_have_count(0)
    expect(editor.locator("#compose [name=publish_at]")).to_be_visible()
    expect(editor.locator("#desk-empty")).to_be_visible()
    title = editor.title()
    assert not title.startswith("(")

    original = "Crowd trouble at the south stand, stewards moving in"
    edited = "Stewards restore order at the south stand"
    contributor.locator("#compose-photo").set_input_files(
        files=[{"name": "stand.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}]
    )
    contributor.locator("#photo-alt").fill("Stewards in yellow jackets by the south stand")
    contributor.locator("#compose textarea[name=body]").fill(original)
    with browser_errors.tolerated(offline_errors(proxy.port)):
        # The network goes as the contributor taps send: the outbox keeps the post and retries.
        proxy.refuse(True)
        proxy.cut()
        contributor.locator("#compose button[type=submit]").click()
        entry = contributor.locator("#outbox li", has_text=original)
        expect(entry).to_have_attribute("data-state", "queued")
        expect(entry).to_contain_text("will retry")
        # Back, but the first answer to get through is lost on the way: sent twice, kept once.
        proxy.lose_answer("POST /api/liveblog/")
        proxy.refuse(False)
        expect(entry).to_have_attribute("data-state", "sent", timeout=RECOVERY_TIMEOUT_MS)
        assert proxy.answers_lost == 1
    expect(entry).to_contain_text("Submitted to the desk")

    # The editor's queue has it, live, once, with its photo; the title counts it.
    item = queue_item(editor, original)
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-state", "submitted")
    expect(editor.locator("#desk li.submission")).to_have_count(1)
    expect(editor).to_have_title(f"(1) {title}")
    expect(editor.locator("#desk-count")).to_have_text("(1 waiting)")
    expect(editor.locator("#desk-announcer")).to_have_text("New submission from Carlos")
    photo = item.locator(".submission-photo img")
    expect(photo).to_have_attribute("alt", "Stewards in yellow jackets by the south stand")
    expect(photo).to_have_attribute("src", re.compile(r"\?desk=1$"))
    expect(photo).to_have_js_property("complete", True)
    assert photo.evaluate("image => image.naturalWidth") > 0
    # Nothing of it is public yet.
    expect(reader.locator("#feed article.post")).to_have_count(0)
    assert api.request("GET", f"/api/liveblog/{SLUG}/posts")[1]["posts"] == []
    mine = own_item(contributor, original)
    expect(mine).to_have_attribute("data-state", "submitted")
    expect(mine.locator(".submission-state")).to_have_text("Waiting")

    # Edit, then publish: two taps and the text.
    item.get_by_role("button", name="Edit").click()
    text = item.locator("textarea")
    expect(text).to_be_focused()
    expect(text).to_have_value(original)
    text.fill(edited)
    item.get_by_role("button", name="Publish").click()

    # The contributor sees it published, with its seq and a link to it.
    published = own_item(contributor, edited)
    expect(published).to_have_attribute("data-state", "published")
    events = api.request("GET", f"/api/liveblog/{SLUG}/events?since=0")[1]["events"]
    assert [event["kind"] for event in events] == ["post.created"]
    seq, post_id = events[0]["seq"], events[0]["post"]["id"]
    expect(published.locator(".submission-seq")).to_have_text(f"#{seq}")
    expect(published.locator("a.submission-link")).to_have_attribute(
        "href", f"{READER}#post-{post_id}"
    )
    expect(contributor.locator("#desk-announcer")).to_contain_text(f"published as update #{seq}")

    # The reader, on the page since before it was sent, has it exactly once, edited, with the photo.
    post = reader.locator(f'#feed article.post[data-post-id="{post_id}"]')
    expect(post).to_have_count(1)
    expect(reader.locator("#feed article.post")).to_have_count(1)
    expect(post.locator(".post-body")).to_have_text(edited)
    expect(post.locator("figure.post-photo img")).to_have_attribute(
        "alt", "Stewards in yellow jackets by the south stand"
    )
    assert original not in reader.locator("#feed").inner_text()

    # The editor's queue is empty again; the decision is under "Recently decided".
    expect(editor).to_have_title(title)
    expect(editor.locator("#desk-count")).to_have_text("")
    expect(editor.locator("#desk-queue li.submission")).to_have_count(0)
    decided = editor.locator("#desk-decided li.submission")
    expect(decided).to_have_count(1)
    expect(decided).to_have_attribute("data-state", "published")
    # And the editor's own feed shows it once too.
    expect(editor.locator(f'#feed article.post[data-post-id="{post_id}"]')).to_have_count(1)

    for page in (editor, contributor):
        assert_nothing_of_the_desk_kept(page, original)
        assert_no_reload(page)
    assert_fits(contributor, 320)


def test_a_returned_submission_shows_the_note_live_and_comes_back_revised(
    phone, server, api, browser_errors
):
    editor = phone("editor", EDITOR, server.url)
    contributor = phone("contributor", CONTRIBUTOR, server.url, width=320)
    title = editor.title()
    contributor.locator("#compose textarea[name=body]").fill("Goal for City, 1-0")
    contributor.locator("#compose button[type=submit]").click()
    expect(contributor.locator("#outbox li", has_text="Goal for City")).to_contain_text(
        "Submitted to the desk"
    )
    item = queue_item(editor, "Goal for City, 1-0")
    expect(item).to_have_attribute("data-state", "submitted")
    expect(editor).to_have_title(f"(1) {title}")

    # Return, with a note: two taps and the note.
    item.get_by_role("button", name="Return").click()
    note = item.get_by_role("textbox", name="Note for the author")
    expect(note).to_be_focused()
    note.fill("Who scored? Add the scorer and the minute.")
    item.get_by_role("button", name="Send back").click()
    expect(item).to_have_attribute("data-state", "returned")
    expect(editor).to_have_title(title)  # returned: waiting for the author, not the desk

    # The contributor sees the note live, and revises.
    mine = own_item(contributor, "Goal for City, 1-0")
    expect(mine).to_have_attribute("data-state", "returned")
    expect(mine.locator(".submission-note")).to_contain_text(
        "Who scored? Add the scorer and the minute."
    )
    expect(contributor.locator("#desk-count")).to_have_text("(1 returned)")
    expect(contributor.locator("#desk-announcer")).to_have_text(
        "A submission of yours was returned with a note"
    )
    mine.get_by_role("button", name="Revise").click()
    revision = mine.get_by_role("textbox", name="Your revision")
    expect(revision).to_be_focused()
    revision.fill("Goal for City, 1-0: Silva heads in on 23 minutes")
    mine.get_by_role("button", name="Send to the desk").click()
    expect(mine).to_have_attribute("data-state", "submitted")
    expect(mine.locator(".submission-note")).to_be_hidden()
    expect(contributor.locator("#desk-count")).to_have_text("")

    # Back in the editor's queue, once, revised, counted again.
    revised = queue_item(editor, "Silva heads in")
    expect(revised).to_have_count(1)
    expect(revised).to_have_attribute("data-state", "submitted")
    expect(editor.locator("#desk li.submission")).to_have_count(1)
    expect(editor).to_have_title(f"(1) {title}")
    expect(editor.locator("#desk-announcer")).to_have_text("Carlos revised a returned submission")
    # Who did what and when: the history under the item, opened with a tap.
    revised.locator(".submission-history summary").click()
    steps = revised.locator(".submission-history li")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Submitted by Carlos")
    expect(steps.nth(1)).to_contain_text("Returned by")
    expect(steps.nth(1)).to_contain_text("Who scored?")
    expect(steps.nth(2)).to_contain_text("Revised by Carlos")

    # Scheduled for tomorrow: both phones show when; nothing is public.
    # Tomorrow at 09:30 on the phone's clock, and the same moment in UTC.
    local, utc = editor.evaluate("""() => {
      const when = new Date(Date.now() + 86400000);
      when.setHours(9, 30, 0, 0);
      const local = new Date(when - when.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      return [local, when.toISOString().slice(0, 16)];
    }""")
    revised.get_by_role("button", name="Schedule").click()
    revised.get_by_label("Publish at").fill(local)
    revised.get_by_role("button", name="Schedule").click()
    expect(revised).to_have_attribute("data-state", "scheduled")
    expect(revised.locator(".submission-info")).to_contain_text("To be published at")
    expect(mine).to_have_attribute("data-state", "scheduled")
    expect(mine.locator(".submission-info time")).to_have_attribute(
        "datetime", re.compile(f"^{re.escape(utc)}")
    )
    assert api.request("GET", f"/api/liveblog/{SLUG}/posts")[1]["posts"] == []

    # An editor's own post with a time to publish at goes to the desk as scheduled too.
    editor.locator("#compose textarea[name=body]").fill("Half-time analysis")
    editor.locator("#compose [name=publish_at]").fill(local)
    editor.locator("#compose button[type=submit]").click()
    expect(editor.locator("#outbox li", has_text="Half-time analysis")).to_contain_text(
        "Scheduled for"
    )
    expect(queue_item(editor, "Half-time analysis")).to_have_attribute("data-state", "scheduled")
    expect(own_item(contributor, "Half-time analysis")).to_have_count(0)  # not theirs

    # A second thought, withdrawn by its author with two taps: out of the editor's queue too.
    contributor.locator("#compose textarea[name=body]").fill("Wrong match, ignore this")
    contributor.locator("#compose button[type=submit]").click()
    second = queue_item(editor, "Wrong match")
    expect(second).to_have_attribute("data-state", "submitted")
    expect(editor).to_have_title(f"(1) {title}")
    withdraw = own_item(contributor, "Wrong match").get_by_role("button", name="Withdraw")
    withdraw.click()
    expect(withdraw).to_have_text("Tap again to withdraw")
    withdraw.click()
    expect(own_item(contributor, "Wrong match")).to_have_attribute("data-state", "withdrawn")
    expect(editor.locator("#desk-decided li.submission", has_text="Wrong match")).to_have_attribute(
        "data-state", "withdrawn"
    )
    expect(editor).to_have_title(title)

    # The contributor is taken off the blog: their desk closes and shows nothing of it.
    status, _ = api.request("DELETE", f"/api/liveblog/{SLUG}/members/{CONTRIBUTOR}")
    assert status == 204
    expect(contributor.locator("#desk-message")).to_contain_text(
        "no longer on this blog's desk", timeout=RECOVERY_TIMEOUT_MS
    )
    expect(contributor.locator("#my-submissions li.submission")).to_have_count(0)
    expect(contributor.locator("#desk-connection")).to_have_attribute("data-state", "closed")
    for page in (editor, contributor):
        assert_nothing_of_the_desk_kept(page, "Silva heads in", "Who scored?")
        assert_no_reload(page)
    assert_fits(contributor, 320)


def test_an_editor_back_from_a_dead_zone_sees_each_submission_once(
    phone, proxy, server, contributor_api, browser_errors
):
    editor = phone("editor", EDITOR, proxy.url)
    title = editor.title()
    with browser_errors.tolerated(offline_errors(proxy.port)):
        proxy.refuse(True)
        assert proxy.cut() >= 1  # the editor's sockets were open through us
        expect(editor.locator("#desk-connection")).to_have_attribute(
            "data-state", re.compile("^(reconnecting|offline)$")
        )
        answers = []
        for body in ("Team news: two changes for City", "Rain delay expected"):
            status, answer = contributor_api.request("POST", f"/api/liveblog/{SLUG}/posts", {
                "client_id": str(uuid.uuid4()), "body": body,
            })
            assert status == 202 and answer["post"]["state"] == "submitted", answer
            answers.append(answer["post"])
        # One of them revised too: the replay carries two events for it, and it is shown once.
        status, _ = contributor_api.request(
            "PATCH", f"/api/liveblog/{SLUG}/submissions/{answers[1]['id']}",
            {"body": "Rain delay expected: covers on"},
        )
        assert status == 200
        proxy.refuse(False)
        for body in ("Team news: two changes for City", "Rain delay expected: covers on"):
            expect(queue_item(editor, body)).to_have_count(1, timeout=RECOVERY_TIMEOUT_MS)
        expect(editor.locator("#desk-connection")).to_have_attribute(
            "data-state", "live", timeout=RECOVERY_TIMEOUT_MS
        )
    items = editor.locator("#desk li.submission")
    expect(items).to_have_count(2)
    assert [int(i) for i in items.evaluate_all(
        "items => items.map((item) => item.dataset.submissionId)"
    )] == [answers[0]["id"], answers[1]["id"]]  # oldest first
    expect(editor).to_have_title(f"(2) {title}")
    # The client is where the server's log is: every event applied once, nothing skipped.
    status, desk = ApiClient(server.url).login(EDITOR, PASSWORD).request(
        "GET", f"/api/liveblog/{SLUG}/desk"
    )
    assert status == 200
    state = editor.evaluate(
        "({ seq: window.liveblog.desk.state.seq, epoch: window.liveblog.desk.state.epoch })"
    )
    assert state == {"seq": desk["head"], "epoch": desk["epoch"]}, (state, desk)
    assert [item["id"] for item in desk["submissions"]] == [answers[0]["id"], answers[1]["id"]]
    assert editor.locator("#desk").inner_text().count("Rain delay") == 1
    assert_no_reload(editor)
