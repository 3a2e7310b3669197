"""Markdown to safe HTML, done once when a post is written (readers never get author HTML)."""

import nh3
from markdown_it import MarkdownIt

# CommonMark with raw HTML switched off: `<script>` in a body is shown as text, not parsed.
# Tables and strikethrough are common in live blogs (scores, corrections).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])

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
    ).strip()
