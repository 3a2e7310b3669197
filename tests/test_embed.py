"""A blog in other sites' pages: the embed view and its frame-ancestors, /embed.js, oEmbed, the
reader page's Embed panel and oEmbed link, and the embed_origins list in the API and the admin."""

import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings

from liveblog import services
from liveblog.models import Event

from .test_api import assert_error, json_patch, signed_in
from .test_pages import Page, directives, page_of

READER = "/liveblog/final/"
EMBED = "/liveblog/final/embed/"
API = "/api/liveblog/final/"
SITE = "http://testserver"
ORIGINS = ["https://news.example", "http://127.0.0.1:8080"]
VIEWER = "X-Liveblog-Viewer"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def listed(blog, owner):
    """The blog with two partner sites allowed to embed it."""
    services.blog_update(actor=owner, blog_id=blog.pk, embed_origins=ORIGINS)
    blog.refresh_from_db()
    return blog


@pytest.fixture
def second_author(django_user_model, blog):
    user = django_user_model.objects.create_user("bob", password="bob-password")
    blog.authors.add(user)
    return user


def csp_of(response):
    return directives(response["Content-Security-Policy"])


def script_json(response, element_id):
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(), re.S,
    )
    assert found, f"no #{element_id} json_script"
    return json.loads(found.group(1))


def textarea_text(content, attribute):
    """A textarea's text as the browser shows it (entities decoded)."""
    found = re.search(rf"<textarea {attribute}[^>]*>(.*?)</textarea>", content, re.S)
    assert found, f"no textarea {attribute}"
    return html.unescape(found.group(1)).strip()


def oembed(client, url, **params):
    return client.get("/api/oembed", {"url": url, **params})


# --- The embed view ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_embed_may_be_framed_by_exactly_the_blogs_origins(client, listed):
    response = client.get(EMBED)
    assert response.status_code == 200
    # X-Frame-Options has no allow-list: any value would override the CSP in old browsers.
    assert "X-Frame-Options" not in response
    assert "frame-ancestors https://news.example http://127.0.0.1:8080;" in (
        response["Content-Security-Policy"] + ";"
    )
    assert csp_of(response)["frame-ancestors"] == ORIGINS


@pytest.mark.django_db
def test_embed_of_a_blog_without_origins_may_be_framed_by_nobody(client, blog):
    response = client.get(EMBED)
    assert response.status_code == 200
    assert csp_of(response)["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_embed_keeps_the_rest_of_the_sites_policy(client, listed):
    embed, reader = csp_of(client.get(EMBED)), csp_of(client.get(READER))
    assert embed["script-src"] == ["'self'"]
    assert embed["object-src"] == ["'none'"]
    del embed["frame-ancestors"], reader["frame-ancestors"]
    # The live reader page inlines its stylesheet under a nonce (bench `page`); the embed links it.
    reader["style-src"] = [item for item in reader["style-src"] if not item.startswith("'nonce-")]
    assert embed == reader


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", READER, "/liveblog/final/write/", "/liveblog/final/feed/",
                                 "/offline/", f"{READER}?before=2"])
def test_every_other_page_refuses_every_frame(author, listed, make_post, url):
    """The list opens the embed only: a partner site must not frame the console or reader."""
    make_post()
    response = signed_in(author).get(url)
    assert response.status_code == 200
    assert csp_of(response)["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_embed_is_rendered_for_nobody_even_when_signed_in(owner, listed):
    """The page around the frame is someone else's: it must not act as the signed-in user."""
    response = signed_in(owner).get(EMBED)
    content = response.content.decode()
    page = page_of(response)
    assert response[VIEWER] == "anonymous"
    assert "private" not in response.get("Cache-Control", "")
    assert not [element for element in page.elements if "site-header" in element.classes]
    assert not [element for element in page.elements if element.attrs.get("id") == "sign-out"]
    assert "csrfmiddlewaretoken" not in content
    assert "csrftoken" not in response.cookies
    assert owner.username not in content


@pytest.mark.django_db
def test_embed_shows_the_feed_with_links_to_the_reader_page(client, listed, make_post):
    ids = [make_post(f"Update {n}").data["id"] for n in range(20)]
    key = make_post("Full time", key_event=True).data
    ids.append(key["id"])
    response = client.get(EMBED)
    page = page_of(response)
    reader_url = SITE + READER

    assert [base.attrs for base in page.select("base")] == [{"target": "_top"}]
    assert page.select("meta", name="robots", content="noindex")
    assert [link.attrs["href"] for link in page.select("link", rel="canonical")] == [reader_url]
    # The newest page, server-rendered, each post with its anchor.
    assert page.feed_post_ids() == sorted(ids, reverse=True)[:20]
    assert page.select("article", id=f"post-{ids[-1]}")
    # Links leave the frame for the reader page, never for another embed.
    key_links = [a.attrs["href"] for a in page.select("a") if a.inside("key-events")]
    assert key_links == [f"{reader_url}#post-{key['id']}"]
    older = page.by_id("load-older")
    assert older.attrs["href"] == f"{reader_url}?before={ids[1]}"
    assert "hidden" not in older.attrs
    assert not [a for a in page.select("a") if "/embed/" in a.attrs.get("href", "")]
    assert script_json(response, "embed-origins") == ORIGINS


@pytest.mark.django_db
def test_embed_of_an_unknown_blog_is_404_and_it_is_read_only(client, blog):
    assert client.get("/liveblog/nope/embed/").status_code == 404
    assert client.head(EMBED).status_code == 200
    assert client.post(EMBED).status_code == 405


# --- /embed.js --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_embed_script_is_the_static_file_for_any_site(client):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    source = Path(django_settings.BASE_DIR, "static", "liveblog", "embed.js").read_bytes()
    assert response.content == source


# --- oEmbed -----------------------------------------------------------------------------------


def assert_rich_answer(data, *, width=640, height=800):
    assert data["version"] == "1.0"
    assert data["type"] == "rich"
    assert data["title"] == "Cup final"
    assert data["provider_name"] == "Liveblog"
    assert data["provider_url"] == SITE + "/"
    assert (data["width"], data["height"]) == (width, height)
    snippet = Page(data["html"])
    [frame] = snippet.select("iframe")
    assert frame.attrs["src"] == SITE + EMBED
    assert (frame.attrs["width"], frame.attrs["height"]) == (str(width), str(height))
    sandbox = frame.attrs["sandbox"].split()
    # Scripts run in the frame, but it may never navigate the page around it on its own.
    assert "allow-scripts" in sandbox and "allow-top-navigation" not in sandbox
    assert [script.attrs["src"] for script in snippet.select("script")] == [SITE + "/embed.js"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    SITE + READER, SITE + EMBED, f"{SITE}{READER}#post-5", f"{SITE}{READER}?before=3",
    "HTTP://TestServer/liveblog/final/",
])
def test_oembed_answers_for_the_blogs_pages(client, blog, url):
    response = oembed(client, url, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_rich_answer(response.json())


@pytest.mark.django_db
def test_oembed_format_defaults_to_json(client, blog):
    assert_rich_answer(oembed(client, SITE + READER).json())


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "size"), [
    ({"maxwidth": "300", "maxheight": "200"}, (300, 200)),
    ({"maxwidth": "300"}, (300, 800)),
    ({"maxwidth": "5000", "maxheight": "5000"}, (640, 800)),  # a cap, never a stretch
])
def test_oembed_fits_the_consumers_size(client, blog, params, size):
    response = oembed(client, SITE + READER, format="json", **params)
    assert response.status_code == 200
    assert_rich_answer(response.json(), width=size[0], height=size[1])


@pytest.mark.django_db
def test_oembed_in_another_format_is_501(client, blog):
    """oEmbed asks for 501 when the provider lacks the format."""
    response = oembed(client, SITE + READER, format="xml")
    assert assert_error(response, 501)["error"] == "not_implemented"


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"url": ""}, {"url": SITE + READER + "x" * 1000}])
def test_oembed_without_a_usable_url_is_400(client, blog, query):
    assert_error(client.get("/api/oembed", query), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["maxwidth", "maxheight"])
@pytest.mark.parametrize("value", ["0", "abc", "-1", "1.5"])
def test_oembed_bad_size_is_400(client, blog, param, value):
    assert_error(oembed(client, SITE + READER, **{param: value}), 400, "invalid")


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "http://news.example/liveblog/final/",  # another site
    "http://testserver:8000/liveblog/final/",
    f"{SITE}/admin/",
    f"{SITE}/liveblog/final/write/",
    f"{SITE}/liveblog/nope/",
    f"{SITE}/liveblog/final",
    "ftp://testserver/liveblog/final/",
    "/liveblog/final/",
    "//testserver/liveblog/final/",
    "http://[x/liveblog/final/",  # urlsplit raises ValueError on these two hosts
    "http://[x]/liveblog/final/",
])
def test_oembed_for_anything_but_a_blogs_page_here_is_404(client, blog, url):
    assert_error(oembed(client, url, format="json"), 404, "not_found")


# --- The reader page --------------------------------------------------------------------------


@pytest.mark.django_db
def test_reader_page_advertises_its_oembed(client, blog):
    page = page_of(client.get(READER))
    [link] = page.select("link", rel="alternate", type="application/json+oembed")
    href = link.attrs["href"]
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == SITE + "/api/oembed"
    assert parse_qs(parts.query) == {"url": [SITE + READER], "format": ["json"]}
    response = client.get(href)
    assert response.status_code == 200
    assert_rich_answer(response.json())


@pytest.mark.django_db
def test_reader_page_embed_panel_offers_both_snippets_as_text(client, blog):
    content = client.get(READER).content.decode()
    assert 'id="embed-panel"' in content
    script = f'<script src="{SITE}/embed.js" data-blog="final" async></script>'
    assert textarea_text(content, 'id="embed-script"') == script
    # Shown as text, never run on the reader page itself.
    assert script not in content
    assert "&lt;script src=" in content
    frame = Page(textarea_text(content, 'id="embed-frame"')).select("iframe")
    assert [f.attrs["src"] for f in frame] == [SITE + EMBED]
    assert "sandbox" in frame[0].attrs and "data-liveblog-embed" in frame[0].attrs


@pytest.mark.django_db
def test_archive_pages_offer_no_embed(client, blog, make_post):
    make_post()
    content = client.get(READER, {"before": "5"}).content.decode()
    assert "json+oembed" not in content
    assert "embed-panel" not in content and "embed.js" not in content


# --- The list in the API ----------------------------------------------------------------------


@pytest.mark.django_db
def test_embed_origins_are_shown_to_the_owner_and_staff_only(
    client, blog, owner, author, second_author
):
    # Hand the blog to a non-staff author so that owner and staff are different people.
    services.blog_update(actor=owner, blog_id=blog.pk, owner=author, embed_origins=ORIGINS)
    assert signed_in(author).get(API).json()["embed_origins"] == ORIGINS  # the owner
    assert signed_in(owner).get(API).json()["embed_origins"] == ORIGINS  # staff
    assert "embed_origins" not in client.get(API).json()
    assert "embed_origins" not in signed_in(second_author).get(API).json()


@pytest.mark.django_db
def test_owner_sets_the_list_cleaned_without_a_seq(client, owner, blog, make_post):
    make_post()
    response = json_patch(signed_in(owner), API, {
        "embed_origins": ["https://News.Example:443", "http://127.0.0.1:8080",
                          "https://news.example"],
    })
    assert response.status_code == 200
    data = response.json()
    assert data["seq"] is None
    assert data["blog"]["embed_origins"] == ORIGINS
    assert data["blog"]["head"] == 1
    blog.refresh_from_db()
    assert (blog.embed_origins, blog.head) == (ORIGINS, 1)
    assert Event.objects.filter(blog=blog).count() == 1
    assert csp_of(client.get(EMBED))["frame-ancestors"] == ORIGINS

    assert json_patch(signed_in(owner), API, {"embed_origins": []}).status_code == 200
    assert csp_of(client.get(EMBED))["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_twenty_origins_are_allowed(owner, blog):
    many = [f"https://site{n}.example" for n in range(20)]
    response = json_patch(signed_in(owner), API, {"embed_origins": many})
    assert response.status_code == 200
    assert response.json()["blog"]["embed_origins"] == many


@pytest.mark.django_db
@pytest.mark.parametrize("value", [
    ["*"], ["https://x/path"], ["ftp://x"], ["https://[x]"], ["https://x:99999"],
    ["https://*.example"], ["https://news.example; script-src *"], ["https://news.example:"],
    ["https://user@news.example"], ["https://news.example?q"], ["news.example"],
    "https://news.example", {"origin": "https://news.example"}, 5,
    [f"https://site{n}.example" for n in range(21)], [5], [None], [["https://x"]],
])
def test_an_invalid_list_changes_nothing(owner, listed, make_post, value):
    make_post()
    response = json_patch(signed_in(owner), API, {"title": "Changed", "embed_origins": value})
    assert_error(response, 400, "invalid")
    listed.refresh_from_db()
    assert (listed.embed_origins, listed.title, listed.head) == (ORIGINS, "Cup final", 1)


@pytest.mark.django_db
def test_only_the_owner_or_staff_set_the_list(client, second_author, listed):
    body = {"embed_origins": ["https://evil.example"]}
    assert_error(json_patch(signed_in(second_author), API, body), 403, "forbidden")
    assert_error(json_patch(client, API, body), 401, "not_authenticated")
    listed.refresh_from_db()
    assert listed.embed_origins == ORIGINS


@pytest.mark.django_db
def test_blog_updated_frames_never_carry_the_list(owner, listed):
    """Readers get every blog.updated frame: the partner list is not theirs to see."""
    response = json_patch(signed_in(owner), API, {
        "title": "Cup final (AET)", "embed_origins": ["https://other.example"],
    })
    assert response.status_code == 200
    assert response.json()["seq"] == 1
    frame = Event.objects.get(blog=listed, seq=1).frame
    assert json.loads(frame)["blog"]["title"] == "Cup final (AET)"
    assert "embed_origins" not in json.loads(frame)["blog"]
    assert "example" not in frame


# --- The list in the admin --------------------------------------------------------------------


@pytest.fixture
def admin_client(django_user_model):
    return signed_in(django_user_model.objects.create_superuser("root", password="root-password"))


def change_url(blog):
    return f"/admin/liveblog/blog/{blog.pk}/change/"


def change_form(blog, **changes):
    return {
        "title": blog.title, "description": blog.description, "status": blog.status,
        "owner": str(blog.owner_id),
        # The people inline (Membership rows), sent with no rows: nobody's role changes.
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        **changes,
    }


@pytest.mark.django_db
def test_admin_shows_one_origin_per_line(admin_client, listed):
    content = admin_client.get(change_url(listed)).content.decode()
    assert textarea_text(content, 'name="embed_origins"').splitlines() == ORIGINS


@pytest.mark.django_db
def test_admin_saves_the_cleaned_list_without_an_event(admin_client, blog):
    lines = "https://News.Example:443\r\n\r\n  http://127.0.0.1:8080  \r\nhttps://news.example\r\n"
    response = admin_client.post(change_url(blog), change_form(blog, embed_origins=lines))
    assert response.status_code == 302
    blog.refresh_from_db()
    assert (blog.embed_origins, blog.head) == (ORIGINS, 0)
    assert not Event.objects.filter(blog=blog).exists()


@pytest.mark.django_db
def test_admin_refuses_an_invalid_line_and_changes_nothing(admin_client, listed):
    response = admin_client.post(change_url(listed), change_form(
        listed, title="Changed", embed_origins="https://ok.example\nhttps://x/path",
    ))
    assert response.status_code == 200
    assert "is not an origin" in html.unescape(response.content.decode())
    listed.refresh_from_db()
    assert (listed.embed_origins, listed.title, listed.head) == (ORIGINS, "Cup final", 0)


# --- ended_at ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ending_a_blog_stamps_ended_at_and_going_live_clears_it(owner, blog):
    """test_structured_data reads ended_at only while ended; here, that live clears it."""
    services.blog_update(actor=owner, blog_id=blog.pk, status="ended")
    blog.refresh_from_db()
    ended_at = blog.ended_at
    assert ended_at is not None and ended_at >= blog.created_at
    services.blog_update(actor=owner, blog_id=blog.pk, title="Cup final, over")
    blog.refresh_from_db()
    assert blog.ended_at == ended_at  # other changes leave it
    services.blog_update(actor=owner, blog_id=blog.pk, status="live")
    blog.refresh_from_db()
    assert blog.ended_at is None

