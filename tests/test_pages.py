"""Server-rendered pages: the feed without JavaScript, the author console, sign-in, headers."""

import uuid
from html.parser import HTMLParser

import pytest
from django.test import Client

from liveblog import services

READER_URL = "/liveblog/final/"
CONSOLE_URL = "/liveblog/final/write/"
VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}


class Element:
    def __init__(self, tag, attrs, ancestors):
        self.tag = tag
        self.attrs = attrs
        self.ancestors = ancestors  # the enclosing elements, outermost first

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def inside(self, element_id):
        return any(parent.attrs.get("id") == element_id for parent in self.ancestors)


class Page(HTMLParser):
    """Every element of a page with its attributes and ancestors (enough for CSS-like checks)."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.stack = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), list(self.stack))
        self.elements.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, dict(attrs), list(self.stack)))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def select(self, tag, **attrs):
        return [
            element for element in self.elements
            if element.tag == tag
            and all(element.attrs.get(name) == value for name, value in attrs.items())
        ]

    def by_id(self, element_id):
        found = [element for element in self.elements if element.attrs.get("id") == element_id]
        assert len(found) == 1, f"expected one #{element_id}, found {len(found)}"
        return found[0]

    def feed_post_ids(self, container="feed"):
        return [
            int(element.attrs["data-post-id"])
            for element in self.elements
            if element.tag == "article" and "post" in element.classes
            and element.inside(container)
        ]


def page_of(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return Page(response.content.decode())


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Index ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_index_lists_blogs_with_links(client, blog, owner):
    services.blog_create(actor=owner, slug="derby", title="Derby <day>")
    response = client.get("/")
    page = page_of(response)
    hrefs = {element.attrs.get("href") for element in page.select("a")}
    assert {"/liveblog/final/", "/liveblog/derby/"} <= hrefs
    html = response.content.decode()
    assert "Cup final" in html
    assert "Derby &lt;day&gt;" in html


@pytest.mark.django_db
def test_index_without_blogs_says_so(client):
    assert "No blogs yet" in client.get("/").content.decode()


# --- Reader page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reader_feed_carries_slug_epoch_and_head(client, blog, make_post):
    make_post()
    make_post()
    page = page_of(client.get(READER_URL))
    feed = page.by_id("feed")
    assert feed.attrs["data-slug"] == "final"
    assert feed.attrs["data-epoch"] == blog.epoch
    assert feed.attrs["data-head"] == "2"


@pytest.mark.django_db
def test_reader_has_connection_state_and_new_updates_button(client, blog):
    page = page_of(client.get(READER_URL))
    assert page.by_id("connection").attrs["data-state"] == "connecting"
    assert page.by_id("new-updates").tag == "button"


@pytest.mark.django_db
def test_reader_feed_has_one_article_per_post_newest_first(client, make_post):
    ids = [make_post(f"update {n}").data["id"] for n in range(3)]
    assert page_of(client.get(READER_URL)).feed_post_ids() == ids[::-1]


@pytest.mark.django_db
def test_reader_feed_puts_pinned_first_then_newest(client, make_post):
    oldest = make_post("oldest").data["id"]
    pinned = make_post("pinned", pinned=True).data["id"]
    middle = make_post("middle").data["id"]
    newest = make_post("newest").data["id"]
    assert page_of(client.get(READER_URL)).feed_post_ids() == [pinned, newest, middle, oldest]


@pytest.mark.django_db
def test_reader_keeps_an_old_pinned_post_on_top(client, make_post):
    pinned = make_post("old but pinned", pinned=True).data["id"]
    newer = [make_post(f"update {n}").data["id"] for n in range(20)]
    ids = page_of(client.get(READER_URL)).feed_post_ids()
    assert ids == [pinned, *newer[::-1]]


@pytest.mark.django_db
def test_reader_feed_leaves_out_deleted_posts(client, blog, author, make_post):
    kept = make_post("kept").data["id"]
    gone = make_post("this one is gone").data["id"]
    services.post_delete(actor=author, blog_id=blog.pk, post_id=gone)
    response = client.get(READER_URL)
    assert page_of(response).feed_post_ids() == [kept]
    assert "this one is gone" not in response.content.decode()


@pytest.mark.django_db
def test_reader_feed_is_readable_without_javascript(client, make_post):
    make_post("Penalty to **Rovers** in the 89th minute")
    html = client.get(READER_URL).content.decode()
    assert "Penalty to <strong>Rovers</strong> in the 89th minute" in html
    assert "Alice Author" in html


@pytest.mark.django_db
def test_reader_marks_pinned_key_and_edited_posts(client, blog, author, make_post):
    post_id = make_post("flags", pinned=True, key_event=True).data["id"]
    services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, body="flags, edited")
    article = page_of(client.get(READER_URL)).by_id(f"post-{post_id}")
    assert {"is-pinned", "is-key"} <= set(article.classes)
    edited = [
        element for element in page_of(client.get(READER_URL)).elements
        if "post-edited" in element.classes and element.inside(f"post-{post_id}")
    ]
    assert len(edited) == 1 and "hidden" not in edited[0].attrs


@pytest.mark.django_db
def test_reader_never_contains_a_script_from_a_post_body(client, make_post):
    make_post("<script>alert('owned')</script> and <img src=x onerror=alert(1)>")
    response = client.get(READER_URL)
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in html or (
        "&lt;script&gt;alert('owned')&lt;/script&gt;" in html
    )
    page = page_of(response)
    assert not [element for element in page.select("img") if "onerror" in element.attrs]
    # The only scripts are the page's own modules, loaded from files (CSP has no inline), and
    # the feed's data block, which is JSON and never runs.
    scripts = page.select("script")
    assert scripts
    assert all(
        element.attrs.get("src", "").startswith("/static/") or is_data_block(element)
        for element in scripts
    )


@pytest.mark.django_db
def test_reader_shows_no_inline_script(client, blog):
    page = page_of(client.get(READER_URL))
    scripts = page.select("script")
    assert all("src" in element.attrs or is_data_block(element) for element in scripts)


def is_data_block(element):
    """The feed's JSON, the page's JS catalog or its JSON-LD: data the browser never runs."""
    attrs = element.attrs
    return (attrs.get("type") == "application/json"
            and attrs.get("id") in {"feed-data", "i18n-catalog"}) or (
        attrs.get("type") == "application/ld+json" and "src" not in attrs
    )


@pytest.mark.django_db
def test_reader_links_to_older_updates_when_there_are_more(client, make_post):
    ids = [make_post(f"update {n}").data["id"] for n in range(22)]
    page = page_of(client.get(READER_URL))
    newest_first = ids[::-1]
    assert page.feed_post_ids() == newest_first[:20]
    assert page.by_id("load-older").attrs["href"] == f"?before={newest_first[19]}"
    assert page.by_id("feed").attrs["data-next-before"] == str(newest_first[19])


@pytest.mark.django_db
def test_reader_archive_page_lists_older_posts(client, make_post):
    ids = [make_post(f"update {n}").data["id"] for n in range(5)]
    response = client.get(READER_URL, {"before": ids[3]})
    page = page_of(response)
    articles = [
        int(element.attrs["data-post-id"]) for element in page.select("article")
        if "post" in element.classes
    ]
    assert articles == [ids[2], ids[1], ids[0]]
    html = response.content.decode()
    assert "Older updates" in html
    assert "update 4" not in html
    assert not [element for element in page.elements if element.attrs.get("id") == "feed"]


@pytest.mark.django_db
def test_reader_archive_page_without_older_posts(client, make_post):
    first = make_post("first").data["id"]
    html = client.get(READER_URL, {"before": first}).content.decode()
    assert "No older updates." in html


@pytest.mark.django_db
@pytest.mark.parametrize("before", ["abc", "0", "-1", "\u00b2"])
def test_reader_bad_before_is_404(client, blog, before):
    assert client.get(READER_URL, {"before": before}).status_code == 404


@pytest.mark.django_db
def test_reader_unknown_blog_is_404(client, blog):
    response = client.get("/liveblog/nope/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


@pytest.mark.django_db
def test_reader_escapes_blog_title(client, owner):
    services.blog_create(actor=owner, slug="xss", title="<script>alert(1)</script>")
    html = client.get("/liveblog/xss/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_reader_offers_the_console_to_authors_only(client, author, blog):
    assert CONSOLE_URL not in client.get(READER_URL).content.decode()
    assert CONSOLE_URL in signed_in(author).get(READER_URL).content.decode()


# --- Headers ----------------------------------------------------------------------------------


def directives(header):
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", READER_URL, "/offline/", "/accounts/login/"])
def test_csp_allows_only_own_scripts(client, blog, url):
    response = client.get(url)
    assert response.status_code == 200
    header = response["Content-Security-Policy"]
    policy = directives(header)
    assert "'self'" in policy["script-src"]
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header
    assert policy["object-src"] == ["'none'"]


# --- Author console ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_console_redirects_anonymous_to_login(client, blog):
    response = client.get(CONSOLE_URL)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={CONSOLE_URL}"


@pytest.mark.django_db
def test_console_is_403_for_a_stranger(stranger, blog):
    response = signed_in(stranger).get(CONSOLE_URL)
    assert response.status_code == 403
    html = response.content.decode()
    assert "not an author" in html
    assert 'id="compose"' not in html


@pytest.mark.django_db
def test_console_renders_compose_form_and_outbox_for_an_author(author, make_post):
    post_id = make_post("already out").data["id"]
    page = page_of(signed_in(author).get(CONSOLE_URL))
    form = page.by_id("compose")
    assert form.tag == "form"
    textareas = [element for element in page.select("textarea") if element.inside("compose")]
    assert [element.attrs.get("name") for element in textareas] == ["body"]
    buttons = [element for element in page.select("button") if element.inside("compose")]
    # One submit button; the others (removing a chosen photo) only act inside the form.
    assert [element.attrs.get("type") for element in buttons].count("submit") == 1
    assert page.select("input", name="photo") and page.select("input", name="photo_alt")
    assert page.by_id("outbox").tag == "ul"
    assert page.feed_post_ids() == [post_id]
    assert page.select("input", name="csrfmiddlewaretoken")


@pytest.mark.django_db
def test_console_is_open_to_the_owner(owner, blog):
    page = page_of(signed_in(owner).get(CONSOLE_URL))
    assert page.by_id("compose").tag == "form"


@pytest.mark.django_db
def test_console_unknown_blog_is_404(author, blog):
    assert signed_in(author).get("/liveblog/nope/write/").status_code == 404


# --- Sign in and out --------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_renders_a_form(client):
    page = page_of(client.get("/accounts/login/"))
    assert page.select("input", name="username")
    assert page.select("input", name="password")


@pytest.mark.django_db
def test_login_with_password_signs_in(client, author, blog):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(author.pk)
    assert client.get(CONSOLE_URL).status_code == 200


@pytest.mark.django_db
def test_login_follows_next(client, author, blog):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "alice-password", "next": CONSOLE_URL},
    )
    assert response.status_code == 302
    assert response["Location"] == CONSOLE_URL


@pytest.mark.django_db
def test_login_with_wrong_password_fails(client, author):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert 'class="error"' in response.content.decode()


@pytest.mark.django_db
def test_logout_signs_out(author, blog):
    client = signed_in(author)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "_auth_user_id" not in client.session
    assert client.get(CONSOLE_URL).status_code == 302


@pytest.mark.django_db
def test_pages_show_sign_out_form_when_signed_in(author, blog):
    page = page_of(signed_in(author).get(READER_URL))
    assert page.select("form", action="/accounts/logout/", method="post")


# --- Offline page -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_offline_page_renders(client):
    response = client.get("/offline/")
    assert response.status_code == 200
    assert "You are offline" in response.content.decode()


@pytest.mark.django_db
def test_the_console_is_drawn_for_the_role(owner, author, stranger, blog):
    """Editors (and the owner) get the queue, "Publish at" and the post controls; a contributor
    gets their own submissions, a note that posts go to the desk, and no controls."""
    services.member_set(actor=owner, blog_id=blog.pk, user=stranger, role="contributor")
    for user, role in ((owner, "owner"), (author, "editor")):
        page = page_of(signed_in(user).get(CONSOLE_URL))
        desk = page.by_id("desk")
        assert desk.attrs["data-role"] == role
        assert desk.attrs["data-reader-url"] == READER_URL
        assert page.by_id("compose").attrs["data-role"] == role
        assert page.select("input", name="publish_at")[0].attrs["type"] == "datetime-local"
        assert page.by_id("post-actions-template").tag == "template"
        assert not page.select("section", id="my-submissions")
        assert not page.select("p", id="compose-note")
    page = page_of(signed_in(stranger).get(CONSOLE_URL))
    assert page.by_id("my-submissions").attrs["data-role"] == "contributor"
    assert page.by_id("compose-note").tag == "p"
    assert not page.select("input", name="publish_at")
    assert not page.select("template", id="post-actions-template")
    assert not page.select("section", id="desk")


@pytest.mark.django_db
def test_the_console_never_carries_the_desk(owner, author, stranger, blog):
    """The console is cached for offline use: submissions reach it live, never in its HTML."""
    services.member_set(actor=owner, blog_id=blog.pk, user=stranger, role="contributor")
    services.post_create(actor=stranger, blog_id=blog.pk, client_id=uuid.uuid4(),
                         body="Unpublished scoop")
    for user in (owner, stranger):
        html = signed_in(user).get(CONSOLE_URL).content.decode()
        assert "Unpublished scoop" not in html
        assert "{#" not in html and "{%" not in html  # no template comment shown as text
        page = Page(html)
        assert not [element for element in page.elements if element.tag == "li" and (
            element.inside("desk-queue") or element.inside("desk-decided"))]
