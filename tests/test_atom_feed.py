"""The Atom feed of a blog (/liveblog/<slug>/feed/): parses as Atom, follows posts, edits,
deletes and photos, keeps stable entry ids, and answers a poll that changed nothing with 304."""

import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from liveblog import services

from .test_photos import media_root, new_photo_post, signed_in  # noqa: F401

FEED_URL = "/liveblog/final/feed/"
ATOM = "{http://www.w3.org/2005/Atom}"


def entries(client) -> list[ET.Element]:
    response = client.get(FEED_URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root.findall(f"{ATOM}entry")


def body(entry: ET.Element) -> str:
    """The entry's HTML (Django's Atom writes an item's description as its summary)."""
    return entry.find(f"{ATOM}summary").text


def text(entry: ET.Element, name: str) -> str:
    return entry.find(f"{ATOM}{name}").text


@pytest.mark.django_db
def test_the_feed_follows_posts_edits_and_deletes(client, blog, author, make_post):
    first = make_post("**Kick-off** at Wembley").data
    second = make_post("Early chance for City").data
    [newest, oldest] = entries(client)
    assert text(newest, "title") == "Early chance for City"
    assert "<strong>Kick-off</strong>" in body(oldest)
    assert newest.find(f"{ATOM}link").get("href").endswith(f"/liveblog/final/#post-{second['id']}")
    assert text(newest, "id").startswith("tag:testserver,")
    assert text(newest, "id").endswith(f":liveblog/final/post/{second['id']}")
    ids = [text(entry, "id") for entry in (newest, oldest)]
    published = text(oldest, "published")
    services.post_update(actor=author, blog_id=blog.pk, post_id=first['id'], body="Kick-off, late")
    [_, edited] = entries(client)
    assert text(edited, "title") == "Kick-off, late"
    assert text(edited, "published") == published
    assert text(edited, "updated") > published
    assert [text(entry, "id") for entry in entries(client)] == ids  # stable
    services.post_delete(actor=author, blog_id=blog.pk, post_id=second['id'])
    assert [text(entry, "id") for entry in entries(client)] == ids[1:]


@pytest.mark.django_db
def test_a_photo_post_carries_its_photo(blog, author):
    client = signed_in(author)
    assert client.post("/api/liveblog/final/posts", new_photo_post()).status_code == 201
    [entry] = entries(client)
    content = body(entry)
    assert '<img src="/media/liveblog/photos/final/' in content
    assert 'alt="Fans waving scarves at the north gate"' in content
    [enclosure] = [link for link in entry.findall(f"{ATOM}link") if link.get("rel") == "enclosure"]
    assert enclosure.get("type") == "image/jpeg" and int(enclosure.get("length")) > 0


@pytest.mark.django_db
def test_a_poll_that_changed_nothing_is_304_from_one_query(client, blog, make_post):
    make_post("Goal!")
    first = client.get(FEED_URL)
    assert first["ETag"] and first["Last-Modified"]
    with CaptureQueriesContext(connection) as queries:
        again = client.get(FEED_URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert len(queries) == 1
    by_date = client.get(FEED_URL, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert by_date.status_code == 304
    make_post("Second goal!")
    assert client.get(FEED_URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


@pytest.mark.django_db
def test_the_reader_page_advertises_the_feed_and_a_missing_blog_is_404(client, blog):
    page = client.get("/liveblog/final/").content.decode()
    assert ('<link rel="alternate" type="application/atom+xml" title="Cup final" '
            'href="/liveblog/final/feed/">') in page
    assert client.get("/liveblog/nothing/feed/").status_code == 404
