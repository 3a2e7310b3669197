"""A blog embedded in other sites' pages: the snippets the reader page's "Embed" panel offers,
the oEmbed answer built from the same snippet, and the embed view's frame-ancestors.

The frame is `/liveblog/<slug>/embed/`. `/embed.js` (static/liveblog/embed.js) makes it from a
`<script data-blog>` and keeps its height equal to its content: it says `liveblog:hello` to the
frame, and the frame, if the embedding page's origin is on the blog's list, answers with its
height, to that exact origin, whenever it changes. Both sides check `event.origin` and
`event.source`. Browsers enforce the list itself through the CSP's frame-ancestors.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import Resolver404, resolve, reverse
from django.utils.html import format_html

from . import selectors
from .errors import Invalid, NotFound, Unsupported
from .models import Blog

# Hints for the plain frame and oEmbed: a column of an article page. The script version
# follows the content's height instead.
FRAME_WIDTH = 640
FRAME_HEIGHT = 800
# What the frame may do: run its scripts and keep its own origin (its websocket, its offline
# copy), open links in new tabs, and take the reader's whole tab only when they tap a link. It
# can never navigate the embedding page by itself.
FRAME_SANDBOX = ("allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox "
                 "allow-top-navigation-by-user-activation")


def embed_url(request: HttpRequest, blog: Blog) -> str:
    return request.build_absolute_uri(reverse("blog-embed", args=[blog.slug]))


def script_snippet(request: HttpRequest, blog: Blog | None) -> str:
    """The one line for an article page: embed.js makes the blog's frame, fitting its
    content. Without a blog, it fits the frames already on the page (oEmbed's HTML)."""
    src = request.build_absolute_uri(reverse("embed-script"))
    if blog is None:
        return format_html('<script src="{}" async></script>', src)
    return format_html('<script src="{}" data-blog="{}" async></script>', src, blog.slug)


def frame_snippet(
    request: HttpRequest, blog: Blog, *, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT
) -> str:
    """A plain frame, for pages that cannot have scripts (it scrolls inside instead of
    growing). embed.js, if the page has it, resizes it too: it has `data-liveblog-embed`."""
    return format_html(
        '<iframe src="{}" title="{} (live blog)" width="{}" height="{}" '
        'style="border:0;width:100%;max-width:{}px" sandbox="{}" data-liveblog-embed></iframe>',
        embed_url(request, blog), blog.title, width, height, width, FRAME_SANDBOX,
    )


def frame_ancestors(blog: Blog) -> list[str]:
    """The embed view's CSP frame-ancestors: the blog's list, or nobody."""
    return list(blog.embed_origins) or ["'none'"]


@dataclass(frozen=True)
class OEmbedRequest:
    url: str
    max_width: int | None
    max_height: int | None


def oembed(request: HttpRequest, asked: OEmbedRequest) -> dict:
    """The oEmbed 1.0 `rich` answer for a reader page URL of this site."""
    blog = _blog_of(request, asked.url)
    width = min(FRAME_WIDTH, asked.max_width or FRAME_WIDTH)
    height = min(FRAME_HEIGHT, asked.max_height or FRAME_HEIGHT)
    return {
        "version": "1.0",
        "type": "rich",
        "title": blog.title,
        "provider_name": "Liveblog",
        "provider_url": request.build_absolute_uri(reverse("blog-index")),
        "html": frame_snippet(request, blog, width=width, height=height)
        + script_snippet(request, None),
        "width": width,
        "height": height,
        "thumbnail_url": request.build_absolute_uri(static("pwa/icon-512.png")),
        "thumbnail_width": 512,
        "thumbnail_height": 512,
        # Consumers keep the answer this long: the frame itself is live, the HTML never changes.
        "cache_age": 86400,
    }


def _blog_of(request: HttpRequest, url: str) -> Blog:
    """The blog whose reader (or embed) page `url` is, on this site; NotFound otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[x/…": a bracketed host that is not an IPv6 address
        raise NotFound("not a page of this site") from None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.get_host().lower():
        raise NotFound("not a page of this site")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise NotFound("not a blog's page") from None
    if match.url_name not in ("blog-reader", "blog-embed"):
        raise NotFound("not a blog's page")
    return selectors.blog_get(match.kwargs["slug"])


URL_MAX_CHARS = 1000  # a reader page's URL is short; anything longer is not one


def oembed_request(
    url: str | None, response_format: str | None, max_width: int | None, max_height: int | None
) -> OEmbedRequest:
    if response_format not in (None, "", "json"):
        raise Unsupported("only format=json is available")  # as oEmbed asks: 501
    if not url:
        raise Invalid("url is required")
    if len(url) > URL_MAX_CHARS:
        raise Invalid(f"url is longer than {URL_MAX_CHARS} characters")
    return OEmbedRequest(url=url, max_width=max_width, max_height=max_height)
