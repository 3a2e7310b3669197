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
from .models import Blog, Event
from .services import EMBED_ORIGINS_MAX, PHOTO_ALT_MAX_CHARS

# Every `error` code an API answer can carry (websocket-only codes are not listed).
ERROR_CODES = [
    "invalid", "bad_json", "bad_form", "too_long", "not_authenticated", "forbidden",
    "csrf_failed", "wrong_user", "not_found", "method_not_allowed", "conflict", "too_large",
    "rate_limited", "unavailable", "server_error", "not_implemented",
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
WRITER = [{"sessionCookie": [], "csrfToken": []}]
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
        "Conflict": error("The slug is taken (`conflict`)."),
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
    }
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
                    "Publish a post (an author of the blog); multipart/form-data with a photo",
                    {"required": True, "content": {**post_json, **post_form}}, created,
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
