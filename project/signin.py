"""Sign-in lockout with django-axes: the site's login and the admin's, counted in the database.

axes compares one failure count (the largest over its lockout parameters) with one limit. Our
parameters are the (username, address) pair and the address, with a much higher limit for the
address (settings.py says why), so the handler reports the address's failures scaled to the
pair's limit. The lockout answer is the sign-in page again, with a message and status 429.
"""

from __future__ import annotations

import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext


def _failures(attempts: QuerySet) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class LockoutHandler(AxesDatabaseHandler):
    """Locks the pair at AXES_FAILURE_LIMIT failures, the address at
    LIVEBLOG_SIGNIN_ADDRESS_FAILURES (both within the cool-off)."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        pair, address = (_failures(qs) for qs in self.get_user_attempts(request, credentials))
        if address >= settings.LIVEBLOG_SIGNIN_ADDRESS_FAILURES:
            return max(pair, settings.AXES_FAILURE_LIMIT)
        return pair


def lockout_message(request: HttpRequest) -> str:
    cool_off = get_cool_off(request)
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else None
    if minutes is None:
        return gettext("Too many failed sign-ins. Ask an administrator to unlock your account.")
    return ngettext(
        "Too many failed sign-ins. Try again in %(minutes)d minute.",
        "Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes,
    ) % {"minutes": minutes}


def lockout_response(request: HttpRequest, *_args: Any, **_kwargs: Any) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE, for the site's sign-in and the admin's alike. (axes 8.3.1 passes
    different arguments from its sync and async middleware paths; none are needed here.)"""
    return render(request, "registration/login.html", {
        "form": AuthenticationForm(request),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "lockout": lockout_message(request),
    }, status=429)
