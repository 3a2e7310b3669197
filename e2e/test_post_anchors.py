"""Post anchors in real Chromium: `/liveblog/<slug>/#post-<id>` shows that post even when it is
older than the first page (older pages load until it is there), also when the hash changes on
an open page; a deleted post stays unfound after at most one page. The `page` fixture fails
the test on any console error, so a CSP violation by the page's JSON-LD would fail it too."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from liveblog.selectors import POSTS_PAGE_DEFAULT

pytestmark = pytest.mark.e2e

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
# Three pages: the target posts sit in the third, two loads beyond the server-rendered first.
POSTS = 2 * POSTS_PAGE_DEFAULT + 5


@pytest.fixture
def post_ids(api) -> list[int]:
    """Ids of POSTS posts, oldest first."""
    return [api.post(SLUG, f"Update number {n}")["post"]["id"] for n in range(1, POSTS + 1)]


def api_reads(page: Page) -> list[str]:
    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url)
            if "/api/liveblog/" in request.url else None)
    return reads


def test_an_anchor_beyond_the_first_page_loads_older_pages_and_shows_the_post(page, post_ids):
    target = post_ids[1]  # "Update number 2", in the third page
    page.goto(f"{READER}#post-{target}")
    post = page.locator(f"#post-{target}")
    expect(post).to_contain_text("Update number 2")
    expect(post).to_be_in_viewport()
    expect(post).to_be_focused()
    expect(post).to_have_class(re.compile(r"\bis-anchored\b"))
    expect(page.locator("#feed article.post")).to_have_count(POSTS)
    # The page carries its JSON-LD as a data block (the CSP lets it be; nothing runs it).
    data = json.loads(page.locator('script[type="application/ld+json"]').text_content())
    assert data["@type"] == "LiveBlogPosting"
    assert data["liveBlogUpdate"][0]["url"].endswith(f"{READER}#post-{post_ids[-1]}")


def test_a_changed_hash_shows_its_post_and_a_deleted_one_stays_unfound(page, api, post_ids):
    reads = api_reads(page)
    page.goto(READER)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    newest = page.locator(f"#post-{post_ids[-1]}")
    expect(newest).to_be_in_viewport()
    assert reads == []

    # A post deleted before the link is followed: one older page may load, then the search ends.
    deleted = post_ids[POSTS_PAGE_DEFAULT]  # would be in the second page
    status, _ = api.request("DELETE", f"/api/liveblog/{SLUG}/posts/{deleted}")
    assert status in (200, 204)
    posts = page.locator("#feed article.post")
    page.evaluate(f"window.location.hash = '#post-{deleted}'")
    expect(posts).to_have_count(2 * POSTS_PAGE_DEFAULT)
    expect(page.locator(f"#post-{deleted}")).to_have_count(0)
    assert len(reads) == 1 and "before=" in reads[0], reads

    # Another anchor on the open page: the page loads the rest and shows it.
    target = post_ids[0]
    page.evaluate(f"window.location.hash = '#post-{target}'")
    post = page.locator(f"#post-{target}")
    expect(post).to_be_in_viewport()
    expect(post).to_be_focused()
    expect(newest).not_to_be_in_viewport()
    expect(posts).to_have_count(POSTS - 1)
    assert len(reads) == 2, reads
