"""The Atom feed of a blog, `/liveblog/<slug>/feed/`: the newest posts for feed readers and
aggregators (django.contrib.syndication).

Entries keep a stable `tag:` id (RFC 4151) for the life of the post, `published` is when the post
was made and `updated` when it was last edited; a deleted post is gone from the next answer.
Content is the post's HTML as the reader page shows it (sanitized when it was written) and its
photo, also an enclosure. A poll that changed nothing is answered 304 from one query: the ETag
and Last-Modified come from the blog's committed head, epoch and last event (every visible
change moves the head).
"""

from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.contrib.syndication.views import Feed
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Enclosure
from django.views.decorators.http import condition

from . import selectors
from .errors import NotFound
from .models import Blog
from .rendering import plain_text

FEED_ENTRIES = 50  # what feed readers need: the newest posts, not the archive
TITLE_CHARS = 100


def _title(post: dict) -> str:
    text = plain_text(post["html"]) or (post["photo"] or {}).get("alt", "") or "Update"
    return text if len(text) <= TITLE_CHARS else f"{text[:TITLE_CHARS - 1]}…"


class BlogFeed(Feed):
    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, slug: str) -> Blog:
        try:
            return selectors.blog_get(slug)
        except NotFound:
            raise Http404("no such blog") from None

    def title(self, blog: Blog) -> str:
        return blog.title

    def subtitle(self, blog: Blog) -> str:
        return blog.description

    def link(self, blog: Blog) -> str:
        return reverse("blog-reader", args=[blog.slug])

    def feed_guid(self, blog: Blog) -> str:
        return f"tag:{self.host},{blog.created_at:%Y-%m-%d}:liveblog/{blog.slug}"

    def get_feed(self, blog: Blog, request: HttpRequest):
        self.host = request.get_host().split(":")[0]
        self.blog = blog
        return super().get_feed(blog, request)

    def items(self, blog: Blog) -> list[dict]:
        return selectors.posts_page(blog.pk, limit=FEED_ENTRIES).posts

    def item_title(self, post: dict) -> str:
        return _title(post)

    def item_description(self, post: dict) -> str:
        photo = post["photo"]
        if not photo:
            return post["html"]
        figure = (f'<figure><img src="{escape(photo["src"])}" width="{photo["width"]}" '
                  f'height="{photo["height"]}" alt="{escape(photo["alt"])}"></figure>')
        return figure + post["html"]

    def item_link(self, post: dict) -> str:
        return f"{reverse('blog-reader', args=[self.blog.slug])}#post-{post['id']}"

    def item_guid(self, post: dict) -> str:
        created = datetime.fromisoformat(post["created_at"])
        return f"tag:{self.host},{created:%Y-%m-%d}:liveblog/{self.blog.slug}/post/{post['id']}"

    item_guid_is_permalink = False

    def item_pubdate(self, post: dict) -> datetime:
        return datetime.fromisoformat(post["created_at"])

    def item_updateddate(self, post: dict) -> datetime:
        return datetime.fromisoformat(post["edited_at"] or post["created_at"])

    def item_author_name(self, post: dict) -> str:
        return post["author"]["name"]

    def item_enclosures(self, post: dict) -> list[Enclosure]:
        photo = post["photo"]
        if not photo:
            return []
        largest = photo["srcset"].split(", ")[-1].rsplit(" ", 1)[0]
        return [Enclosure(largest, str(_size(largest)), "image/jpeg")]


def _size(url: str) -> int:
    """An enclosure's length (Atom wants one; 0 when the storage cannot say)."""
    name = url.removeprefix(default_storage.base_url or "")
    try:
        return default_storage.size(name)
    except (OSError, NotImplementedError, ValueError):
        return 0


@dataclass(frozen=True)
class _Version:
    etag: str
    modified: datetime | None


def _version(request: HttpRequest, slug: str) -> _Version | None:
    """The feed's version from one query, read once per request."""
    if not hasattr(request, "_liveblog_feed_version"):
        found = selectors.feed_version(slug)
        request._liveblog_feed_version = found and _Version(
            etag=f'"{found[1]}-{found[0]}"', modified=found[2]
        )
    return request._liveblog_feed_version


@condition(
    etag_func=lambda request, slug: (version := _version(request, slug)) and version.etag,
    last_modified_func=lambda request, slug: (
        (version := _version(request, slug)) and version.modified
    ),
)
def blog_feed(request: HttpRequest, slug: str) -> HttpResponse:
    # A Feed per request: get_feed keeps the request's host and blog on it.
    response = BlogFeed()(request, slug=slug)
    response["Cache-Control"] = "no-cache"  # always revalidated: a live blog changes by the second
    return response
