"""Markdown rendering and sanitization: author HTML never reaches a reader's browser."""

import json
import re
import uuid
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from liveblog import rendering, services
from liveblog.models import Event, Post
from liveblog.rendering import ALLOWED_TAGS, render_markdown

SAFE_SCHEMES = {"http", "https", "mailto"}


class Tags(HTMLParser):
    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags_of(html):
    return Tags(html).tags


def scheme(url):
    """The URL's scheme as a browser reads it (tabs, newlines and C0 controls are ignored; a
    prefix that is not a valid scheme, like `java%09script`, makes it a relative URL)."""
    cleaned = "".join(char for char in url if ord(char) > 32).lower()
    match = re.match(r"([a-z][a-z0-9+.-]*):", cleaned)
    return match.group(1) if match else None


def assert_safe(html):
    for tag, attrs in tags_of(html):
        assert tag in ALLOWED_TAGS, tag
        assert tag != "script"
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"style", "srcdoc", "formaction"}, (tag, name)
            if name in {"href", "src"}:
                found = scheme(value or "")
                assert found is None or found in SAFE_SCHEMES, (tag, name, value)


def links(html):
    return [attrs for tag, attrs in tags_of(html) if tag == "a"]


def images(html):
    return [attrs for tag, attrs in tags_of(html) if tag == "img"]


# --- Scripts and event handlers ---------------------------------------------------------------


def test_script_tag_is_shown_as_text():
    html = render_markdown("<script>alert(1)</script>")
    assert "<script" not in html
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert_safe(html)


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        "```\n<script>alert(1)</script>\n```",
        "`<script>alert(1)</script>`",
        "<svg><script>alert(1)</script></svg>",
        "text\n\n<script>\nalert(1)\n</script>\n",
    ],
)
def test_no_script_element_survives(body):
    html = render_markdown(body)
    assert not [tag for tag, _ in tags_of(html) if tag == "script"]
    assert_safe(html)


@pytest.mark.parametrize(
    "body",
    [
        "<img src=x onerror=alert(1)>",
        '<img src="https://example.com/a.png" onerror="alert(1)">',
        '<div onclick="alert(1)">click</div>',
        "<body onload=alert(1)>",
        '<a href="https://example.com" onmouseover="alert(1)">x</a>',
    ],
)
def test_event_handler_attributes_never_survive(body):
    html = render_markdown(body)
    assert not [
        name for _, attrs in tags_of(html) for name in attrs if name.startswith("on")
    ]
    assert_safe(html)


# --- Links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](DaTa:text/html,hi)",
        "[x](vbscript:msgbox(1))",
        "[x](VBScript:msgbox(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "<javascript:alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_dangerous_link_schemes_are_dropped(body):
    html = render_markdown(body)
    for attrs in links(html):
        assert scheme(attrs.get("href") or "") in (None, *SAFE_SCHEMES)
    assert_safe(html)


@pytest.mark.parametrize(
    "body",
    ["[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](data:text/html,hi)",
     "[x](vbscript:msgbox(1))"],
)
def test_dangerous_links_make_no_href(body):
    assert not [attrs for attrs in links(render_markdown(body)) if attrs.get("href")]


@pytest.mark.parametrize(
    ("body", "href"),
    [
        ("[site](https://example.com/a?b=1)", "https://example.com/a?b=1"),
        ("[site](http://example.com/)", "http://example.com/"),
        ("[mail](mailto:desk@example.com)", "mailto:desk@example.com"),
        ("<https://example.com/auto>", "https://example.com/auto"),
    ],
)
def test_safe_links_survive_with_rel_nofollow_noopener_noreferrer(body, href):
    found = links(render_markdown(body))
    assert len(found) == 1
    assert found[0]["href"] == href
    assert found[0]["rel"] == "nofollow noopener noreferrer"


def test_link_title_is_kept_and_target_is_not():
    html = render_markdown('[x](https://example.com "The title")')
    assert links(html) == [{
        "href": "https://example.com", "title": "The title", "rel": "nofollow noopener noreferrer",
    }]


def test_link_to_another_scheme_loses_its_href():
    assert links(render_markdown("[x](ftp://example.com/file)")) == [
        {"rel": "nofollow noopener noreferrer"}
    ]


# --- Images -----------------------------------------------------------------------------------


def test_image_from_an_allowed_origin_survives(settings):
    settings.LIVEBLOG_IMAGE_ORIGINS = ["https://example.com"]
    assert images(render_markdown('![A cat](https://example.com/cat.png "Tom")')) == [
        {"src": "https://example.com/cat.png", "alt": "A cat", "title": "Tom"}
    ]


@pytest.mark.parametrize("src", ["/media/liveblog/photos/1/abc-640.jpg", "cat.png"])
def test_image_from_the_site_itself_survives(settings, src):
    settings.LIVEBLOG_IMAGE_ORIGINS = []
    assert images(render_markdown(f"![A cat]({src})")) == [{"src": src, "alt": "A cat"}]


@pytest.mark.parametrize("src", [
    "https://tracker.example/pixel.gif",
    "http://example.com/cat.png",  # another scheme than the allowed origin
    "https://example.com:8443/cat.png",  # another port
    "https://cdn.example.com/cat.png",  # a subdomain is another origin
    "//tracker.example/pixel.gif",  # scheme-relative: elsewhere
])
def test_image_from_elsewhere_becomes_a_link_to_it(settings, src):
    settings.LIVEBLOG_IMAGE_ORIGINS = ["https://example.com"]
    html = render_markdown(f"Look: ![A *cat*]({src})")
    assert images(html) == []
    assert [link.get("href") for link in links(html)] == [src]
    assert ">A cat</a>" in html


def test_an_image_from_elsewhere_inside_a_link_becomes_its_text(settings):
    settings.LIVEBLOG_IMAGE_ORIGINS = []
    html = render_markdown("[![Replay](https://tracker.example/p.gif)](https://example.com/v)")
    assert images(html) == []
    assert links(html) == [{"href": "https://example.com/v", "rel": "nofollow noopener noreferrer"}]
    assert ">Replay</a>" in html


def test_a_backslashed_path_is_not_the_site(settings):
    settings.LIVEBLOG_IMAGE_ORIGINS = []
    from liveblog.rendering import image_allowed

    assert not image_allowed("/\\tracker.example/p.gif")
    assert not image_allowed("https://[broken/p.gif")
    assert image_allowed("/static/liveblog/icon.png")


@pytest.mark.parametrize(
    "body",
    [
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
        "![x](vbscript:msgbox(1))",
        "![x](JavaScript:alert(1))",
        "<img src=javascript:alert(1)>",
    ],
)
def test_image_with_unsafe_src_loses_it(body):
    html = render_markdown(body)
    for attrs in images(html):
        assert scheme(attrs.get("src") or "") in (None, "http", "https")
    assert_safe(html)


# --- Raw HTML in Markdown ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ('<iframe src="https://evil.example"></iframe>', "&lt;iframe"),
        ('<p style="color:red">x</p>', "&lt;p style="),
        ("<!-- hidden -->", "&lt;!-- hidden --&gt;"),
    ],
)
def test_raw_html_is_escaped_not_parsed(body, text):
    html = render_markdown(body)
    assert text in html
    assert [tag for tag, _ in tags_of(html)] == ["p"]


def test_sanitizer_holds_even_if_markdown_passed_raw_html(monkeypatch):
    """The sanitizer is the guarantee, whatever the Markdown parser lets through."""
    monkeypatch.setattr(rendering, "_markdown", MarkdownIt("commonmark", {"html": True}))
    body = (
        "<script>alert(1)</script>\n\n"
        '<img src="x" onerror="alert(1)"> <img src="data:image/png;base64,AA">\n\n'
        '<a href="JaVaScRiPt:alert(1)">a</a> <a href="vbscript:x">b</a> '
        '<a href="data:text/html,x">c</a>\n\n'
        '<iframe src="https://evil.example"></iframe><p style="x" class="y">t</p>'
        '<svg><script>alert(2)</script></svg><object data="x"></object>'
    )
    html = render_markdown(body)
    assert "alert" not in html
    assert "iframe" not in html and "svg" not in html and "object" not in html
    assert_safe(html)
    assert all("src" not in attrs or attrs["src"] == "x" for attrs in images(html))
    assert all("href" not in attrs for attrs in links(html))


# --- Allowed markup ---------------------------------------------------------------------------


def test_bold_and_emphasis():
    assert render_markdown("**bold** and *em*") == (
        "<p><strong>bold</strong> and <em>em</em></p>"
    )


def test_lists():
    assert render_markdown("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    assert render_markdown("3. c\n4. d") == '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>'


def test_tables():
    html = render_markdown("| Team | Goals |\n|---|---|\n| Rovers | 2 |")
    assert [tag for tag, _ in tags_of(html)] == [
        "table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td",
    ]
    assert "<td>Rovers</td>" in html


def test_strikethrough_code_quote_and_headings():
    assert render_markdown("~~1-0~~") == "<p><s>1-0</s></p>"
    assert render_markdown("`x < y`") == "<p><code>x &lt; y</code></p>"
    assert render_markdown("> said") == "<blockquote>\n<p>said</p>\n</blockquote>"
    # The page has its own h1: a post's headings start at h2.
    assert render_markdown("# Full time") == "<h2>Full time</h2>"


def test_line_break():
    assert render_markdown("one  \ntwo") == "<p>one<br>\ntwo</p>"


# --- Through the service ----------------------------------------------------------------------


NASTY_BODY = (
    "**Goal!** <script>alert(document.cookie)</script>\n\n"
    "[replay](javascript:alert(1)) ![x](https://example.com/x.png)"
    ' <img src=x onerror="alert(2)">  \r\n'
)


@pytest.mark.django_db
def test_created_post_html_is_sanitized(make_post):
    written = make_post(NASTY_BODY)
    html = written.data["html"]
    assert_safe(html)
    assert "<script" not in html
    assert "<strong>Goal!</strong>" in html
    assert images(html) == []  # not an allowed image origin: a link to it instead
    assert {"href": "https://example.com/x.png", "rel": "nofollow noopener noreferrer"} in \
        links(html)
    assert Post.objects.get(pk=written.data["id"]).html == html


@pytest.mark.django_db
def test_created_post_body_is_returned_exactly_as_written(blog, make_post):
    written = make_post(NASTY_BODY)
    assert written.data["body"] == NASTY_BODY
    assert Post.objects.get(pk=written.data["id"]).body == NASTY_BODY
    stored = json.loads(Event.objects.get(blog=blog, seq=written.seq).frame)
    assert stored["post"]["body"] == NASTY_BODY
    assert stored["post"]["html"] == written.data["html"]


@pytest.mark.django_db
def test_edited_post_html_is_sanitized_and_body_kept(blog, author, make_post):
    post_id = make_post("fine").data["id"]
    written = services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, body=NASTY_BODY)
    assert written.data["body"] == NASTY_BODY
    assert_safe(written.data["html"])
    assert "<script" not in written.data["html"]


@pytest.mark.django_db
def test_api_returns_body_exactly_and_html_sanitized(client, author, blog):
    client.force_login(author)
    response = client.post(
        "/api/liveblog/final/posts",
        data=json.dumps({"client_id": str(uuid.uuid4()), "body": NASTY_BODY}),
        content_type="application/json",
    )
    assert response.status_code == 201
    post = response.json()["post"]
    assert post["body"] == NASTY_BODY
    assert_safe(post["html"])
    listed = client.get("/api/liveblog/final/posts").json()["posts"][0]
    assert listed["body"] == NASTY_BODY
    assert listed["html"] == post["html"]
