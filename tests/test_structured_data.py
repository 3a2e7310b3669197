"""The reader page's JSON-LD (liveblog/structured_data.py): a LiveBlogPosting that parses and
follows posts, photos, edits, deletes and the end of the blog, which no post text can break out
of, on live pages only, from a bounded number of queries."""

import json
import re
from html.parser import HTMLParser

import pytest

from liveblog import services
from liveblog.models import Blog, Event, Post
from liveblog.protocol import iso

from .test_photos import media_root, new_photo_post, signed_in  # noqa: F401

READER = "/liveblog/final/"
URL = "http://testserver/liveblog/final/"


class _LdScripts(HTMLParser):
    """The text of every <script type="application/ld+json"> element, as a browser splits it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        self._inside = tag == "script" and dict(attrs).get("type") == "application/ld+json"
        if self._inside:
            self.found.append("")

    def handle_endtag(self, tag):
        self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.found[-1] += data


def ld_scripts(client, url: str = READER) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    parser = _LdScripts()
    parser.feed(response.content.decode())
    return parser.found


def json_ld(client, url: str = READER) -> dict:
    [script] = ld_scripts(client, url)
    return json.loads(script)


def by_url(data: dict) -> dict[str, dict]:
    return {update["url"]: update for update in data["liveBlogUpdate"]}


def event_time(blog: Blog) -> str:
    blog.refresh_from_db()
    return iso(Event.objects.get(blog=blog, seq=blog.head).created_at)


@pytest.mark.django_db
def test_a_new_blog_is_described_from_its_creation_by_its_owner(client, blog):
    data = json_ld(client)
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "LiveBlogPosting"
    assert data["headline"] == "Cup final"
    assert data["description"] == "Live coverage: Cup final"  # the meta description's text
    assert data["url"] == data["mainEntityOfPage"] == URL
    created = iso(blog.created_at)
    assert data["datePublished"] == data["coverageStartTime"] == data["dateModified"] == created
    assert "coverageEndTime" not in data and "image" not in data
    assert data["author"] == [{"@type": "Person", "name": "Olivia Owner"}]
    assert data["publisher"]["@type"] == "Organization"
    assert data["publisher"]["name"] == "Liveblog"
    logo = data["publisher"]["logo"]
    assert logo["@type"] == "ImageObject"
    assert re.fullmatch(r"http://testserver/static/pwa/icon-512(\.[0-9a-f]+)?\.png", logo["url"])
    assert client.get(logo["url"].removeprefix("http://testserver")).status_code == 200
    assert data["liveBlogUpdate"] == []


@pytest.mark.django_db
def test_updates_follow_posts_photos_edits_deletes_and_the_end(
    client, blog, owner, author, make_post, django_user_model
):
    bob = django_user_model.objects.create_user("bob", first_name="Bob", last_name="Reporter")
    blog.authors.add(bob)
    first = make_post("**Kick-off** at Wembley").data
    photo = signed_in(author).post("/api/liveblog/final/posts", new_photo_post())
    assert photo.status_code == 201
    photo = photo.json()["post"]
    third = make_post("Bob here: *1-0*", actor=bob).data
    start = iso(Post.objects.get(pk=first["id"]).created_at)

    data = json_ld(client)
    assert data["datePublished"] == data["coverageStartTime"] == start
    assert data["dateModified"] == event_time(blog)
    assert [update["url"] for update in data["liveBlogUpdate"]] == [
        f"{URL}#post-{post['id']}" for post in (third, photo, first)
    ]
    assert data["author"] == [
        {"@type": "Person", "name": "Bob Reporter"}, {"@type": "Person", "name": "Alice Author"},
    ]
    updates = by_url(data)
    kickoff = updates[f"{URL}#post-{first['id']}"]
    assert kickoff == {
        "@type": "BlogPosting", "headline": "Kick-off at Wembley",
        "articleBody": "Kick-off at Wembley", "datePublished": first["created_at"],
        "dateModified": first["created_at"], "url": f"{URL}#post-{first['id']}",
        "author": {"@type": "Person", "name": "Alice Author"},
    }
    pictured = updates[f"{URL}#post-{photo['id']}"]
    largest = photo["photo"]["srcset"].split(", ")[-1].split(" ")[0]
    assert pictured["image"] == data["image"] == f"http://testserver{largest}"
    assert pictured["headline"] == "The crowd at the gate"

    # An edit moves the update's and the blog's dateModified, never a datePublished.
    services.post_update(actor=author, blog_id=blog.pk, post_id=first["id"], body="Kick-off, late")
    edited_at = iso(Post.objects.get(pk=first["id"]).edited_at)
    data = json_ld(client)
    kickoff = by_url(data)[f"{URL}#post-{first['id']}"]
    assert kickoff["articleBody"] == "Kick-off, late"
    assert kickoff["dateModified"] == edited_at > kickoff["datePublished"] == first["created_at"]
    assert data["dateModified"] == event_time(blog) >= edited_at
    assert data["datePublished"] == data["coverageStartTime"] == start

    # Deleting the first post takes it out of the updates, not out of the coverage's start.
    services.post_delete(actor=author, blog_id=blog.pk, post_id=first["id"])
    data = json_ld(client)
    assert f"{URL}#post-{first['id']}" not in by_url(data)
    assert len(data["liveBlogUpdate"]) == 2
    assert data["datePublished"] == data["coverageStartTime"] == start
    assert data["dateModified"] == event_time(blog)

    # The end of the blog, and live again.
    services.blog_update(actor=owner, blog_id=blog.pk, status="ended")
    blog.refresh_from_db()
    data = json_ld(client)
    assert data["coverageEndTime"] == iso(blog.ended_at)
    assert data["dateModified"] == event_time(blog)
    services.blog_update(actor=owner, blog_id=blog.pk, status="live")
    assert "coverageEndTime" not in json_ld(client)


@pytest.mark.django_db
def test_only_the_newest_50_visible_posts_are_listed_with_short_headlines(
    client, blog, make_post
):
    posts = [make_post(f"Update {n} " + "word " * 40).data for n in range(52)]
    updates = json_ld(client)["liveBlogUpdate"]
    assert len(updates) == 50
    assert updates[0]["url"].endswith(f"#post-{posts[-1]['id']}")
    assert updates[-1]["url"].endswith(f"#post-{posts[2]['id']}")
    assert all(len(update["headline"]) <= 110 for update in updates)
    assert updates[0]["headline"].endswith("…")
    assert len(updates[0]["articleBody"]) > 110


@pytest.mark.django_db
def test_post_text_cannot_close_the_script_element(client, blog, owner, make_post):
    services.blog_update(actor=owner, blog_id=blog.pk, title="</script><script>alert(1)</script>")
    make_post("`</script><!-- <script>` & friends")
    page = client.get(READER).content.decode()
    [script] = ld_scripts(client)
    assert "<" not in script and ">" not in script and "&" not in script
    data = json.loads(script)
    assert data["headline"] == "</script><script>alert(1)</script>"
    assert data["liveBlogUpdate"][0]["articleBody"] == "</script><!-- <script> & friends"
    assert page.count("<script>alert") == 0


@pytest.mark.django_db
def test_archive_pages_carry_no_structured_data(client, blog, make_post):
    posts = [make_post(f"Update {n}").data for n in range(3)]
    assert ld_scripts(client, f"{READER}?before={posts[-1]['id']}") == []


@pytest.mark.django_db
def test_the_structured_data_costs_a_constant_number_of_queries(
    client, blog, make_post, django_assert_max_num_queries
):
    make_post("One")
    with django_assert_max_num_queries(12) as few:
        json_ld(client)
    for n in range(60):
        make_post(f"Update {n}")
    with django_assert_max_num_queries(len(few)):
        assert len(json_ld(client)["liveBlogUpdate"]) == 50


@pytest.mark.django_db
def test_publisher_settings_and_a_news_article(client, blog, make_post, settings):
    settings.LIVEBLOG_PUBLISHER_NAME = "The Daily Example"
    settings.LIVEBLOG_PUBLISHER_LOGO = "https://cdn.example/logo.png"
    settings.LIVEBLOG_NEWS_ARTICLE = True
    make_post("Kick-off")
    data = json_ld(client)
    assert data["@context"] == "https://schema.org"
    live, article = data["@graph"]
    assert live["@type"] == "LiveBlogPosting" and article["@type"] == "NewsArticle"
    assert live["@id"] != article["@id"]
    for key in ("headline", "description", "url", "mainEntityOfPage", "datePublished",
                "dateModified", "publisher", "author"):
        assert article[key] == live[key], key
    assert live["publisher"] == {
        "@type": "Organization", "name": "The Daily Example",
        "logo": {"@type": "ImageObject", "url": "https://cdn.example/logo.png"},
    }
    assert "liveBlogUpdate" not in article and len(live["liveBlogUpdate"]) == 1
