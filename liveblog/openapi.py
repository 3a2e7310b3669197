"""The OpenAPI 3.1 document of the JSON API, served at /api/openapi.json.

Hand-maintained next to the views it describes; limits come from the same constants and
settings the code enforces. Tests check it with openapi-spec-validator, check that every /api/
URL pattern is in it, and fuzz a real daphne against it with Schemathesis
(tests/test_openapi.py): change it with the views.
"""

from functools import cache
from typing import Any

from django.conf import settings

from . import selectors
from .embedding import URL_MAX_CHARS
from .models import Blog, Event, Membership, PushSubscription, Submission, SubmissionAction
from .protocol import ISO_TIME_MAX_CHARS
from .services import EMBED_ORIGINS_MAX, NOTE_MAX_CHARS, PHOTO_ALT_MAX_CHARS

# Every `error` code an API answer can carry (websocket-only codes are not listed).
ERROR_CODES = [
    "invalid", "bad_json", "bad_form", "too_long", "not_authenticated", "forbidden",
    "csrf_failed", "wrong_user", "not_found", "method_not_allowed", "conflict", "too_large",
    "rate_limited", "unavailable", "server_error", "not_implemented",
    "unsupported_media_type", "endpoint_refused", "too_many_subscriptions", "subscriptions_full",
]
# The most digits a query integer may have (protocol.int_param).
QUERY_INT_MAX = 10**18 - 1
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _written(field: str, schema: str) -> dict:
    """A write's answer: its seq (null when it changed nothing) and what it wrote."""
    return {
        "type": "object", "additionalProperties": False, "required": ["seq", field],
        "properties": {
            "seq": _nullable({"type": "integer", "minimum": 1}),
            field: _ref(schema),
        },
    }


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _answer(description: str, schema: dict) -> dict:
    return {"description": description, "content": _json(schema)}


def _error(description: str) -> dict:
    return {"$ref": f"#/components/responses/{description}"}


def _query_int(name: str, description: str, *, minimum: int, maximum: int = QUERY_INT_MAX,
               required: bool = False, default: int | None = None) -> dict:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


SLUG = {"name": "slug", "in": "path", "required": True, "description": "The blog's slug.",
        "schema": {"type": "string", "pattern": SLUG_PATTERN, "maxLength": 80}}
POST_ID = {"name": "post_id", "in": "path", "required": True, "description": "The post's id.",
           "schema": {"type": "integer", "minimum": 0, "maximum": QUERY_INT_MAX}}
SUBMISSION_ID = {"name": "submission_id", "in": "path", "required": True,
                 "description": "The submission's id (the `post.id` of a 202 answer).",
                 "schema": {"type": "integer", "minimum": 0, "maximum": QUERY_INT_MAX}}
USERNAME = {"name": "username", "in": "path", "required": True,
            "description": "The account's username.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 150,
                       "pattern": r"^[^/]+$"}}
WRITER = [{"sessionCookie": [], "csrfToken": []}]
# Desk reads: a signed-in member (no CSRF token: nothing changes).
SIGNED_IN = [{"sessionCookie": []}]
# Sent by the author's outbox: a write queued by one user never goes out as another.
WRITER_USER = {"name": "X-Liveblog-User", "in": "header", "required": False,
               "description": "The id of the user who wrote this; if given and not the signed-in "
                              "user's, the write is refused with 403 `wrong_user`.",
               "schema": {"type": "string", "maxLength": 40}}
ANYONE: list = [{}]


def _read(operation_id: str, summary: str, ok: dict, *, params: list, blog: bool = True) -> dict:
    responses = {"200": ok}
    if any(param["in"] == "query" for param in params):
        responses["400"] = _error("BadRequest")
    if blog:
        responses["404"] = _error("NotFound")
    return {"operationId": operation_id, "summary": summary, "security": ANYONE,
            "parameters": params, "responses": {**responses, **_common()}}


def _desk_read(operation_id: str, summary: str, ok: dict, *, params: list) -> dict:
    """A read that is never public: 401 anonymous, 403 for those it is not for."""
    return {"operationId": operation_id, "summary": summary, "security": SIGNED_IN,
            "parameters": params,
            "responses": {"200": ok, "401": _error("NotAuthenticated"),
                          "403": _error("Forbidden"), "404": _error("NotFound"), **_common()}}


def _write(operation_id: str, summary: str, body: dict | None, ok: dict[str, dict], *,
           params: list, extra: dict | None = None) -> dict:
    found = {"404": _error("NotFound")} if params else {}
    operation = {
        "operationId": operation_id, "summary": summary, "security": WRITER,
        "parameters": params,
        "responses": {
            **ok, "400": _error("BadRequest"), "401": _error("NotAuthenticated"),
            "403": _error("Forbidden"), **found, "413": _error("TooLarge"),
            **(extra or {}), **_common(),
        },
    }
    if body:
        operation["requestBody"] = body
    return operation


def _common() -> dict:
    return {"405": _error("MethodNotAllowed"), "429": _error("RateLimited"),
            "503": _error("Unavailable")}


def _schemas() -> dict:
    iso_time = {"type": "string", "format": "date-time"}
    post_kinds = [Event.Kind.POST_CREATED.value, Event.Kind.POST_UPDATED.value]
    return {
        "Error": {
            "type": "object", "additionalProperties": False, "required": ["error", "detail"],
            "properties": {"error": {"type": "string", "enum": ERROR_CODES},
                           "detail": {"type": "string"}},
        },
        "Author": {
            "type": "object", "additionalProperties": False, "required": ["username", "name"],
            "properties": {"username": {"type": "string"}, "name": {"type": "string"}},
        },
        "Photo": {
            "type": "object", "additionalProperties": False,
            "required": ["src", "srcset", "width", "height", "alt"],
            "properties": {
                "src": {"type": "string", "description": "The variant nearest 1024 px wide."},
                "srcset": {"type": "string", "description": "Every variant: `URL 320w, …`."},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "alt": {"type": "string", "maxLength": PHOTO_ALT_MAX_CHARS},
            },
        },
        "Post": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "client_id", "author", "body", "html", "created_at", "edited_at",
                         "pinned", "key_event", "photo"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "client_id": {"type": "string", "format": "uuid"},
                "author": _ref("Author"),
                "body": {"type": "string", "description": "The Markdown source, as written."},
                "html": {"type": "string", "description": "Rendered and sanitized."},
                "created_at": iso_time,
                "edited_at": _nullable(iso_time),
                "pinned": {"type": "boolean"},
                "key_event": {"type": "boolean"},
                "photo": _nullable(_ref("Photo")),
            },
        },
        "DeletedPost": {
            "type": "object", "additionalProperties": False, "required": ["id", "deleted"],
            "properties": {"id": {"type": "integer", "minimum": 0}, "deleted": {"const": True}},
        },
        "Blog": {
            "type": "object", "additionalProperties": False,
            "required": ["slug", "title", "description", "status", "epoch", "head",
                         "created_at"],
            "properties": {
                "slug": {"type": "string", "pattern": SLUG_PATTERN},
                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": {"type": "string"},
                "status": {"type": "string", "enum": list(Blog.Status.values)},
                "epoch": {"type": "string", "minLength": 1},
                "head": {"type": "integer", "minimum": 0},
                "created_at": iso_time,
                "embed_origins": {
                    "type": "array", "maxItems": EMBED_ORIGINS_MAX,
                    "items": {"type": "string", "format": "uri"},
                    "description": "The origins allowed to embed the blog (its owner and "
                                   "staff only).",
                },
            },
        },
        "OEmbed": {
            "type": "object", "additionalProperties": False,
            "required": ["version", "type", "title", "provider_name", "provider_url", "html",
                         "width", "height"],
            "properties": {
                "version": {"const": "1.0"},
                "type": {"const": "rich"},
                "title": {"type": "string"},
                "provider_name": {"type": "string"},
                "provider_url": {"type": "string", "format": "uri"},
                "html": {"type": "string",
                         "description": "The embed's frame and the script that fits it."},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "thumbnail_url": {"type": "string", "format": "uri"},
                "thumbnail_width": {"type": "integer"},
                "thumbnail_height": {"type": "integer"},
                "cache_age": {"type": "integer"},
            },
        },
        "BlogList": {
            "type": "object", "additionalProperties": False, "required": ["blogs"],
            "properties": {"blogs": {"type": "array", "items": _ref("Blog")}},
        },
        "PostsPage": {
            "type": "object", "additionalProperties": False,
            "required": ["epoch", "head", "posts", "next_before"],
            "properties": {
                "epoch": {"type": "string"},
                "head": {"type": "integer", "minimum": 0},
                "posts": {"type": "array", "items": _ref("Post"),
                          "maxItems": selectors.POSTS_PAGE_MAX},
                "next_before": _nullable({"type": "integer", "minimum": 1}),
            },
        },
        "Event": {
            "description": "An event frame, exactly as the websocket sends it.",
            "oneOf": [
                _event({"kind": {"enum": post_kinds}, "post": _ref("Post")}),
                _event({"kind": {"const": Event.Kind.POST_DELETED.value},
                        "post": _ref("DeletedPost")}),
                _event({"kind": {"const": Event.Kind.BLOG_UPDATED.value}, "blog": _ref("Blog")}),
            ],
        },
        "EventsPage": {
            "type": "object", "additionalProperties": False,
            "required": ["epoch", "head", "events"],
            "properties": {
                "epoch": {"type": "string"},
                "head": {"type": "integer", "minimum": 0},
                "events": {"type": "array", "items": _ref("Event"),
                           "maxItems": selectors.EVENTS_PAGE_MAX},
            },
        },
        "Snapshot": {
            "description": "The websocket's snapshot frame: the blog and its newest posts "
                           "(plus pinned ones), read together.",
            "type": "object", "additionalProperties": False,
            "required": ["type", "epoch", "head", "posts", "blog", "next_before"],
            "properties": {
                "type": {"const": "snapshot"},
                "epoch": {"type": "string"},
                "head": {"type": "integer", "minimum": 0},
                "posts": {"type": "array", "items": _ref("Post")},
                "blog": _ref("Blog"),
                "next_before": _nullable({"type": "integer", "minimum": 1}),
            },
        },
        "SubmissionAction": {
            "type": "object", "additionalProperties": False,
            "required": ["action", "by", "at", "note"],
            "properties": {
                "action": {"type": "string", "enum": list(SubmissionAction.Action.values)},
                "by": _nullable(_ref("Author")),
                "at": iso_time,
                "note": {"type": "string", "maxLength": NOTE_MAX_CHARS},
            },
        },
        "Submission": {
            "description": "A post on the desk (never public): a contributor's, waiting for an "
                           "editor, or one scheduled. Only its author and the blog's editors "
                           "see it.",
            "type": "object", "additionalProperties": False,
            "required": ["id", "client_id", "author", "body", "html", "created_at",
                         "updated_at", "pinned", "key_event", "photo", "state", "note",
                         "publish_at", "post_id", "seq", "history"],
            "properties": {
                "id": {"type": "integer", "minimum": 1,
                       "description": "The submission's id (not the id of the post it "
                                      "becomes)."},
                "client_id": {"type": "string", "format": "uuid"},
                "author": _ref("Author"),
                "body": {"type": "string"},
                "html": {"type": "string"},
                "created_at": iso_time,
                "updated_at": iso_time,
                "pinned": {"type": "boolean"},
                "key_event": {"type": "boolean"},
                "photo": _nullable(_ref("Photo")),
                "state": {"type": "string", "enum": list(Submission.State.values)},
                "note": {"type": "string", "maxLength": NOTE_MAX_CHARS,
                         "description": "The editor's note when returned."},
                "publish_at": _nullable(iso_time),
                "post_id": _nullable({"type": "integer", "minimum": 1}),
                "seq": _nullable({"type": "integer", "minimum": 1}),
                "history": {"type": "array", "items": _ref("SubmissionAction")},
            },
        },
        "SubmissionWritten": {
            "type": "object", "additionalProperties": False, "required": ["seq", "post"],
            "properties": {"seq": {"type": "null"}, "post": _ref("Submission")},
        },
        "DeskSnapshot": {
            "description": "The caller's desk: every submission of the blog for its editors "
                           "and owner, their own for a contributor (open ones and the newest "
                           f"{selectors.DESK_DECIDED_SHOWN} decided, oldest first), with the "
                           "head of that desk log.",
            "type": "object", "additionalProperties": False,
            "required": ["role", "epoch", "head", "submissions"],
            "properties": {
                "role": {"type": "string", "enum": ["owner", *Membership.Role.values]},
                "epoch": {"type": "string"},
                "head": {"type": "integer", "minimum": 0},
                "submissions": {"type": "array", "items": _ref("Submission")},
            },
        },
        "Member": {
            "type": "object", "additionalProperties": False,
            "required": ["username", "name", "role"],
            "properties": {
                "username": {"type": "string"}, "name": {"type": "string"},
                "role": {"type": "string", "enum": ["owner", *Membership.Role.values]},
            },
        },
        "MemberList": {
            "type": "object", "additionalProperties": False, "required": ["members"],
            "properties": {"members": {"type": "array", "items": _ref("Member")}},
        },
        "MemberRole": {
            "type": "object", "additionalProperties": False, "required": ["role"],
            "properties": {"role": {"type": "string", "enum": list(Membership.Role.values)}},
        },
        "SubmissionChange": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "body": {"type": ["string", "null"],
                         "maxLength": settings.LIVEBLOG_MAX_BODY_CHARS},
                "pinned": {"type": ["boolean", "null"]},
                "key_event": {"type": ["boolean", "null"]},
            },
        },
        "SubmissionPublish": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "body": {"type": ["string", "null"],
                         "maxLength": settings.LIVEBLOG_MAX_BODY_CHARS},
                "pinned": {"type": ["boolean", "null"]},
                "key_event": {"type": ["boolean", "null"]},
                "publish_at": _publish_at(),
            },
        },
        "SubmissionReturn": {
            "type": "object", "additionalProperties": False, "required": ["note"],
            "properties": {"note": {"type": "string", "minLength": 1,
                                    "maxLength": NOTE_MAX_CHARS}},
        },
        "PostWritten": _written("post", "Post"),
        "PostDeleted": _written("post", "DeletedPost"),
        "BlogWritten": _written("blog", "Blog"),
        "NewPost": {
            "type": "object", "additionalProperties": False, "required": ["client_id", "body"],
            "properties": {
                "client_id": {"type": "string", "format": "uuid",
                              "description": "Made on the author's device; a known one "
                                             "returns the first answer (200)."},
                "body": {"type": "string", "minLength": 1,
                         "maxLength": settings.LIVEBLOG_MAX_BODY_CHARS,
                         "description": "Markdown; must not be blank."},
                "key_event": {"type": ["boolean", "null"]},
                "pinned": {"type": ["boolean", "null"]},
                "publish_at": _publish_at(),
            },
        },
        "NewPhotoPost": {
            "type": "object", "additionalProperties": False, "required": ["client_id"],
            "properties": {
                "client_id": {"type": "string", "format": "uuid"},
                "body": {"type": "string", "maxLength": settings.LIVEBLOG_MAX_BODY_CHARS,
                         "description": "May be empty when a photo comes along."},
                "key_event": {"type": "string", "enum": ["true", "false"]},
                "pinned": {"type": "string", "enum": ["true", "false"]},
                "photo": {
                    "type": "string", "contentMediaType": "application/octet-stream",
                    "description": "A JPEG, PNG, WebP or GIF (first frame) of at most "
                                   f"{settings.LIVEBLOG_MAX_PHOTO_BYTES} bytes (413 beyond) "
                                   f"and {settings.LIVEBLOG_MAX_PHOTO_PIXELS} pixels.",
                },
                "photo_alt": {"type": "string", "maxLength": PHOTO_ALT_MAX_CHARS,
                              "description": "Required with a photo."},
                "publish_at": {"type": "string", "maxLength": ISO_TIME_MAX_CHARS,
                               "description": "As in JSON; empty means now."},
            },
        },
        "PostChange": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "body": {"type": ["string", "null"],
                         "maxLength": settings.LIVEBLOG_MAX_BODY_CHARS},
                "pinned": {"type": ["boolean", "null"]},
                "key_event": {"type": ["boolean", "null"]},
            },
        },
        "NewBlog": {
            "type": "object", "additionalProperties": False, "required": ["slug", "title"],
            "properties": {
                "slug": {"type": "string", "pattern": SLUG_PATTERN, "minLength": 1,
                         "maxLength": 80},
                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": {"type": ["string", "null"]},
            },
        },
        "BlogChange": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "title": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
                "description": {"type": ["string", "null"]},
                "status": {"enum": [*Blog.Status.values, None]},
                "embed_origins": {
                    "type": ["array", "null"], "maxItems": EMBED_ORIGINS_MAX,
                    "items": {"type": "string", "maxLength": 200},
                    "description": "Full origins (`https://news.example`, "
                                   "`http://127.0.0.1:8080`) allowed to embed the blog; "
                                   "an empty list: nobody.",
                },
            },
        },
    }


def _publish_at() -> dict:
    return {
        "type": ["string", "null"], "format": "date-time", "maxLength": ISO_TIME_MAX_CHARS,
        "description": "ISO 8601 with a time zone (editors and the owner): a future time "
                       "puts it on the desk, scheduled, until then (202); a past one means "
                       "now; more than a year ahead is refused.",
    }


def _event(fields: dict) -> dict:
    return {
        "type": "object", "additionalProperties": False,
        "required": ["type", "seq", "kind", "at", *[name for name in fields if name != "kind"]],
        "properties": {"type": {"const": "event"}, "seq": {"type": "integer", "minimum": 1},
                       "at": {"type": "string", "format": "date-time"}, **fields},
    }


def _responses() -> dict:
    retry_after = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}

    def error(description: str, headers: dict | None = None) -> dict:
        answer = _answer(description, _ref("Error"))
        if headers:
            answer["headers"] = headers
        return answer

    return {
        "BadRequest": error("The request is not valid (`invalid`, `bad_json`, `bad_form`, "
                            "`too_long`)."),
        "NotAuthenticated": error("Writing needs a signed-in user (`not_authenticated`)."),
        "Forbidden": error("Not allowed (`forbidden`), the CSRF check failed "
                           "(`csrf_failed`), or `X-Liveblog-User` names another user than the "
                           "one signed in (`wrong_user`)."),
        "NotFound": error("No such blog, post or resource (`not_found`)."),
        "MethodNotAllowed": error(
            "The method is not allowed here (`method_not_allowed`).",
            {"Allow": {"description": "The allowed methods.", "required": True,
                       "schema": {"type": "string"}}},
        ),
        "Conflict": error("The slug is taken, or the submission is in a state that does not "
                          "allow this (`conflict`)."),
        "NotImplemented": error("An oEmbed format other than JSON (`not_implemented`)."),
        "TooLarge": error(
            "The request body or the photo is too large (`too_large`): a photo may be "
            f"{settings.LIVEBLOG_MAX_PHOTO_BYTES} bytes, and a request whose Content-Length "
            "exceeds that by more than 1 MiB is refused before it is read."
        ),
        "RateLimited": error("Over a throttle (`rate_limited`): writes per user, reads per "
                             "address. Retry after the given seconds.", retry_after),
        "Unavailable": error("The database cannot be reached (`unavailable`); retry.",
                             retry_after),
    }


@cache
def document() -> dict:
    """The OpenAPI 3.1 document (built once per process)."""
    post_json = {"application/json": {"schema": _ref("NewPost")}}
    post_form = {"multipart/form-data": {
        "schema": _ref("NewPhotoPost"),
        "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp, image/gif"}},
    }}
    created = {
        "201": _answer("Published: the event's seq and the post.", _ref("PostWritten")),
        "200": _answer("The client_id is known: the first answer again (its seq, or null "
                       "when the log was reset since), and nothing new is written.",
                       _ref("PostWritten")),
        "202": _answer("It went to the desk, not the public log: a contributor's post waits "
                       "for an editor, and a future `publish_at` is scheduled. `seq` is null "
                       "and `post` is the submission (a known client_id of one: the "
                       "submission as it is now).", _ref("SubmissionWritten")),
    }
    submission_written = _answer("The submission as it is now.", _ref("SubmissionWritten"))
    conflict = {"409": _error("Conflict")}
    desk_paths = _desk_paths(submission_written, conflict)
    before = _query_int("before", "Only posts with an id below this (`next_before` of the "
                        "previous page).", minimum=1)
    posts_limit = _query_int("limit", "Posts per page.", minimum=1,
                             maximum=selectors.POSTS_PAGE_MAX,
                             default=selectors.POSTS_PAGE_DEFAULT)
    since = _query_int("since", "The last seq the client has; 0 for the log from its start.",
                       minimum=0, required=True)
    events_limit = _query_int("limit", "At most this many events.", minimum=1,
                              maximum=selectors.EVENTS_PAGE_MAX,
                              default=selectors.EVENTS_PAGE_DEFAULT)
    epoch = {"name": "epoch", "in": "query", "required": False,
             "description": "The epoch `since` belongs to; another epoch gets a snapshot.",
             "schema": {"type": "string"}}
    oembed_params = [
        {"name": "url", "in": "query", "required": True,
         "description": "A reader page's URL on this site (`/liveblog/<slug>/`).",
         "schema": {"type": "string", "minLength": 1, "maxLength": URL_MAX_CHARS}},
        {"name": "format", "in": "query", "required": False,
         "description": "Only `json` (anything else: 501, as oEmbed asks).",
         "schema": {"type": "string", "enum": ["json"]}},
        _query_int("maxwidth", "The widest frame the consumer can show.", minimum=1),
        _query_int("maxheight", "The tallest frame the consumer can show.", minimum=1),
    ]
    oembed = _read("getOEmbed", "oEmbed 1.0 for a reader page: a `rich` answer with the embed's "
                   "HTML", _answer("The oEmbed answer.", _ref("OEmbed")), params=oembed_params)
    oembed["responses"]["501"] = _error("NotImplemented")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Liveblog JSON API", "version": "1",
            "description": "Reads are public. Writes need a signed-in user (Django session "
                           "cookie) and the CSRF token (the `csrftoken` cookie's value in "
                           "`X-CSRFToken`). Errors are `{\"error\": code, \"detail\": text}`.",
        },
        "paths": {
            "/api/oembed": {"get": oembed},
            "/api/openapi.json": {"get": {
                "operationId": "getOpenApi", "summary": "This document", "security": ANYONE,
                "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                                      "content": _json({"type": "object"})},
                              **_common()},
            }},
            "/api/liveblog/": {
                "get": _read("listBlogs", "Every blog", _answer("The blogs.", _ref("BlogList")),
                             params=[], blog=False),
                "post": _write(
                    "createBlog",
                    "Create a blog (staff); the creator becomes its owner and an author",
                    {"required": True, "content": _json(_ref("NewBlog"))},
                    {"201": _answer("The new blog.", _ref("Blog"))}, params=[],
                    extra={"409": _error("Conflict")},
                ),
            },
            "/api/liveblog/{slug}/": {
                "get": _read("getBlog", "A blog with its epoch and head",
                             _answer("The blog.", _ref("Blog")), params=[SLUG]),
                "patch": _write(
                    "updateBlog",
                    "Change a blog's title, description, status or embed origins (owner or staff)",
                    {"required": True, "content": _json(_ref("BlogChange"))},
                    {"200": _answer("The blog and the seq of its blog.updated event (null "
                                    "when nothing changed).", _ref("BlogWritten"))},
                    params=[SLUG],
                ),
            },
            "/api/liveblog/{slug}/posts": {
                "get": _read("listPosts", "Current posts, newest first, paged",
                             _answer("One page of posts.", _ref("PostsPage")),
                             params=[SLUG, before, posts_limit]),
                "post": _write(
                    "createPost",
                    "Publish a post (an editor or the owner), or submit it to the desk (a "
                    "contributor; or with a future `publish_at`); multipart/form-data with a "
                    "photo",
                    {"required": True, "content": {**post_json, **post_form}},
                    # 409: the client_id is another contributor's submission.
                    {**created, "409": _error("Conflict")},
                    params=[SLUG],
                ),
            },
            "/api/liveblog/{slug}/posts/{post_id}": {
                "patch": _write(
                    "updatePost",
                    "Edit a post, pin it, flag it as a key event",
                    {"required": True, "content": _json(_ref("PostChange"))},
                    {"200": _answer("The post and the seq of its post.updated event (null "
                                    "when nothing changed).", _ref("PostWritten"))},
                    params=[SLUG, POST_ID],
                ),
                "delete": _write(
                    "deletePost",
                    "Delete a post (a tombstone event); deleting again answers the same",
                    None,
                    {"200": _answer("The tombstone and the seq of its post.deleted event.",
                                    _ref("PostDeleted"))},
                    params=[SLUG, POST_ID],
                ),
            },
            "/api/liveblog/{slug}/events": {
                "get": _read(
                    "listEvents",
                    "The log after `since`, or a snapshot when the client must start over",
                    _answer("The events after `since` (the websocket's event frames), or the "
                            "snapshot when `since` is from another epoch, ahead of the head "
                            "or older than the replay window.",
                            {"oneOf": [_ref("EventsPage"), _ref("Snapshot")]}),
                    params=[SLUG, since, events_limit, epoch],
                ),
            },
            **desk_paths,
            **_push_paths(),
        },
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "headers": {"RetryAfter": {"description": "Seconds to wait before retrying.",
                                       "required": True,
                                       "schema": {"type": "string", "pattern": r"^[0-9]+$"}}},
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                                  "description": "Django's session, from /accounts/login/."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                              "description": "The `csrftoken` cookie's value."},
            },
        },
    }


def _desk_paths(submission_written: dict, conflict: dict) -> dict:
    """The desk (README, "The desk"): submissions and the people who write for a blog."""
    decided = {
        "200": _answer("Published now: the seq of its post.created and the public post (a "
                       "second publish answers the first one again).", _ref("PostWritten")),
        "202": _answer("Scheduled (a future `publish_at`): the submission.",
                       _ref("SubmissionWritten")),
    }
    publish = _write(
        "publishSubmission", "Publish a submission now or at `publish_at`, with the editor's "
        "changes if any (editors, owner)",
        {"required": False, "content": _json(_ref("SubmissionPublish"))}, decided,
        params=[SLUG, SUBMISSION_ID], extra=conflict,
    )
    give_back = _write(
        "returnSubmission", "Send a submission back to its author with a note (editors, owner)",
        {"required": True, "content": _json(_ref("SubmissionReturn"))},
        {"200": submission_written}, params=[SLUG, SUBMISSION_ID], extra=conflict,
    )

    def aliased(operation: dict, suffix: str) -> dict:
        return {**operation, "operationId": operation["operationId"] + suffix}

    return {
        "/api/liveblog/{slug}/desk": {"get": _desk_read(
            "getDesk", "The caller's desk and its head (any role on the blog)",
            _answer("The desk.", _ref("DeskSnapshot")), params=[SLUG],
        )},
        "/api/liveblog/{slug}/submissions/{submission_id}": {
            "get": _desk_read(
                "getSubmission", "A submission (its author, editors, owner)",
                _answer("The submission.", _ref("SubmissionWritten")),
                params=[SLUG, SUBMISSION_ID],
            ),
            "patch": _write(
                "reviseSubmission",
                "Revise a submission (its author, while waiting or returned: it waits again) "
                "or edit it (editors)",
                {"required": True, "content": _json(_ref("SubmissionChange"))},
                {"200": submission_written}, params=[SLUG, SUBMISSION_ID], extra=conflict,
            ),
            "delete": _write(
                "withdrawSubmission",
                "Withdraw a submission (its author while it waits; editors also a scheduled "
                "one); again: the same answer",
                None, {"200": submission_written}, params=[SLUG, SUBMISSION_ID],
                extra=conflict,
            ),
        },
        "/api/liveblog/{slug}/submissions/{submission_id}/publish": {"post": publish},
        "/api/liveblog/{slug}/submissions/{submission_id}/return": {"post": give_back},
        "/api/liveblog/{slug}/posts/{submission_id}/publish": {
            "post": aliased(publish, "ByPostPath")},
        "/api/liveblog/{slug}/posts/{submission_id}/return": {
            "post": aliased(give_back, "ByPostPath")},
        "/api/liveblog/{slug}/members": {"get": _desk_read(
            "listMembers", "Who writes for the blog, owner first (owner, staff)",
            _answer("The members.", _ref("MemberList")), params=[SLUG],
        )},
        "/api/liveblog/{slug}/members/{username}": {
            "put": _write(
                "setMember", "Give someone a role on the blog (owner, staff)",
                {"required": True, "content": _json(_ref("MemberRole"))},
                {"200": _answer("Their role now.", _ref("Member"))}, params=[SLUG, USERNAME],
            ),
            "delete": _write(
                "removeMember", "Take someone off the blog (owner, staff); their submissions "
                "stay", None, {"204": {"description": "Removed (or was not a member)."}},
                params=[SLUG, USERNAME],
            ),
        },
    }


def _push_paths() -> dict:
    """Web Push (README, "Notifications: the server"): the VAPID key and readers'
    subscriptions. Anyone may subscribe; see `_reader_write_checks` for what protects it."""
    endpoint = {"type": "string", "minLength": 1,
                "maxLength": PushSubscription.ENDPOINT_MAX_CHARS,
                "description": "The push service URL: https, resolving only to public "
                               "addresses (else 400 `endpoint_refused`)."}
    subscription = {
        "type": "object", "additionalProperties": False, "required": ["endpoint", "keys"],
        "description": "A browser's `PushSubscription.toJSON()`.",
        "properties": {
            "endpoint": endpoint,
            "expirationTime": _nullable({"type": "number"}),
            "keys": {
                "type": "object", "additionalProperties": False,
                "required": ["p256dh", "auth"],
                "properties": {
                    "p256dh": {"type": "string", "description": "base64url of the 65-byte "
                               "uncompressed P-256 point.", "maxLength": 130},
                    "auth": {"type": "string", "description": "base64url of the 16-byte "
                             "auth secret.", "maxLength": 32},
                },
            },
        },
    }
    subscribed = {"type": "object", "additionalProperties": False, "required": ["subscribed"],
                  "properties": {"subscribed": {"type": "boolean"}}}

    def reader_write(operation_id: str, summary: str, body: dict, ok: dict) -> dict:
        return {
            "operationId": operation_id, "summary": summary, "security": ANYONE,
            "description": "No session or CSRF token: the body must be `application/json` "
                           "and an `Origin`, when sent, must be this site's.",
            "parameters": [SLUG],
            "requestBody": {"required": True, "content": _json(body)},
            "responses": {
                **ok, "400": _error("BadRequest"),
                "403": _error("Forbidden"), "404": _error("NotFound"),
                "409": _answer("The blog has as many subscriptions as it takes "
                               "(`subscriptions_full`).", _ref("Error")),
                "413": _error("TooLarge"),
                "415": _answer("The body is not `application/json` "
                               "(`unsupported_media_type`).", _ref("Error")),
                **_common(),
            },
        }

    subscribe = reader_write(
        "subscribePush", "Subscribe a browser to the blog's key events", subscription,
        {"201": _answer("Subscribed.", subscribed),
         "200": _answer("It was already subscribed (its keys are updated).", subscribed)})
    subscribe["responses"]["429"] = _answer(
        "Over the throttle (`rate_limited`, with Retry-After), or too many subscriptions from "
        "this address (`too_many_subscriptions`).", _ref("Error"))
    return {
        "/api/push/key": {"get": _read(
            "getPushKey", "The VAPID public key to subscribe with",
            _answer("The key: base64url of the uncompressed P-256 point.", {
                "type": "object", "additionalProperties": False, "required": ["key"],
                "properties": {"key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{87}$"}},
            }), params=[], blog=False,
        )},
        "/api/liveblog/{slug}/push": {
            "post": subscribe,
            "delete": reader_write(
                "unsubscribePush", "Unsubscribe a browser (by its endpoint)", {
                    "type": "object", "additionalProperties": False, "required": ["endpoint"],
                    "properties": {"endpoint": endpoint},
                }, {"200": _answer("Not subscribed (any more).", subscribed)}),
        },
    }
