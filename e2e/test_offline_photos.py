"""Photos kept for reading offline, in real Chromium: a blog read once shows its photos with no
network after a restart (a width never fetched answered by another of the same photo); the
bounds (photos, bytes, blogs) hold as more blogs are read; and what 30 photo posts take on a
phone and on a desktop.

The measurement is written to var/e2e-photos.json (quoted in the README's "Offline & install").
"""

import io
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest
from PIL import Image, ImageDraw, ImageFilter
from playwright.sync_api import BrowserContext, Page, expect

from devstack.common import REPO, wait_until
from devstack.daphne import ApiClient

from . import test_offline_pwa as offline

pytestmark = pytest.mark.e2e

poll = offline.poll

SLUG = "match"
MEASUREMENTS = REPO / "var" / "e2e-photos.json"
PHOTO_ROWS = "async () => await globalThis.LiveblogPhotos.entries()"
CACHED_URLS = """async () => {
  const cache = await caches.open("liveblog-photos");
  return (await cache.keys()).map((request) => request.url);
}"""
CACHED_BYTES = """async () => {
  const cache = await caches.open("liveblog-photos");
  let bytes = 0;
  for (const request of await cache.keys()) {
    bytes += (await (await cache.match(request)).blob()).size;
  }
  return bytes;
}"""
FETCHED = "async (url) => { const r = await fetch(url); return [r.status, (await r.blob()).size]; }"
IMAGE_SHOWN = "(image) => image.complete && image.naturalWidth > 0"


@cache
def camera_like_jpeg(seed: int) -> bytes:
    """A 3000x2000 JPEG that compresses like a camera's photo (about 1.7 MB): coloured
    shapes on a gradient, softened, with blotchy texture and fine grain, not a flat colour."""
    rng = random.Random(seed)
    size = (3000, 2000)

    def colour() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    gradient = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, colour()), Image.new("RGB", size, colour()),
                            gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(20, 400)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r // 2), fill=colour())
    image = image.filter(ImageFilter.GaussianBlur(3))
    texture = Image.effect_noise((size[0] // 6, size[1] // 6), 60).resize(size, Image.BICUBIC)
    grain = Image.blend(texture, Image.effect_noise(size, 30), 0.5).convert("RGB")
    image = Image.blend(image, grain, 0.35)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def post_photos(api: ApiClient, slug: str, count: int) -> None:
    """`count` photo posts, a few uploads at a time (the server's image work is the slow part).
    Ten distinct photos, repeated beyond that."""
    def post(number: int) -> None:
        api.post_photo(slug, camera_like_jpeg(number % 10), alt=f"Photo {number}",
                       body=f"Photo update {number}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, range(count)))


def add_blog(api: ApiClient, server, slug: str) -> None:
    """Another blog with the same author (the operator's command, as `make run` makes one)."""
    server.site.manage("liveblog_demo", "--username", server.site.username,
                       "--password", server.site.password, "--slug", slug, "--title", slug)


def read_every_photo(page: Page, count: int) -> list[str]:
    """Scroll each photo of the feed into view, as a reader does, until it is shown; the URLs
    the browser chose (lazy loading fetches only what is scrolled to)."""
    images = page.locator("#feed figure.post-photo img")
    expect(images).to_have_count(count)
    for index in range(count):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        wait_until(lambda image=image: image.evaluate(IMAGE_SHOWN), timeout=15,
                           message=f"photo {index + 1} of {count} shown")
    return [images.nth(index).evaluate("(image) => image.currentSrc") for index in range(count)]


def open_blog(page: Page, server, slug: str) -> None:
    page.goto(f"{server.url}/liveblog/{slug}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")


def kept_urls(page: Page, count: int) -> list[str]:
    """The index's URLs once it holds `count` photos (the worker stores them after answering)."""
    poll(page, f"async () => (await globalThis.LiveblogPhotos.entries()).length === {count}",
         message=f"{count} photos in the offline index")
    rows = page.evaluate(PHOTO_ROWS)
    assert sorted(page.evaluate(CACHED_URLS)) == sorted(row["url"] for row in rows)
    return [row["url"] for row in rows]


def test_a_blog_read_once_shows_its_photos_offline_after_a_restart(
    open_browser, page_in, server, api, browser_errors
):
    post_photos(api, SLUG, 3)
    context = open_browser()
    page = page_in(context)
    open_blog(page, server, SLUG)
    shown = read_every_photo(page, 3)
    assert sorted(kept_urls(page, 3)) == sorted(shown)
    offline.wait_for_offline_copy(page, head=3)
    # Only the worker's copies count: the browser's HTTP cache, which holds these immutable
    # photos too, is emptied (a phone short of space empties it first).
    context.new_cdp_session(page).send("Network.clearBrowserCache")
    context.close()

    server.stop()  # no signal at all
    with browser_errors.tolerated(offline.offline_errors(server.port)):
        context = open_browser()
        context.set_offline(True)
        page = page_in(context)
        page.goto(f"{server.url}/liveblog/{SLUG}/")
        expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
        assert sorted(read_every_photo(page, 3)) == sorted(shown)

        # A width never fetched (another screen, a rotation): the nearest cached one answers.
        narrow = re.sub(r"-\d+\.jpg$", "-320.jpg", shown[0])
        assert narrow != shown[0], shown[0]
        answer = page.evaluate(FETCHED, narrow)
        stored = {row["url"]: row["bytes"] for row in page.evaluate(PHOTO_ROWS)}
        assert answer == [200, stored[shown[0]]]


@pytest.mark.daphne_env(LIVEBLOG_OFFLINE_PHOTOS="5", LIVEBLOG_OFFLINE_BLOGS="2")
def test_a_blog_forgotten_takes_its_photos_and_the_count_bound_holds(
    open_browser, page_in, server, api
):
    slugs = [SLUG, "second", "third"]
    for slug in slugs[1:]:
        add_blog(api, server, slug)
    for slug in slugs:
        post_photos(api, slug, 2)
    page = page_in(open_browser())
    for slug in slugs:
        open_blog(page, server, slug)
        read_every_photo(page, 2)
        poll(page, "() => window.liveblog.store.savedHead === 2", message=f"{slug} saved")

    # Two blogs kept (LIVEBLOG_OFFLINE_BLOGS): the first one's copy went, and its photos with
    # it, though the photo bound (5) alone would have kept one of them.
    urls = kept_urls(page, 4)
    assert not [url for url in urls if f"/photos/{SLUG}/" in url], urls
    assert len([url for url in urls if "/photos/third/" in url]) == 2, urls
    assert page.evaluate(f"() => window.liveblog.store.load({json.dumps(SLUG)})") is None

    # A fourth blog of two photos: the bound holds, the least recently used go first.
    add_blog(api, server, "fourth")
    post_photos(api, "fourth", 2)
    open_blog(page, server, "fourth")
    read_every_photo(page, 2)
    poll(page, "() => window.liveblog.store.savedHead === 2", message="fourth saved")
    urls = kept_urls(page, 4)  # "second" forgotten with its blog: third and fourth remain
    assert sorted({url.split("/photos/")[1].split("/")[0] for url in urls}) == ["fourth", "third"]


@pytest.mark.daphne_env(LIVEBLOG_OFFLINE_PHOTOS="4")
def test_the_least_recently_used_photos_go_first_beyond_the_bounds(
    open_browser, page_in, server, api
):
    for slug in ("second", "third"):
        add_blog(api, server, slug)
    for slug in (SLUG, "second", "third"):
        post_photos(api, slug, 2)
    page = page_in(open_browser())
    open_blog(page, server, SLUG)
    first = read_every_photo(page, 2)
    kept_urls(page, 2)
    open_blog(page, server, "second")
    second = read_every_photo(page, 2)
    kept_urls(page, 4)
    # The first blog read again: its photos come from the cache and count as used now.
    open_blog(page, server, SLUG)
    read_every_photo(page, 2)
    poll(page, f"""async () => {{
           const rows = await globalThis.LiveblogPhotos.entries();
           return rows.slice(-2).every((row) => {json.dumps(first)}.includes(row.url));
         }}""", message="the first blog's photos to be the most recently used")
    open_blog(page, server, "third")
    third = read_every_photo(page, 2)
    # The bound (4): the second blog's photos, read longest ago, went; not the first's.
    assert sorted(kept_urls(page, 4)) == sorted(first + third), second


def test_the_byte_bound_holds(open_browser, page_in, server, api):
    post_photos(api, SLUG, 3)
    # The bound: the three 640 px variants less one byte (a 1280 px window shows a photo 39rem,
    # 624 px, wide: templates/liveblog/_post_photo.html `sizes`).
    media = server.site.directory / "media" / "liveblog" / "photos" / SLUG
    variants = sorted(media.glob("*-640.jpg"))
    assert len(variants) == 3
    bound = sum(path.stat().st_size for path in variants) - 1
    server.stop()
    server.extra_env = {"LIVEBLOG_OFFLINE_PHOTO_BYTES": str(bound)}
    server.start()

    page = page_in(open_browser())
    open_blog(page, server, SLUG)
    shown = read_every_photo(page, 3)
    assert all(url.endswith("-640.jpg") for url in shown), shown
    poll(page, "async () => (await globalThis.LiveblogPhotos.entries()).length === 2",
         message="the byte bound to evict one photo")
    rows = page.evaluate(PHOTO_ROWS)
    assert sum(row["bytes"] for row in rows) <= bound
    assert page.evaluate(CACHED_BYTES) == sum(row["bytes"] for row in rows)


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1}


def read_to_the_end(context: BrowserContext, server, posts: int) -> list[str]:
    page = context.new_page()
    open_blog(page, server, SLUG)
    shown = read_every_photo(page, 20)  # the first page of posts
    page.locator("#load-older").click()
    expect(page.locator("#feed article.post")).to_have_count(posts)
    shown = read_every_photo(page, posts)
    kept_urls(page, posts)
    return shown


def test_what_thirty_photo_posts_take_on_a_phone_and_a_desktop(
    browser, server, api, browser_errors
):
    posts = 30
    post_photos(api, SLUG, posts)
    measured = {}
    for name, device in [("phone 390x844 @3x", PHONE), ("desktop 1280x720 @1x", DESKTOP)]:
        context = browser.new_context(**device)
        try:
            context.on("page", lambda page, name=name: browser_errors.watch(page, name))
            shown = read_to_the_end(context, server, posts)
            page = context.pages[0]
            widths = sorted({int(url.rsplit("-", 1)[1].removesuffix(".jpg")) for url in shown})
            measured[name] = {"photos": posts, "variant widths": widths,
                              "bytes cached": page.evaluate(CACHED_BYTES)}
        finally:
            context.close()
    MEASUREMENTS.parent.mkdir(exist_ok=True)
    MEASUREMENTS.write_text(json.dumps(measured, indent=2))
    print(json.dumps(measured, indent=2))
