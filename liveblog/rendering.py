"""Markdown to safe HTML, done once when a post is written (readers never get author HTML).

Images load only from the site itself, its MEDIA_URL and LIVEBLOG_IMAGE_HOSTS: one from
anywhere else would load in every reader's browser, telling its owner who reads (a tracking
pixel), and the Content-Security-Policy would block it anyway. Such an image is written as a
link to it instead, so the author sees at once that it will not show, and readers still can
follow it.
"""

from html import unescape
from urllib.parse import urlsplit

import nh3
from django.conf import settings
from django.utils.html import strip_tags
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

# CommonMark with raw HTML switched off: `<script>` in a body is shown as text, not parsed.
# Tables and strikethrough are common in live blogs (scores, corrections).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])
DEFAULT_PORTS = {"http": 80, "https": 443}

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6", "img",
    "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def image_allowed(src: str) -> bool:
    """A path on the site itself, or an http(s) URL on an allowed image origin."""
    try:
        parts = urlsplit(src)
    except ValueError:
        return False
    if not parts.scheme and not parts.netloc:
        return "\\" not in src  # browsers read a backslash as a slash: "/\\host" is "//host"
    allowed = {_origin(origin) for origin in settings.LIVEBLOG_IMAGE_ORIGINS}
    return _origin(src) in allowed - {None}


def _render_image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if image_allowed(src):
        return self.image(tokens, idx, options, env)
    text = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or src)
    return text if _inside_link(tokens, idx) else f'<a href="{escapeHtml(src)}">{text}</a>'


def _inside_link(tokens, idx: int) -> bool:
    depth = 0
    for token in tokens[:idx]:
        depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
    return depth > 0


_markdown.add_render_rule("image", _render_image)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Belt and braces behind _render_image: no img src from elsewhere survives."""
    if tag == "img" and attribute == "src" and not image_allowed(value):
        return None
    return value


def render_markdown(body: str) -> str:
    """Render Markdown and sanitize the result; the sanitizer is the guarantee, whatever the
    Markdown parser lets through (headings are shifted below the page's own h1)."""
    html = _markdown.render(body).replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
        attribute_filter=_keep_attribute,
    ).strip()


def plain_text(html: str) -> str:
    """A post's HTML as text (titles, summaries, descriptions): tags dropped, entities decoded,
    whitespace collapsed. Whoever puts it in HTML escapes it once."""
    return " ".join(unescape(strip_tags(html)).split())


def cut_text(text: str, limit: int) -> str:
    """`text`, or its first `limit - 1` characters and an ellipsis."""
    return text if len(text) <= limit else f"{text[:limit - 1]}…"
