"""Authors posting from a phone in real Chromium: everything typed reaches the blog exactly once,
in order, however often the network drops, the answer is lost, the page reloads or the session
expires."""

import re

import pytest
from playwright.sync_api import Page, expect

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer
from devstack.proxy import FlakyProxy

pytestmark = pytest.mark.e2e

SLUG = "match"
CONSOLE = f"/liveblog/{SLUG}/write/"
READER = f"/liveblog/{SLUG}/"
OUTBOX_TIMEOUT_MS = 20_000  # slack for retries with backoff on a loaded machine, not a sleep


def sign_in(page: Page, base_url: str, server: DaphneServer, then: str = CONSOLE) -> None:
    page.goto(f"{base_url}/accounts/login/?next={then}")
    page.locator("#id_username").fill(server.site.username)
    page.locator("#id_password").fill(server.site.password)
    page.locator(".login-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def write(page: Page, text: str) -> None:
    # Until console.js has started, a click would submit the form natively (a page load).
    expect(page.locator("#compose")).to_have_attribute("data-ready", "true")
    page.locator("#compose textarea[name=body]").fill(text)
    page.locator("#compose button[type=submit]").click()


def outbox_item(page: Page, text: str):
    return page.locator("#outbox li", has_text=text)


def published(api: ApiClient) -> list[str]:
    """The blog's posts, oldest first, as the server has them."""
    status, page = api.request("GET", f"/api/liveblog/{SLUG}/posts?limit=100")
    assert status == 200
    return [post["body"] for post in reversed(page["posts"])]


def offline_errors(port: int) -> str:
    return (rf"(WebSocket connection to 'ws://127\.0\.0\.1:{port}/ws/(liveblog|desk)/{SLUG}/[^']*' "
            r"failed|net::ERR_INTERNET_DISCONNECTED|Failed to load resource)")


def wait_for_offline_console(page: Page) -> None:
    """The service worker controls the console and has a copy of it."""
    wait_until(lambda: page.evaluate("() => navigator.serviceWorker.controller !== null"),
               timeout=15, message="the service worker to take control")
    wait_until(lambda: page.evaluate("async () => Boolean(await caches.match(location.href))"),
               timeout=15, message="the console in the service worker's cache")


@pytest.fixture
def author(new_page, server) -> Page:
    page = new_page("author")
    sign_in(page, server.url, server)
    expect(page.locator("#compose")).to_be_visible()
    expect(page.locator("#compose")).to_have_attribute("data-ready", "true")
    return page


def test_posts_written_offline_survive_a_reload_and_go_out_in_order(
    author, new_page, server, api, browser_errors
):
    wait_for_offline_console(author)
    reader = new_page("reader")
    reader.goto(server.url + READER)
    expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    texts = ["Teams are out", "Kick-off!", "Early chance for City"]
    with browser_errors.tolerated(offline_errors(server.port)):
        author.context.set_offline(True)
        for text in texts:
            write(author, text)
            expect(outbox_item(author, text)).to_have_attribute("data-state", "queued")
        author.reload()  # still offline: the console comes from the service worker's cache
        for text in texts:
            expect(outbox_item(author, text)).to_have_attribute("data-state", "queued")
        assert published(api) == []
        author.context.set_offline(False)
        for text in texts:
            expect(outbox_item(author, text)).to_have_attribute(
                "data-state", "sent", timeout=OUTBOX_TIMEOUT_MS
            )
    assert published(api) == texts
    expect(reader.locator("#feed article.post .post-body")).to_have_text(texts[::-1])


def test_a_lost_answer_is_retried_without_double_posting(new_page, server, api):
    proxy = FlakyProxy(server.port, port=server.site.front_port).start()
    author = new_page("author")
    try:
        sign_in(author, proxy.url, server)
        proxy.lose_answer("POST /api/liveblog/")
        write(author, "Goal! 1-0")
        expect(outbox_item(author, "Goal! 1-0")).to_have_attribute(
            "data-state", "sent", timeout=OUTBOX_TIMEOUT_MS
        )
        assert proxy.answers_lost == 1  # the first answer really was lost
    finally:
        # The page goes before the proxy: its feed and desk sockets would log refused
        # reconnects to a proxy that is gone.
        author.close()
        proxy.stop()
    assert published(api) == ["Goal! 1-0"]


def test_a_double_tap_posts_once(author, api):
    author.locator("#compose textarea[name=body]").fill("Penalty!")
    author.locator("#compose button[type=submit]").dblclick()
    expect(outbox_item(author, "Penalty!")).to_have_attribute("data-state", "sent")
    expect(author.locator("#outbox li")).to_have_count(1)
    expect(author.locator("#feed article.post", has_text="Penalty!")).to_have_count(1)
    assert published(api) == ["Penalty!"]


@pytest.mark.daphne_env(LIVEBLOG_MAX_BODY_CHARS="40")
def test_a_refused_post_fails_with_the_reason_and_does_not_block_the_next(
    author, api, browser_errors
):
    too_long = "A very long update that the server refuses to take"
    with browser_errors.tolerated(r"status of 400 \(Bad Request\)"):  # Chromium logs the 400
        write(author, too_long)
        write(author, "Short and fine")
        refused = outbox_item(author, too_long)
        expect(refused).to_have_attribute("data-state", "failed")
    expect(refused).to_contain_text("longer than 40 characters")
    expect(outbox_item(author, "Short and fine")).to_have_attribute("data-state", "sent")
    assert published(api) == ["Short and fine"]
    # Edit and retry: the text comes back into the form, is corrected, and goes out.
    refused.locator(".outbox-retry").click()
    body = author.locator("#compose textarea[name=body]")
    expect(body).to_have_value(too_long)
    body.fill("A shorter update")
    author.locator("#compose button[type=submit]").click()
    expect(outbox_item(author, "A shorter update")).to_have_attribute("data-state", "sent")
    assert published(api) == ["Short and fine", "A shorter update"]


def test_posts_queued_when_the_session_expired_go_out_after_signing_in_again(
    author, server, api, browser_errors
):
    wait_for_offline_console(author)
    texts = ["Written in the tunnel", "Still in the tunnel"]
    with browser_errors.tolerated(offline_errors(server.port)):
        author.context.set_offline(True)
        for text in texts:
            write(author, text)
        # Meanwhile the session ends on the server (expired, or signed out elsewhere).
        server.site.manage("shell", "-c",
                           "from django.contrib.sessions.models import Session; "
                           "Session.objects.all().delete()")
        author.context.set_offline(False)
        banner = author.locator("#session-expired")
        expect(banner).to_be_visible(timeout=OUTBOX_TIMEOUT_MS)
        expect(banner).to_contain_text("2 queued updates")
        for text in texts:
            expect(outbox_item(author, text)).to_have_attribute("data-state", "queued")
        assert published(api) == []
    banner.get_by_role("link", name="Sign in again").click()
    author.locator("#id_username").fill(server.site.username)
    author.locator("#id_password").fill(server.site.password)
    author.locator(".login-form button[type=submit]").click()
    expect(author).to_have_url(re.compile(re.escape(CONSOLE) + "$"))
    for text in texts:
        expect(outbox_item(author, text)).to_have_attribute(
            "data-state", "sent", timeout=OUTBOX_TIMEOUT_MS
        )
    expect(author.locator("#session-expired")).to_be_hidden()
    assert published(api) == texts


def test_the_service_worker_sends_the_outbox_with_no_console_open(
    author, new_page, server, api, browser_errors
):
    wait_for_offline_console(author)
    with browser_errors.tolerated(offline_errors(server.port)):
        author.context.set_offline(True)
        write(author, "Sent by the service worker")
        expect(outbox_item(author, "Sent by the service worker")).to_have_attribute(
            "data-state", "queued"
        )
        # The author leaves the console for the reader page; no console is open any more.
        author.goto(server.url + READER)
        author.context.set_offline(False)
        # A Background Sync (the browser fires it when the network is back; here it is
        # registered directly, as the console does when it queues a post) sends the outbox.
        author.evaluate("""async () => {
          const registration = await navigator.serviceWorker.ready;
          await registration.sync.register("liveblog-outbox");
        }""")
        wait_until(lambda: published(api) == ["Sent by the service worker"], timeout=20,
                   message="the service worker to send the queued post")


def test_a_draft_survives_a_reload_and_the_preview_renders_markdown(author):
    body = author.locator("#compose textarea[name=body]")
    body.fill("**Red card** for [the captain](https://example.com/red)\n\n<script>x()</script>")
    preview = author.locator("#compose-preview")
    expect(preview.locator("strong")).to_have_text("Red card")
    expect(preview.locator("a")).to_have_attribute("href", "https://example.com/red")
    expect(preview).to_contain_text("<script>x()</script>")  # shown as text, never run
    author.locator("#compose input[name=key_event]").check()
    author.reload()
    expect(body).to_have_value(
        "**Red card** for [the captain](https://example.com/red)\n\n<script>x()</script>"
    )
    expect(author.locator("#compose input[name=key_event]")).to_be_checked()
    expect(preview.locator("strong")).to_have_text("Red card")


def test_an_author_edits_and_deletes_own_posts_and_the_owner_ends_the_blog(
    author, new_page, server, api
):
    reader = new_page("reader")
    reader.goto(server.url + READER)
    expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    write(author, "Corner to United")
    expect(author.locator("#feed article.post", has_text="Corner to United")).to_have_count(1)
    post_id = author.locator("#feed article.post").first.get_attribute("data-post-id")
    post = author.locator(f'#feed article.post[data-post-id="{post_id}"]')
    post.locator(".post-edit").click()
    post.locator(".post-editor textarea").fill("Corner to City")
    post.locator(".post-editor button[type=submit]").click()
    expect(reader.locator("#feed article.post .post-body")).to_have_text(["Corner to City"])
    expect(reader.locator("#feed article.post .post-edited")).to_be_visible()
    post.locator(".post-delete").click()
    expect(post.locator(".post-delete")).to_have_text("Tap again to delete")
    post.locator(".post-delete").click()
    expect(reader.locator("#feed article.post")).to_have_count(0)
    assert published(api) == []

    toggle = author.locator("#blog-toggle")
    expect(toggle).to_have_text("End blog")
    toggle.click()
    expect(reader.locator("#blog-status")).to_have_text("Ended")
    expect(toggle).to_have_text("Reopen blog")
    toggle.click()
    expect(reader.locator("#blog-status")).to_have_text("Live")


def sign_in_as(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={CONSOLE}")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator(".login-form button[type=submit]").click()
    expect(page.locator("#compose")).to_have_attribute("data-ready", "true")


def test_editors_change_any_post_and_contributors_none(new_page, server, api):
    # Two more people on the blog, neither its owner: an editor and a contributor.
    server.site.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model; User = get_user_model(); "
        "User.objects.create_user('bea', password='bea-password-123'); "
        "User.objects.create_user('cal', password='cal-password-123')"
    ))
    for username, role in (("bea", "contributor"), ("cal", "editor")):
        status, _ = api.request("PUT", f"/api/liveblog/{SLUG}/members/{username}", {"role": role})
        assert status == 200
    api.post(SLUG, "By the owner")
    bea = new_page("bea")
    sign_in_as(bea, server.url, "bea", "bea-password-123")
    theirs = bea.locator("#feed article.post", has_text="By the owner")
    expect(theirs).to_have_count(1)
    expect(theirs.locator(".post-actions")).to_have_count(0)
    expect(bea.locator("#post-actions-template")).to_have_count(0)
    expect(bea.locator("#blog-toggle")).to_have_count(0)
    write(bea, "By bea")  # a contributor's post goes to the desk, not the feed
    expect(outbox_item(bea, "By bea")).to_contain_text("Submitted to the desk")
    expect(bea.locator("#my-submissions li.submission", has_text="By bea")).to_have_attribute(
        "data-state", "submitted"
    )
    expect(bea.locator("#feed article.post", has_text="By bea")).to_have_count(0)
    assert published(api) == ["By the owner"]
    cal = new_page("cal")
    sign_in_as(cal, server.url, "cal", "cal-password-123")
    expect(cal.locator("#feed article.post", has_text="By the owner").locator(".post-edit")
           ).to_be_visible()
    expect(cal.locator("#blog-toggle")).to_have_count(0)  # the owner's (and staff's) alone


def jpeg_with_location(path, size=(2400, 1600)):
    """A camera-like JPEG whose EXIF says where it was taken."""
    from PIL import Image

    image = Image.new("RGB", size)
    for x in range(0, size[0], 40):  # some content, so it is not a flat colour
        image.paste((x % 255, 120, 255 - x % 255), (x, 0, x + 20, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 33.0, 21.6)  # GPSLatitudeRef, GPSLatitude: Wembley
    gps[3], gps[4] = "W", (0.0, 16.0, 48.0)
    image.save(path, "JPEG", exif=exif, quality=90)
    assert Image.open(path).getexif().get_ifd(0x8825), "the test image must carry GPS data"
    return path


def assert_no_metadata(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert not image.getexif(), "EXIF survived"
    assert "exif" not in image.info and "xmp" not in image.info
    return image.size


def test_a_photo_is_sent_without_its_location_and_shown_with_variants(
    author, new_page, server, api, tmp_path
):
    reader = new_page("reader")
    reader.goto(server.url + READER)
    expect(reader.locator("#connection")).to_have_attribute("data-state", "live")
    author.locator("#compose-photo").set_input_files(str(jpeg_with_location(tmp_path / "p.jpg")))
    expect(author.locator("#photo-thumb")).to_be_visible()
    author.locator("#compose textarea[name=body]").fill("Fans at the north gate")
    author.locator("#compose button[type=submit]").click()
    expect(author.locator("#compose-error")).to_contain_text("Describe the photo")
    author.locator("#photo-alt").fill("Fans waving scarves at the north gate")
    author.locator("#compose button[type=submit]").click()
    expect(outbox_item(author, "Fans at the north gate")).to_have_attribute(
        "data-state", "sent", timeout=OUTBOX_TIMEOUT_MS
    )
    image = reader.locator("#feed article.post figure.post-photo img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", "Fans waving scarves at the north gate")
    srcset = image.get_attribute("srcset")
    widths = [int(item.rsplit(" ", 1)[1].rstrip("w")) for item in srcset.split(", ")]
    assert widths == [320, 640, 1024, 1600, 2048]
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("element => element.naturalWidth") > 0  # it loads and decodes
    # Every served variant is free of metadata; so is every stored file.
    for item in srcset.split(", "):
        url = item.rsplit(" ", 1)[0]
        response = reader.request.get(server.url + url)
        assert response.ok and response.headers["content-type"] == "image/jpeg"
        assert_no_metadata(response.body())
    stored = sorted((server.site.directory / "media").rglob("*.jpg"))
    assert len(stored) == 5
    for path in stored:
        assert_no_metadata(path.read_bytes())
    posts = api.request("GET", f"/api/liveblog/{SLUG}/posts")[1]["posts"]
    assert posts[0]["photo"]["alt"] == "Fans waving scarves at the north gate"


def test_a_photo_queued_offline_survives_a_reload_and_goes_out(
    author, server, api, tmp_path, browser_errors
):
    wait_for_offline_console(author)
    with browser_errors.tolerated(offline_errors(server.port)):
        author.context.set_offline(True)
        author.locator("#compose-photo").set_input_files(
            str(jpeg_with_location(tmp_path / "p.jpg", size=(800, 600)))
        )
        author.locator("#photo-alt").fill("The team bus arriving")
        author.locator("#compose button[type=submit]").click()
        queued = author.locator("#outbox li", has_text="The team bus arriving")
        expect(queued).to_have_attribute("data-state", "queued")
        author.reload()
        expect(queued).to_have_attribute("data-state", "queued")
        author.context.set_offline(False)
        expect(queued).to_have_attribute("data-state", "sent", timeout=OUTBOX_TIMEOUT_MS)
    posts = api.request("GET", f"/api/liveblog/{SLUG}/posts")[1]["posts"]
    assert [post["photo"]["alt"] for post in posts] == ["The team bus arriving"]
    assert posts[0]["photo"]["width"] == 800
    image = author.locator("#feed article.post figure.post-photo img")
    expect(image).to_have_attribute("alt", "The team bus arriving")
