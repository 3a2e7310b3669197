"""Uploaded media (photos in posts) served by Django itself: the embedded default.

In production the web server or object storage serves MEDIA_URL instead, and
LIVEBLOG_SERVE_MEDIA=false leaves it out of the URLs.
"""

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.views.decorators.http import require_safe
from django.views.static import serve

# Photo file names are unique (a random stem per photo) and never rewritten: a year, immutable.
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"
# A photo asked for by the desk (`?desk=1`, static/liveblog/desk-view.js) may belong to a post
# not published yet: kept nowhere on the device, so a shared phone's next user cannot find it.
DESK_MEDIA_CACHE_CONTROL = "private, no-store"


@require_safe
def media_file(request: HttpRequest, path: str) -> HttpResponse:
    # MEDIA_ROOT is read per request, not captured with the URL pattern.
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    desk = "desk" in request.GET
    response["Cache-Control"] = DESK_MEDIA_CACHE_CONTROL if desk else MEDIA_CACHE_CONTROL
    return response


def same_origin_media_prefix() -> str | None:
    """MEDIA_URL as "/<path>/" when it is a path below the site's root; None for a MEDIA_URL
    on another host (or "/", which would be the whole site)."""
    prefix = settings.MEDIA_URL
    if not prefix.startswith("/") or prefix.startswith("//"):
        return None
    path = prefix.strip("/")
    return f"/{path}/" if path else None


def media_urlpatterns() -> list[URLPattern]:
    """The MEDIA_URL route when Django serves media: only for a local path below the root
    (a MEDIA_URL on another host, or "/", is not Django's to serve)."""
    prefix = same_origin_media_prefix()
    if not settings.LIVEBLOG_SERVE_MEDIA or prefix is None:
        return []
    return [re_path(rf"^{re.escape(prefix.strip('/'))}/(?P<path>.+)$", media_file, name="media")]
