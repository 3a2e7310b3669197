"""The installable app: web app manifest, service worker (served from the site root, so that its
scope is the whole site) and the offline page."""

import json

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_safe

from project.media import same_origin_media_prefix

from .shell import author_shell, shell

THEME_COLOR = "#b3122e"
BACKGROUND_COLOR = "#f5f6f8"


@require_GET
@cache_control(max_age=3600, public=True)
def manifest(request: HttpRequest) -> HttpResponse:
    def icon(name: str, size: int, purpose: str = "any") -> dict:
        return {"src": staticfiles_storage.url(f"pwa/{name}"), "sizes": f"{size}x{size}",
                "type": "image/png", "purpose": purpose}

    data = {
        "id": "/",
        "name": "Liveblog",
        "short_name": "Liveblog",
        "description": "Live coverage as it happens: every update the moment it is posted, "
                       "readable offline.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            icon("icon-192.png", 192),
            icon("icon-512.png", 512),
            icon("icon-maskable-512.png", 512, "maskable"),
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


@require_GET
@cache_control(no_cache=True, max_age=0)
def service_worker(request: HttpRequest) -> HttpResponse:
    """Never cached by HTTP: a browser checks this URL for a new version on every visit."""
    urls, version = shell()
    response = render(
        request, "pwa/sw.js",
        {
            "version_json": json.dumps(version),
            "precache_json": json.dumps(list(urls)),
            "author_precache_json": json.dumps(list(author_shell())),
            "indexeddb_json": json.dumps(staticfiles_storage.url("liveblog/indexeddb.js")),
            "outbox_core_json": json.dumps(staticfiles_storage.url("liveblog/outbox-core.js")),
            "photo_cache_json": json.dumps(staticfiles_storage.url("liveblog/photo-cache.js")),
            "push_core_json": json.dumps(staticfiles_storage.url("liveblog/push-core.js")),
            "notification_icons_json": json.dumps({
                "icon": staticfiles_storage.url("pwa/icon-192.png"),
                "badge": staticfiles_storage.url("pwa/badge-96.png"),
            }),
            "photos_json": json.dumps({
                "prefix": same_origin_media_prefix(),
                "maxPhotos": settings.LIVEBLOG_OFFLINE_PHOTOS,
                "maxBytes": settings.LIVEBLOG_OFFLINE_PHOTO_BYTES,
            }),
            "sign_out_json": json.dumps(reverse("logout")),
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Service-Worker-Allowed"] = "/"
    return response


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask /favicon.ico of pages that name no icon (the admin's)."""
    return HttpResponseRedirect(staticfiles_storage.url("pwa/favicon-32.png"))


def offline(request: HttpRequest) -> HttpResponse:
    """Precached once and shown to whoever holds the phone: rendered for nobody (no name, no
    sign-out form with a CSRF token in its header)."""
    request.user = AnonymousUser()
    return render(request, "pwa/offline.html")
