"""The reader's language: the middleware that picks it, and the browser's catalog for it.

The language comes from the language cookie (the switch in every page's footer posts to Django's
`set_language`, which sets it), else from the browser's Accept-Language, else English. Pages
therefore vary on both headers. The browser modules' strings (the `djangojs` catalog) travel in
the page itself, as a JSON script element (`#i18n-catalog`, read by static/liveblog/i18n.js): no
script to run under the CSP, nothing more to fetch, and cached with the page by the service
worker, so an offline copy still speaks its language.
"""

import gettext
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware import locale
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language


class LocaleMiddleware(locale.LocaleMiddleware):
    """Django's, which activates the request's language. Pages (HTML) say theirs
    (Content-Language, which the service worker reads) and vary on Accept-Language and on the
    language cookie: a cache must not give a reader who chose Spanish the English copy. Nothing
    else is translated (the API, feeds, photos, the manifest), so nothing else varies: photos
    and feeds stay cacheable by anyone."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        response = super().process_response(request, response)
        patch_vary_headers(response, ("Cookie",))
        return response


@lru_cache(maxsize=8)
def _catalog(language: str) -> dict[str, str | list[str]]:
    """The djangojs translations of one language ({} for English, the source): msgid ->
    text, or the list of plural forms in the catalog's order (i18n.js picks one with
    Intl.PluralRules)."""
    if language == "en":
        return {}
    try:  # ours only (not the admin's djangojs strings)
        found = gettext.translation("djangojs", settings.LOCALE_PATHS[0], languages=[language])
    except OSError:  # not compiled (yet): the page falls back to English
        return {}
    catalog: dict[str, str | list[str]] = {}
    plurals: dict[str, dict[int, str]] = {}
    for key, text in found._catalog.items():
        if isinstance(key, tuple):  # (msgid, plural index)
            plurals.setdefault(key[0], {})[key[1]] = text
        elif key and text:  # "" is the header
            catalog[key] = text
    for msgid, forms in plurals.items():
        catalog[msgid] = [forms[index] for index in sorted(forms)]
    return catalog


def js_catalog(request: HttpRequest) -> dict:
    """Template context: `js_catalog` for the page's language (base.html puts it in the page)."""
    return {"js_catalog": _catalog(translation.get_language() or "en")}


# The switch is a plain form on every page, and these pages are cached for offline reading (a
# CSRF token does not belong in them). What a forged post could do is set someone's language.
set_language_view: Callable[[HttpRequest], HttpResponse] = csrf_exempt(set_language)
