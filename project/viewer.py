"""Who each page was rendered for, told to the service worker, and signing out on a shared device.

A phone is shared: the service worker must never show one person's page to the next. Every HTML
response says whom it was rendered for (`X-Liveblog-Viewer`: the user's id, or `anonymous`), and
a page rendered for a signed-in user is `Cache-Control: private`. The worker keeps a signed-in
user's pages in that user's own cache, the public pages cache holds only anonymous, non-private
pages, and when a response names another viewer the previous user's cache is deleted
(templates/pwa/sw.js).
"""

from collections.abc import Callable

from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

VIEWER_HEADER = "X-Liveblog-Viewer"
ANONYMOUS = "anonymous"


def viewer_key(user) -> str:
    """The id the browser's caches and outbox tie a signed-in user's data to."""
    return str(user.pk) if user.is_authenticated else ANONYMOUS


class ViewerMiddleware:
    """Marks HTML responses with their viewer, and a signed-in user's pages private."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not response.get("Content-Type", "").startswith("text/html"):
            return response
        response[VIEWER_HEADER] = viewer_key(user)
        if user.is_authenticated:
            patch_cache_control(response, private=True)
        return response


class SignOutView(LogoutView):
    """Django's sign-out, and the browser's HTTP cache of this site emptied with it (pages the
    Back button or a slow network could show the next person). The service worker's caches and
    the outbox are the page's and the worker's to clear (static/liveblog/sign-out.js): the
    "storage" directive would also wipe the public offline copy and the outbox entries a user
    chose to keep."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache"'
        return response
