"""JSON HTTP API: decode the request, call one selector or service, encode the answer.

Errors are JSON `{"error": code, "detail": text}` with a 4xx status, mapped from the app's
exceptions in one place (`api_view`). Session auth; CSRF is enforced for signed-in writers (an
anonymous write is answered 401, as there is no session to forge). Posts are created from JSON,
or from multipart/form-data when a photo comes along.
"""

import math
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, RawPostDataException, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from project.proxies import client_address

from .. import embedding, openapi, protocol, selectors, services, throttle
from ..errors import (
    Invalid,
    LiveblogError,
    NotAllowed,
    NotAuthenticated,
    NotJson,
    TooLarge,
)
from ..permissions import can_manage_blog, can_revise_submission, role_of
from ..push import vapid

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# A write may be this much larger than the largest photo: room for the other form fields and
# the multipart framing.
REQUEST_OVERHEAD_BYTES = 1024 * 1024
POST_FIELDS = {"client_id", "body", "key_event", "pinned", "publish_at"}
EVENTS_PER_UNIT = 50
USER_HEADER = "X-Liveblog-User"


def raw_json(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="application/json")


def json_response(data: dict, status: int = 200) -> HttpResponse:
    return raw_json(protocol.encode(data), status=status)


def error_response(status: int, code: str, detail: str) -> HttpResponse:
    return json_response({"error": code, "detail": detail}, status=status)


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def _enforce_csrf(request: HttpRequest) -> None:
    check = _CsrfCheck(lambda _request: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise NotAllowed(f"CSRF check failed: {reason}", code="csrf_failed")


def api_view(*methods: str, cost: Callable[[HttpRequest], int] | None = None,
             readers_write: bool = False) -> Callable:
    """Allowed methods, throttles, CSRF for signed-in writes, and app errors as JSON.
    `cost` weighs a request in its throttle (default 1). `readers_write`: its writes are
    anyone's (push subscriptions), checked by `_reader_write_checks` instead."""
    allowed = set(methods) | {"HEAD"} if "GET" in methods else set(methods)

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(
                    405, "method_not_allowed", f"{request.method} is not allowed here"
                )
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            reader_write = readers_write and request.method not in SAFE_METHODS
            charged = cost(request) if cost else 1
            if wait := (_throttle_reader_write(request) if reader_write
                        else _throttle(request, charged)):
                return _rate_limited(wait)
            try:
                if reader_write:
                    _reader_write_checks(request)
                elif request.method not in SAFE_METHODS:
                    if not request.user.is_authenticated:
                        raise NotAuthenticated("sign in to write")
                    _refuse_oversized(request)
                    _parse_form(request)
                    _enforce_csrf(request)
                    _refuse_other_user(request)
                return view(request, *args, **kwargs)
            except LiveblogError as error:
                return error_response(error.status, error.code, error.detail)

        wrapper.allowed_methods = frozenset(allowed)  # for the OpenAPI completeness test
        return wrapper

    return decorate


# A push subscription is a few hundred bytes; nothing a reader writes comes near this.
READER_WRITE_MAX_BYTES = 4096


def _reader_write_checks(request: HttpRequest) -> None:
    """A write anyone may make (push subscriptions): it uses no session, so there is no CSRF
    token to check. Instead it must be JSON (a page elsewhere can post a form, but can send
    JSON only after a CORS preflight this site never grants) and, when the browser names its
    origin, from this site (or CSRF_TRUSTED_ORIGINS)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > READER_WRITE_MAX_BYTES:
        raise TooLarge(f"request body is larger than {READER_WRITE_MAX_BYTES} bytes")
    if request.content_type != "application/json":
        raise NotJson("send the body as application/json")
    if "HTTP_ORIGIN" in request.META and not _CsrfCheck(
            lambda _request: None)._origin_verified(request):
        raise NotAllowed("this request comes from another site", code="csrf_failed")


def _throttle_reader_write(request: HttpRequest) -> int:
    """Readers' writes per client address, whoever is signed in."""
    return throttle.charge("push", client_address(request) or "unknown",
                           throttle.Rate.parse(settings.LIVEBLOG_THROTTLE_PUSH))


def _refuse_other_user(request: HttpRequest) -> None:
    """A write that names its user (`X-Liveblog-User`, sent by the outbox) is refused unless
    that user is the one signed in now: on a shared phone, a queued post never goes out under
    the name of whoever signed in after its author."""
    claimed = request.headers.get(USER_HEADER)
    if claimed is not None and claimed != str(request.user.pk):
        raise NotAllowed("this was written by another user than the one signed in",
                         code="wrong_user")


def _throttle(request: HttpRequest, cost: int) -> int:
    """Writes per signed-in user, reads per signed-in user, anything anonymous per client
    address (project/proxies.py); 0 to go on, else the seconds to wait."""
    if request.user.is_authenticated:
        write = request.method not in SAFE_METHODS
        bucket = "write" if write else "user-read"
        rate = settings.LIVEBLOG_THROTTLE_WRITES if write else settings.LIVEBLOG_THROTTLE_USER_READS
        key = str(request.user.pk)
    else:
        bucket, rate = "anon", settings.LIVEBLOG_THROTTLE_ANON_READS
        key = client_address(request) or "unknown"
    return throttle.charge(bucket, key, throttle.Rate.parse(rate), cost)


def _rate_limited(wait: int) -> HttpResponse:
    response = error_response(429, "rate_limited", f"too many requests; try again in {wait} s")
    response["Retry-After"] = str(wait)
    return response


def _refuse_oversized(request: HttpRequest) -> None:
    """Refuse a body larger than any acceptable write from its Content-Length, before any of
    it is parsed or stored in temporary files."""
    limit = settings.LIVEBLOG_MAX_PHOTO_BYTES + REQUEST_OVERHEAD_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # Django then reads no body at all
    if length > limit:
        raise TooLarge(f"request body is larger than {limit / (1024 * 1024):g} MiB")


def _parse_form(request: HttpRequest) -> None:
    """Parse a form body now (the CSRF check reads request.POST), so that a malformed or
    oversized one is answered with a JSON error rather than a server error."""
    try:
        request.POST  # noqa: B018 - parsed on first access
    except RequestDataTooBig:
        raise TooLarge("request body is too large") from None
    except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent, UnreadablePostError):
        raise Invalid("request body is not a valid form", code="bad_form") from None


def form_body(
    request: HttpRequest, *, fields: set[str], files: set[str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """A multipart form's text fields and files, each given at most once; unknown fields are
    refused, as in json_body. An empty text field in place of a file means no file."""
    text = {name: _single(request.POST, name) for name in request.POST}
    uploads = {name: _single(request.FILES, name) for name in request.FILES}
    for name in files & set(text):
        if text.pop(name):
            raise Invalid(f"{name} must be a file")
    unknown = sorted((set(text) - fields) | (set(uploads) - files))
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    return text, uploads


def _single(values: Any, name: str) -> Any:
    found = values.getlist(name)
    if len(found) != 1:
        raise Invalid(f"{name} must be given once")
    return found[0]


def _raw_body(request: HttpRequest) -> bytes:
    try:
        return request.body
    except RequestDataTooBig:
        raise TooLarge("request body is too large") from None
    except RawPostDataException:  # a form, already parsed (and read) for the CSRF check
        raise Invalid("request body must be a JSON object", code="bad_json") from None


def json_body(request: HttpRequest, *, fields: set[str]) -> dict:
    """The request's JSON object; unknown fields are refused rather than silently ignored."""
    data = protocol.decode_json(_raw_body(request) or b"null", "request body")
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object", code="bad_json")
    unknown = sorted(set(data) - fields)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    return data


def query_int(request: HttpRequest, name: str, *, default: int | None, minimum: int = 0) -> Any:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    return protocol.int_param(raw, name, minimum=minimum)


# --- Blogs ------------------------------------------------------------------------------------


@api_view("GET", "POST")
def blogs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        data = json_body(request, fields={"slug", "title", "description"})
        blog = services.blog_create(
            actor=request.user,
            slug=data.get("slug"),
            title=data.get("title"),
            description=data.get("description") or "",
        )
        return json_response(protocol.blog_json(blog), status=201)
    return json_response({"blogs": [protocol.blog_json(blog) for blog in selectors.blog_list()]})


def _blog_answer(request: HttpRequest, blog) -> dict:
    """The blog as readers see it; its owner and staff also see the origins allowed to embed
    it (a newsroom's list of partner sites is not for everyone)."""
    data = protocol.blog_json(blog)
    if can_manage_blog(request.user, blog):
        data["embed_origins"] = list(blog.embed_origins)
    return data


@api_view("GET", "PATCH")
def blog_detail(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "PATCH":
        blog_id = selectors.blog_id(slug)
        data = json_body(request, fields={"title", "description", "status", "embed_origins"})
        written = services.blog_update(
            actor=request.user,
            blog_id=blog_id,
            title=protocol.optional(data, "title", protocol.as_text),
            description=protocol.optional(data, "description", protocol.as_text),
            status=protocol.optional(data, "status", protocol.as_text),
            embed_origins=data.get("embed_origins"),
        )
        return json_response(
            {"seq": written.seq, "blog": _blog_answer(request, selectors.blog_get(slug))}
        )
    return json_response(_blog_answer(request, selectors.blog_get(slug)))


# --- Posts ------------------------------------------------------------------------------------


@api_view("GET", "POST")
def posts(request: HttpRequest, slug: str) -> HttpResponse:
    blog_id = selectors.blog_id(slug)
    if request.method == "POST":
        fields = _new_post(request)
        written = services.post_create(
            actor=request.user,
            blog_id=blog_id,
            client_id=fields.client_id,
            body=fields.body,
            key_event=fields.key_event,
            pinned=fields.pinned,
            photo=fields.photo,
            photo_alt=fields.photo_alt,
            publish_at=fields.publish_at,
        )
        return written_response(written, status=201 if written.created else 200)
    page = selectors.posts_page(
        blog_id,
        before=query_int(request, "before", default=None, minimum=1),
        limit=query_int(request, "limit", default=selectors.POSTS_PAGE_DEFAULT, minimum=1),
    )
    return json_response(protocol.posts_page_json(
        epoch=page.epoch, head=page.head, posts=page.posts, next_before=page.next_before
    ))


def _new_post(request: HttpRequest) -> protocol.PostRequest:
    if request.content_type == "multipart/form-data":
        text, uploads = form_body(request, fields=POST_FIELDS | {"photo_alt"}, files={"photo"})
        return protocol.parse_post_form(text, uploads.get("photo"))
    return protocol.parse_post_fields(json_body(request, fields=POST_FIELDS))


@api_view("PATCH", "DELETE")
def post_detail(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    blog_id = selectors.blog_id(slug)
    if request.method == "DELETE":
        written = services.post_delete(actor=request.user, blog_id=blog_id, post_id=post_id)
    else:
        data = json_body(request, fields={"body", "pinned", "key_event"})
        written = services.post_update(
            actor=request.user,
            blog_id=blog_id,
            post_id=post_id,
            body=protocol.optional(data, "body", protocol.as_text),
            pinned=protocol.optional(data, "pinned", protocol.as_bool),
            key_event=protocol.optional(data, "key_event", protocol.as_bool),
        )
    return json_response({"seq": written.seq, "post": written.data})


def written_response(written: services.Written, *, status: int = 200) -> HttpResponse:
    """`{"seq", "post"}`; 202 when what was written went to the desk (a submission: waiting
    for an editor, or scheduled), whatever the status of a public write would be."""
    if written.desk:
        return desk_response({"seq": written.seq, "post": written.data}, status=202)
    return json_response({"seq": written.seq, "post": written.data}, status=status)


def desk_response(data: dict, status: int = 200) -> HttpResponse:
    """An answer that carries the desk (unpublished text, notes, who writes for the blog):
    kept by no cache, shared or the browser's own — the next user of a shared phone or a
    proxy in front of the site must not find it."""
    response = json_response(data, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _events_cost(request: HttpRequest) -> int:
    """One unit per 50 events asked for: `limit=1000` (a full catch-up) weighs 20 page loads."""
    try:
        limit = int(request.GET.get("limit") or selectors.EVENTS_PAGE_DEFAULT)
    except ValueError:
        return 1  # refused by the view
    return max(1, math.ceil(min(limit, selectors.EVENTS_PAGE_MAX) / EVENTS_PER_UNIT))


@api_view("GET", cost=_events_cost)
def events(request: HttpRequest, slug: str) -> HttpResponse:
    """The log after `since`, or a snapshot when the client must start over."""
    blog_id = selectors.blog_id(slug)
    since = query_int(request, "since", default=None)
    if since is None:
        raise Invalid("since is required")
    limit = query_int(request, "limit", default=selectors.EVENTS_PAGE_DEFAULT, minimum=1)
    if limit > selectors.EVENTS_PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {selectors.EVENTS_PAGE_MAX}")
    page = selectors.events_page(
        blog_id, since=since, epoch=request.GET.get("epoch") or None, limit=limit
    )
    if isinstance(page, selectors.PostsPage):
        return json_response(protocol.snapshot_json(page))
    return raw_json(protocol.events_answer(epoch=page.epoch, head=page.head, frames=page.frames))


# --- The desk ---------------------------------------------------------------------------------


def _signed_in_role(request: HttpRequest, slug: str) -> tuple[Any, str]:
    """The blog and the caller's role on it: 401 anonymous, 403 for someone who does not
    write for it. Desk reads are never public, unlike the blog's own reads."""
    blog = selectors.blog_get(slug)
    if not request.user.is_authenticated:
        raise NotAuthenticated("sign in to see the desk")
    role = role_of(request.user, blog)
    if role is None:
        raise NotAllowed("you are not an author of this blog")
    return blog, role


@api_view("GET")
def desk(request: HttpRequest, slug: str) -> HttpResponse:
    """The caller's desk: every submission for an editor, their own for a contributor, with
    the head of that desk log (the desk websocket's snapshot, without `type`)."""
    blog, role = _signed_in_role(request, slug)
    snapshot = selectors.desk_snapshot(blog.pk, selectors.desk_audience(role, request.user.pk))
    return desk_response({"role": role, "epoch": snapshot.epoch, "head": snapshot.head,
                          "submissions": snapshot.submissions})


SUBMISSION_FIELDS = {"body", "key_event", "pinned"}


def _changes(data: dict) -> dict:
    return {
        "body": protocol.optional(data, "body", protocol.as_text),
        "key_event": protocol.optional(data, "key_event", protocol.as_bool),
        "pinned": protocol.optional(data, "pinned", protocol.as_bool),
    }


@api_view("GET", "PATCH", "DELETE")
def submission_detail(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """A submission: read it, revise or edit it, withdraw it (its author, editors)."""
    if request.method == "GET":
        blog, _role = _signed_in_role(request, slug)
        submission = selectors.submission_get(blog.pk, submission_id)
        if not can_revise_submission(request.user, blog, submission):
            raise NotAllowed("only its author and the blog's editors see a submission")
        return desk_response({"seq": None, "post": protocol.submission_json(submission)})
    blog_id = selectors.blog_id(slug)
    if request.method == "DELETE":
        written = services.submission_withdraw(
            actor=request.user, blog_id=blog_id, submission_id=submission_id
        )
    else:
        data = json_body(request, fields=SUBMISSION_FIELDS)
        written = services.submission_revise(
            actor=request.user, blog_id=blog_id, submission_id=submission_id, **_changes(data)
        )
    return desk_response({"seq": None, "post": written.data})


@api_view("POST")
def submission_publish(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """Publish a submission now (200 with its seq and the public post), or at `publish_at`
    (202 with the scheduled submission); editors' changes may come along."""
    blog_id = selectors.blog_id(slug)
    # No body at all: publish it as it is (the one-tap Publish button).
    data = json_body(request, fields=SUBMISSION_FIELDS | {"publish_at"}) if _has_body(
        request) else {}
    written = services.submission_publish(
        actor=request.user, blog_id=blog_id, submission_id=submission_id, **_changes(data),
        publish_at=protocol.optional(data, "publish_at", protocol.as_time),
    )
    return written_response(written, status=200)


def _has_body(request: HttpRequest) -> bool:
    try:
        return bool(request.body)
    except RawPostDataException:
        return True  # a form: json_body refuses it
    except RequestDataTooBig:
        raise TooLarge("request body is too large") from None


@api_view("POST")
def submission_return(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    """Send a submission back to its author with a note (editors)."""
    blog_id = selectors.blog_id(slug)
    data = json_body(request, fields={"note"})
    if "note" not in data:
        raise Invalid("note is required: tell the author what to change")
    written = services.submission_return(
        actor=request.user, blog_id=blog_id, submission_id=submission_id, note=data["note"],
    )
    return desk_response({"seq": None, "post": written.data})


# --- The desk: who writes for a blog ----------------------------------------------------------


def _managed_blog(request: HttpRequest, slug: str) -> Any:
    blog = selectors.blog_get(slug)
    if not request.user.is_authenticated:
        raise NotAuthenticated("sign in to see who writes for this blog")
    if not can_manage_blog(request.user, blog):
        raise NotAllowed("only the blog's owner or staff see who writes for it")
    return blog


@api_view("GET")
def members(request: HttpRequest, slug: str) -> HttpResponse:
    blog = _managed_blog(request, slug)
    return desk_response({"members": [
        protocol.member_json(user, role) for user, role in selectors.blog_members(blog.pk)
    ]})


@api_view("PUT", "DELETE")
def member_detail(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    """Give someone a role (`{"role": "editor" | "contributor"}`), or take them off (204)."""
    # Refused before the account is looked up: nobody else learns which usernames exist. The
    # service checks again, against the blog row it locks.
    blog = _managed_blog(request, slug)
    if request.method == "DELETE":
        user = selectors.user_by_username(username)
        services.member_remove(actor=request.user, blog_id=blog.pk, user=user)
        return HttpResponse(status=204)
    data = json_body(request, fields={"role"})
    if "role" not in data:
        raise Invalid("role is required")
    role = protocol.as_text(data["role"], "role")
    user = selectors.user_by_username(username)
    return desk_response(
        services.member_set(actor=request.user, blog_id=blog.pk, user=user, role=role)
    )


# --- Web Push ---------------------------------------------------------------------------------

PUSH_KEY_MAX_AGE_SECONDS = 300


@api_view("GET")
def push_key(request: HttpRequest) -> HttpResponse:
    """The VAPID public key browsers subscribe with."""
    response = json_response({"key": vapid.public_key()})
    response["Cache-Control"] = f"public, max-age={PUSH_KEY_MAX_AGE_SECONDS}"
    return response


@api_view("POST", "DELETE", readers_write=True)
def push_subscription(request: HttpRequest, slug: str) -> HttpResponse:
    """Subscribe a browser to the blog's key events (its `PushSubscription.toJSON()`), or
    unsubscribe it (`{"endpoint"}`). Anyone may: readers are not signed in."""
    blog_id = selectors.blog_id(slug)
    if request.method == "DELETE":
        data = json_body(request, fields={"endpoint"})
        services.push_unsubscribe(blog_id=blog_id, endpoint=data.get("endpoint"))
        return desk_response({"subscribed": False})
    data = json_body(request, fields={"endpoint", "keys", "expirationTime"})
    created = services.push_subscribe(blog_id=blog_id, subscription=data,
                                      address=client_address(request))
    return desk_response({"subscribed": True}, status=201 if created else 200)


# --- The OpenAPI document -----------------------------------------------------------------------

OPENAPI_MAX_AGE_SECONDS = 3600


@api_view("GET")
def oembed(request: HttpRequest) -> HttpResponse:
    """oEmbed 1.0 for a reader page URL: a `rich` answer with the embed's HTML."""
    asked = embedding.oembed_request(
        request.GET.get("url"),
        request.GET.get("format"),
        query_int(request, "maxwidth", default=None, minimum=1),
        query_int(request, "maxheight", default=None, minimum=1),
    )
    return json_response(embedding.oembed(request, asked))


@api_view("GET")
def openapi_document(request: HttpRequest) -> HttpResponse:
    response = json_response(openapi.document())
    response["Cache-Control"] = f"public, max-age={OPENAPI_MAX_AGE_SECONDS}"
    return response


# --- Error pages that answer JSON under /api/ -------------------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return error_response(404, "not_found", "no such resource")
    return render(request, "404.html", status=404)


UNAVAILABLE_RETRY_SECONDS = 5


def server_error_handler(request: HttpRequest) -> HttpResponse:
    """Django's handler500, called while the exception is being handled. A database that cannot
    be reached (down, restarting, out of connections) is a 503 to retry, not a bug: the outbox
    and the browser retry either way, but monitoring and load balancers tell them apart."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = (error_response(503, "unavailable", "the database is unavailable; try again")
                    if _wants_json(request)
                    else render(request, "500.html", status=503))
        response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
        return response
    if _wants_json(request):
        return error_response(500, "server_error", "something went wrong on our side")
    return render(request, "500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _wants_json(request):
        return error_response(403, "csrf_failed", f"CSRF check failed: {reason}")
    return render(request, "403_csrf.html", {"reason": reason}, status=403)

