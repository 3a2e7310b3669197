"""Server-rendered pages. The reader's feed is complete HTML (readable with JavaScript off); the
browser modules then continue live from the head the page was rendered at."""

from functools import cache
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from .. import embedding, protocol, selectors, structured_data
from ..errors import Invalid, NotFound
from ..models import Blog
from ..permissions import PUBLISHING_ROLES, can_manage_blog, can_post, role_of
from ..rendering import plain_text


def _blog_or_404(slug: str) -> Blog:
    try:
        return selectors.blog_get(slug)
    except NotFound:
        raise Http404("no such blog") from None


def _ordered_for_reading(posts: list[dict]) -> list[dict]:
    """Pinned posts on top, then newest first (the order the browser client keeps too)."""
    return sorted(posts, key=lambda post: (not post["pinned"], -post["id"]))


SUMMARY_CHARS = 90  # as feed-view.js's SUMMARY_CHARS


def _summary(html: str) -> str:
    """A post's text for the key-events box, made as feed-view.js's summary() makes it."""
    text = plain_text(html)
    return text if len(text) <= SUMMARY_CHARS else f"{text[:SUMMARY_CHARS - 1]}…"


def _feed_context(page: selectors.PostsPage) -> dict:
    """What the live feed templates need: the posts in reading order, the key events, and the
    same data as a snapshot-shaped JSON block the browser client starts from, and how many
    blogs the browser keeps for reading offline."""
    return {
        "page": page,
        "posts": _ordered_for_reading(page.posts),
        "key_events": [
            {**post, "summary": _summary(post["html"])}
            for post in sorted(page.posts, key=lambda post: -post["id"]) if post["key_event"]
        ],
        "feed_data": protocol.snapshot_json(page),
        "offline_blogs": settings.LIVEBLOG_OFFLINE_BLOGS,
    }


def blog_index(request: HttpRequest) -> HttpResponse:
    return render(request, "liveblog/index.html", {
        "blogs": selectors.blog_list(),
        "canonical": request.build_absolute_uri(reverse("blog-index")),
    })


def robots_txt(request: HttpRequest) -> HttpResponse:
    """Crawlers read the blog list and reader pages; the rest is for people signed in, or an
    API they have no use for."""
    lines = ["User-agent: *", "Disallow: /admin/", "Disallow: /accounts/", "Disallow: /api/",
             "Disallow: /liveblog/*/write/", "Disallow: /sse/",
             f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}"]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


DESCRIPTION_CHARS = 160  # what search results show of a description


def _sharing(request: HttpRequest, blog: Blog, page: selectors.PostsPage) -> dict:
    """The reader page as search engines and link previews show it: a description (the newest
    key event, else the blog's description, else what it is), its canonical URL and the newest
    photo."""
    newest_first = sorted(page.posts, key=lambda post: -post["id"])
    key_event = next((post for post in newest_first if post["key_event"]), None)
    text = (plain_text(key_event["html"]) if key_event else "") or blog.description \
        or gettext("Live coverage: %(title)s") % {"title": blog.title}
    photo = next((post["photo"] for post in newest_first if post["photo"]), None)
    return {
        "description": text if len(text) <= DESCRIPTION_CHARS
        else f"{text[:DESCRIPTION_CHARS - 1]}…",
        "canonical": request.build_absolute_uri(reverse("blog-reader", args=[blog.slug])),
        "image": request.build_absolute_uri(photo["src"]) if photo else None,
        "image_alt": photo["alt"] if photo else "",
        # The same publisher the structured data names.
        "site_name": settings.LIVEBLOG_PUBLISHER_NAME,
    }


def _embed_panel(request: HttpRequest, blog: Blog) -> dict:
    """The "Embed" panel's snippets, and the oEmbed endpoint the page advertises."""
    canonical = request.build_absolute_uri(reverse("blog-reader", args=[blog.slug]))
    return {
        "script": embedding.script_snippet(request, blog),
        "frame": embedding.frame_snippet(request, blog),
        "oembed": request.build_absolute_uri(
            f"{reverse('api-oembed')}?{urlencode({'url': canonical, 'format': 'json'})}"
        ),
    }


def blog_reader(request: HttpRequest, slug: str) -> HttpResponse:
    blog = _blog_or_404(slug)
    try:
        before = protocol.int_param(request.GET["before"], "before", minimum=1)
    except KeyError:
        before = None
    except Invalid:
        raise Http404("no such page") from None
    context = {
        "blog": blog, "archive": before is not None, "can_write": can_post(request.user, blog)
    }
    if before is None:  # the live feed: the first page, pinned posts included
        snapshot = selectors.blog_snapshot(blog.pk)
        sharing = _sharing(request, blog, snapshot)
        context.update(_feed_context(snapshot), sharing=sharing, embed=_embed_panel(request, blog),
                       structured_data=structured_data.script_json(
                           structured_data.reader_structured_data(
                               request, blog, description=sharing["description"],
                               url=sharing["canonical"],
                           )
                       ))
    else:  # a plain archive page, for readers without JavaScript
        page = selectors.posts_page(blog.pk, before=before)
        context.update(page=page, posts=page.posts)
    return render(request, "liveblog/reader.html", context)


@login_required
def blog_console(request: HttpRequest, slug: str) -> HttpResponse:
    blog = _blog_or_404(slug)
    role = role_of(request.user, blog)
    if role is None:
        return render(request, "liveblog/not_author.html", {"blog": blog}, status=403)
    # The role decides the page: editors (and the owner) publish, edit any post and work the
    # desk's queue; contributors send to the desk and follow their own submissions. The desk
    # itself is never in this HTML (it is cached for offline use): desk.js fetches it live.
    return render(request, "liveblog/console.html", {
        "blog": blog,
        "role": role,
        "publishes": role in PUBLISHING_ROLES,
        "can_manage": can_manage_blog(request.user, blog),
        **_feed_context(selectors.blog_snapshot(blog.pk)),
    })


@xframe_options_exempt  # the CSP's frame-ancestors says who may frame it, per blog
@require_safe
def blog_embed(request: HttpRequest, slug: str) -> HttpResponse:
    """The live feed without the site's chrome, for other sites' article pages. Rendered for
    nobody: whoever is signed in here, the page around it is someone else's."""
    blog = _blog_or_404(slug)
    request.user = AnonymousUser()
    response = render(request, "liveblog/embed.html", {
        "blog": blog,
        "reader_url": request.build_absolute_uri(reverse("blog-reader", args=[blog.slug])),
        "embed_origins": list(blog.embed_origins),
        **_feed_context(selectors.blog_snapshot(blog.pk)),
    })
    response._csp_replace = {"frame-ancestors": embedding.frame_ancestors(blog)}
    return response


# Its URL never changes (it is in other sites' pages), so browsers revalidate it hourly.
EMBED_SCRIPT_MAX_AGE = 3600


@require_safe
def embed_script(request: HttpRequest) -> HttpResponse:
    """/embed.js, at a URL that stays the same for ever (static files' names change)."""
    response = HttpResponse(_embed_script_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={EMBED_SCRIPT_MAX_AGE}"
    # Loaded by other sites' pages, including ones that require it (COEP).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@cache
def _embed_script_source() -> str:
    with open(finders.find("liveblog/embed.js"), encoding="utf-8") as source:
        return source.read()
