"""`{% inline_static "liveblog/app.css" %}`: a collected static file's text, for a page that must
paint from its first response. On a slow network every request costs a round trip (2 s on Slow
3G), and a render-blocking stylesheet is a second one before anything shows; inlined, the
reader page's first posts paint as its HTML arrives (bench `page`, README "Performance")."""

from functools import lru_cache

from django import template
from django.contrib.staticfiles.storage import staticfiles_storage
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@lru_cache(maxsize=8)
def _text(hashed_name: str) -> str:
    with staticfiles_storage.open(hashed_name) as file:
        return file.read().decode()


@register.simple_tag
def inline_static(name: str) -> SafeString:
    """The file's content (our own stylesheet: trusted, never user input). Read once per process
    and hashed name: a deploy that changes the file changes its name, and restarts the server."""
    return mark_safe(_text(staticfiles_storage.stored_name(name)))  # noqa: S308 - our own file

