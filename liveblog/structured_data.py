"""The reader page's structured data (schema.org JSON-LD): a `LiveBlogPosting` that earns search
engines' "LIVE" badge, built from the database and its log on each request.

- `datePublished` and `coverageStartTime`: the blog's first publication, the earliest post's
  `created_at`, deleted posts included so that deleting the first post never moves it. While a
  blog has no post yet they are the blog's own `created_at` (its page exists and can be found
  from then on); the first post then fixes them for good.
- `dateModified`: the time of the last event of the log (any change a reader can see), else the
  blog's `created_at`. `coverageEndTime`: `ended_at`, only while the blog has ended.
- `liveBlogUpdate`: the newest LIVE_BLOG_UPDATES visible posts as `BlogPosting`s, newest first,
  each with its anchor on the reader page (`#post-<id>`).
- `author`: the authors of those updates as `Person`s, in the order they first appear among them
  (newest first: whoever posted last leads); the blog's owner while there is no update.
- `headline`s are plain text cut to HEADLINE_CHARS, Google's limit for article headlines.
- `LIVEBLOG_NEWS_ARTICLE` adds a `NewsArticle` sharing the same headline, description, dates,
  url, image, publisher and authors, for publishers whose other tools need one; the two nodes
  then go in one `@graph`.
"""

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe

from . import selectors
from .models import Blog
from .protocol import author_json, iso
from .rendering import plain_text

LIVE_BLOG_UPDATES = 50
HEADLINE_CHARS = 110
PUBLISHER_LOGO_DEFAULT = "pwa/icon-512.png"  # the app's own 512 px PWA icon (static)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def _headline(post: dict) -> str:
    text = plain_text(post["html"]) or (post["photo"] or {}).get("alt", "") or "Update"
    return _cut(text, HEADLINE_CHARS)


def _largest_photo(request: HttpRequest, photo: dict) -> str:
    """The absolute URL of a photo's largest variant (`srcset` lists them narrowest first)."""
    return request.build_absolute_uri(photo["srcset"].split(", ")[-1].rsplit(" ", 1)[0])


def _person(author: dict) -> dict:
    return {"@type": "Person", "name": author["name"]}


def _publisher(request: HttpRequest) -> dict:
    logo = settings.LIVEBLOG_PUBLISHER_LOGO or static(PUBLISHER_LOGO_DEFAULT)
    return {
        "@type": "Organization",
        "name": settings.LIVEBLOG_PUBLISHER_NAME,
        "logo": {"@type": "ImageObject", "url": request.build_absolute_uri(logo)},
    }


def _update(request: HttpRequest, post: dict, url: str) -> dict:
    update = {
        "@type": "BlogPosting",
        "headline": _headline(post),
        "articleBody": plain_text(post["html"]),
        "datePublished": post["created_at"],
        "dateModified": post["edited_at"] or post["created_at"],
        "url": f"{url}#post-{post['id']}",
        "author": _person(post["author"]),
    }
    if post["photo"]:
        update["image"] = _largest_photo(request, post["photo"])
    return update


def reader_structured_data(
    request: HttpRequest, blog: Blog, *, description: str, url: str
) -> dict[str, Any]:
    """The JSON-LD of a blog's reader page; `description` and `url` are the page's own meta
    description and canonical URL, so that every crawler reads the same."""
    posts = selectors.posts_page(blog.pk, limit=LIVE_BLOG_UPDATES).posts
    dates = selectors.blog_dates(blog.pk)
    published = iso(dates.first_post_at or blog.created_at)
    authors: dict[str, dict] = {}
    for post in posts:
        authors.setdefault(post["author"]["username"], _person(post["author"]))
    photo = next((post["photo"] for post in posts if post["photo"]), None)
    shared: dict[str, Any] = {
        "headline": _cut(blog.title, HEADLINE_CHARS),
        "description": description,
        "url": url,
        "mainEntityOfPage": url,
        "datePublished": published,
        "dateModified": iso(dates.last_event_at or blog.created_at),
        "publisher": _publisher(request),
        "author": list(authors.values()) or [_person(author_json(blog.owner))],
    }
    if photo:
        shared["image"] = _largest_photo(request, photo)
    live: dict[str, Any] = {"@type": "LiveBlogPosting", **shared, "coverageStartTime": published}
    if blog.status == Blog.Status.ENDED and blog.ended_at:
        live["coverageEndTime"] = iso(blog.ended_at)
    live["liveBlogUpdate"] = [_update(request, post, url) for post in posts]
    if not settings.LIVEBLOG_NEWS_ARTICLE:
        return {"@context": "https://schema.org", **live}
    return {
        "@context": "https://schema.org",
        "@graph": [
            {"@id": f"{url}#live", **live},
            {"@type": "NewsArticle", "@id": f"{url}#article", **shared},
        ],
    }


# As Django's json_script: inside <script> these could end the element or start a comment.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def script_json(data: dict[str, Any]) -> SafeString:
    """JSON for a `<script type="application/ld+json">` element: no post text can close it."""
    return mark_safe(json.dumps(data, ensure_ascii=False).translate(_SCRIPT_ESCAPES))
