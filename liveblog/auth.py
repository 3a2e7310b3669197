"""Who is on a websocket: the Django user of the session cookie, looked up only when needed."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils.module_loading import import_string


def _session_key(scope: dict) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    return None


def user_of(scope: dict) -> Any:
    """The signed-in user of the connection's session (checked as Django checks a request:
    the session must exist and its auth hash match), or AnonymousUser. It reads the database:
    call it in the database thread."""
    key = _session_key(scope)
    if not key:
        return AnonymousUser()
    request = HttpRequest()
    request.session = import_string(settings.SESSION_ENGINE + ".SessionStore")(key)
    return get_user(request)
