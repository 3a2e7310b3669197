"""What search engines and link previews see: descriptions, canonical URLs, Open Graph and
Twitter card tags, robots.txt and the sitemap."""

import re
import xml.etree.ElementTree as ET

import pytest

from liveblog import services

from .test_photos import media_root, new_photo_post, signed_in  # noqa: F401

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def meta(page: str, key: str) -> str | None:
    found = re.search(rf'<meta (?:name|property)="{re.escape(key)}" content="([^"]*)"', page)
    return found and found.group(1)


@pytest.mark.django_db
def test_the_blog_list_has_a_description_and_a_canonical_url(client):
    page = client.get("/").content.decode()
    assert meta(page, "description")
    assert '<link rel="canonical" href="http://testserver/">' in page


@pytest.mark.django_db
def test_a_reader_page_is_described_by_its_newest_key_event(client, blog, owner, make_post):
    page = client.get("/liveblog/final/").content.decode()
    assert meta(page, "description") == "Live coverage: Cup final"
    services.blog_update(actor=owner, blog_id=blog.pk, description="The final, minute by minute")
    assert meta(client.get("/liveblog/final/").content.decode(), "description") == \
        "The final, minute by minute"
    make_post("**Goal!** 1-0 to City", key_event=True)
    make_post("A quiet spell")
    page = client.get("/liveblog/final/").content.decode()
    assert meta(page, "description") == "Goal! 1-0 to City"
    assert meta(page, "og:description") == "Goal! 1-0 to City"
    assert meta(page, "og:title") == "Cup final"
    assert '<link rel="canonical" href="http://testserver/liveblog/final/">' in page
    assert meta(page, "og:url") == "http://testserver/liveblog/final/"
    assert meta(page, "twitter:card") == "summary"
    assert meta(page, "og:image") is None


@pytest.mark.django_db
def test_the_newest_photo_is_the_preview_image(blog, author):
    client = signed_in(author)
    assert client.post("/api/liveblog/final/posts", new_photo_post()).status_code == 201
    page = client.get("/liveblog/final/").content.decode()
    assert meta(page, "og:image").startswith("http://testserver/media/liveblog/photos/final/")
    assert meta(page, "og:image:alt") == "Fans waving scarves at the north gate"
    assert meta(page, "twitter:card") == "summary_large_image"


@pytest.mark.django_db
def test_archive_pages_are_not_indexed(client, blog, make_post):
    post = make_post("Old news").data
    page = client.get(f"/liveblog/final/?before={post['id'] + 1}").content.decode()
    assert meta(page, "robots") == "noindex, follow"
    assert meta(page, "description") is None


@pytest.mark.django_db
def test_robots_txt_keeps_crawlers_to_public_pages_and_names_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert "Disallow: /admin/" in lines and "Disallow: /liveblog/*/write/" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines


@pytest.mark.django_db
def test_the_sitemap_lists_every_blog_with_its_last_change(client, blog, make_post):
    make_post("Kick-off")
    root = ET.fromstring(client.get("/sitemap.xml").content)
    [url] = root.findall(f"{SITEMAP}url")
    assert url.find(f"{SITEMAP}loc").text == "http://testserver/liveblog/final/"
    assert url.find(f"{SITEMAP}lastmod").text.startswith(str(blog.created_at.date()))


@pytest.mark.django_db
def test_link_previews_name_the_publisher(client, blog, settings):
    assert meta(client.get("/liveblog/final/").content.decode(), "og:site_name") == "Liveblog"
    settings.LIVEBLOG_PUBLISHER_NAME = "City Herald & Post"
    page = client.get("/liveblog/final/").content.decode()
    assert meta(page, "og:site_name") == "City Herald &amp; Post"  # escaped in the attribute
