"""Wire shapes: the JSON objects of DESIGN.md and the websocket frames, built and parsed here."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.files.storage import default_storage

from .errors import Invalid
from .models import Photo, Post, Submission

# The photo variant a browser without srcset support shows: the one nearest a phone's or a
# column's width.
PHOTO_SRC_WIDTH = 1024


def encode(obj: Any) -> str:
    """The one JSON encoding used on the wire (compact, UTF-8 text)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def author_json(user: Any) -> dict:
    return {"username": user.get_username(), "name": user.get_full_name() or user.get_username()}


def post_json(post: Post) -> dict:
    return {
        "id": post.id,
        "client_id": str(post.client_id),
        "author": author_json(post.author),
        "body": post.body,
        "html": post.html,
        "created_at": iso(post.created_at),
        "edited_at": iso(post.edited_at),
        "pinned": post.pinned,
        "key_event": post.key_event,
        "photo": photo_json(post.photo) if post.photo_id else None,
    }


def submission_json(submission: Submission) -> dict:
    """A submission as the desk sees it (never a reader): the post fields, its state, the
    editor's note, its schedule, the public post it became and who did what to it. Its
    `actions` must be prefetched with their actors (selectors do) or this costs a query."""
    return {
        "id": submission.id,
        "client_id": str(submission.client_id),
        "author": author_json(submission.author),
        "body": submission.body,
        "html": submission.html,
        "created_at": iso(submission.created_at),
        "updated_at": iso(submission.updated_at),
        "pinned": submission.pinned,
        "key_event": submission.key_event,
        "photo": photo_json(submission.photo) if submission.photo_id else None,
        "state": submission.state,
        "note": submission.note,
        "publish_at": iso(submission.publish_at),
        "post_id": submission.post_id,
        "seq": submission.published_seq,
        "history": [
            {
                "action": action.action,
                "by": author_json(action.actor) if action.actor_id else None,
                "at": iso(action.at),
                "note": action.note,
            }
            for action in submission.actions.all()
        ],
    }


def member_json(user: Any, role: str) -> dict:
    return {**author_json(user), "role": role}


def desk_snapshot_json(*, epoch: str, head: int, submissions: list[dict]) -> dict:
    return {"type": "snapshot", "epoch": epoch, "head": head, "submissions": submissions}


def photo_json(photo: Photo) -> dict:
    """URLs from the storage (so any backend serves them), every variant in `srcset`, and
    `src` the one nearest PHOTO_SRC_WIDTH (a larger one on a tie)."""
    variants = sorted(photo.variants, key=lambda variant: variant["width"])
    urls = [default_storage.url(variant["name"]) for variant in variants]
    nearest = min(
        range(len(variants)),
        key=lambda i: (abs(variants[i]["width"] - PHOTO_SRC_WIDTH), -variants[i]["width"]),
    )
    return {
        "src": urls[nearest],
        "srcset": ", ".join(
            f"{url} {variant['width']}w" for url, variant in zip(urls, variants, strict=True)
        ),
        "width": photo.width,
        "height": photo.height,
        "alt": photo.alt,
    }


def blog_json(blog: Any) -> dict:
    """A blog (the model, or a selectors.BlogState) as readers see it."""
    return {
        "slug": blog.slug,
        "title": blog.title,
        "description": blog.description,
        "status": blog.status,
        "epoch": blog.epoch,
        "head": blog.head,
        "created_at": iso(blog.created_at),
    }


def event_frame(*, seq: int, kind: str, at: datetime, payload: dict) -> str:
    """An `event` frame as stored in the log and sent unchanged to every reader."""
    return encode({"type": "event", "seq": seq, "kind": kind, "at": iso(at), **payload})


def hello_frame(
    *, slug: str, epoch: str, head: int, heartbeat: float, role: str | None = None
) -> str:
    """`role` only on the desk: whose queue this connection follows."""
    frame = {"type": "hello", "blog": slug, "epoch": epoch, "head": head, "heartbeat": heartbeat}
    if role is not None:
        frame["role"] = role
    return encode(frame)


def live_frame(head: int) -> str:
    return encode({"type": "live", "head": head})


def ping_frame(head: int) -> str:
    return encode({"type": "ping", "head": head})


def ack_frame(*, client_id: str, seq: int | None, post: dict) -> str:
    return encode({"type": "ack", "client_id": client_id, "seq": seq, "post": post})


def error_frame(code: str, detail: str, *, retry_after: int | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if retry_after is not None:
        frame["retry_after"] = retry_after  # seconds (rate_limited)
    return encode(frame)


def posts_page_json(*, epoch: str, head: int, posts: list[dict], next_before: int | None) -> dict:
    return {"epoch": epoch, "head": head, "posts": posts, "next_before": next_before}


def snapshot_json(page: Any) -> dict:
    """The snapshot frame of a posts page (selectors.PostsPage: the blog state it was read
    with, its posts and the next page's cursor)."""
    return {
        "type": "snapshot",
        "epoch": page.epoch,
        "head": page.head,
        "posts": page.posts,
        "blog": blog_json(page.blog),
        "next_before": page.next_before,
    }


def needs_snapshot(
    *, since: int | None, epoch: str | None, current_epoch: str, head: int, window: int
) -> bool:
    """A client starts over from a snapshot when it has no position, holds another epoch's
    numbers, claims a seq beyond the head, or is further behind than the replay window."""
    return (
        since is None
        or (epoch is not None and epoch != current_epoch)
        or since > head
        or head - since > window
    )


def events_answer(*, epoch: str, head: int, frames: list[str]) -> str:
    """The events API answer, spliced from stored frames so each event is never re-encoded."""
    return f'{{"epoch":{encode(epoch)},"head":{head},"events":[{",".join(frames)}]}}'


# --- Parsing client input ------------------------------------------------------------------


def as_int(value: Any, name: str, *, minimum: int = 0) -> int:
    """A JSON integer >= minimum (bools are not numbers here, nor are numeric strings)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(f"{name} must be an integer >= {minimum}")
    return value


def int_param(text: str, name: str, *, minimum: int = 0) -> int:
    """An integer >= minimum from a query string."""
    text = text.strip()
    # ASCII digits only ("²".isdigit() is true), and short enough to be a real position.
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise Invalid(f"{name} must be an integer >= {minimum}")
    return as_int(int(text), name, minimum=minimum)


def as_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false")
    return value


def as_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    return value


# Long enough for any ISO 8601 time with fractions and an offset; refuses megabytes of junk
# before parsing them.
ISO_TIME_MAX_CHARS = 40


def as_time(value: Any, name: str) -> datetime:
    """An ISO 8601 time with a zone ("2026-12-01T18:30:00Z", "…+02:00"). A time without one
    is refused rather than guessed: a phone's local time and the server's differ."""
    text = as_text(value, name).strip()
    invalid = Invalid(f"{name} must be an ISO 8601 time with a time zone, "
                      "like 2026-12-01T18:30:00Z")
    if not text or len(text) > ISO_TIME_MAX_CHARS or not text.isascii():
        raise invalid
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise invalid
    return moment


def form_bool(value: str | None, name: str) -> bool:
    """A boolean form field: "true" or "false"; absent is false."""
    if value is None:
        return False
    if value not in {"true", "false"}:
        raise Invalid(f"{name} must be true or false")
    return value == "true"


def as_uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(as_text(value, name))
    except ValueError:
        raise Invalid(f"{name} must be a UUID") from None


def optional(data: dict, name: str, parse: Any) -> Any:
    """The parsed field, or None when absent (JSON null counts as absent)."""
    value = data.get(name)
    return None if value is None else parse(value, name)


@dataclass(frozen=True)
class ResyncRequest:
    since: int
    epoch: str | None


@dataclass(frozen=True)
class PostRequest:
    client_id: uuid.UUID
    body: str
    key_event: bool
    pinned: bool
    photo: Any = None  # an uploaded file (multipart only)
    photo_alt: str | None = None
    # A time to publish at (editors): the post waits on the desk until then.
    publish_at: datetime | None = None


def parse_post_fields(data: dict) -> PostRequest:
    """The fields of a new post, shared by the HTTP API and the websocket `post` frame."""
    if "client_id" not in data:
        raise Invalid("client_id is required")
    if "body" not in data:
        raise Invalid("body is required")
    return PostRequest(
        client_id=as_uuid(data["client_id"], "client_id"),
        body=as_text(data["body"], "body"),
        key_event=optional(data, "key_event", as_bool) or False,
        pinned=optional(data, "pinned", as_bool) or False,
        publish_at=optional(data, "publish_at", as_time),
    )


def parse_post_form(data: dict[str, str], photo: Any = None) -> PostRequest:
    """The fields of a new post sent as multipart/form-data (how a photo comes along).

    Text fields are strings; an absent body is an empty one (allowed with a photo)."""
    if "client_id" not in data:
        raise Invalid("client_id is required")
    return PostRequest(
        client_id=as_uuid(data["client_id"], "client_id"),
        body=data.get("body", ""),
        key_event=form_bool(data.get("key_event"), "key_event"),
        pinned=form_bool(data.get("pinned"), "pinned"),
        photo=photo,
        photo_alt=data.get("photo_alt"),
        # An empty field (a form's blank time input) means now.
        publish_at=as_time(data["publish_at"], "publish_at") if data.get("publish_at") else None,
    )


def decode_json(text: str | bytes, what: str) -> Any:
    """A client's JSON; Invalid (bad_json) for anything else, including nesting deeper than
    the parser goes (RecursionError) and lone surrogates (an escaped "\\ud800"), which are no
    text: UTF-8, the database and the Markdown renderer all refuse them."""
    try:
        data = json.loads(text)
        encode(data).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise Invalid(f"{what} is not valid JSON", code="bad_json") from None
    return data


def parse_client_frame(text: str) -> ResyncRequest | PostRequest:
    """Decode one client frame; raises Invalid with the error code to answer with."""
    data = decode_json(text, "frame")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Invalid("frame must be a JSON object with a string type")
    kind = data["type"]
    if kind == "resync":
        if "since" not in data:
            raise Invalid("resync needs since")
        return ResyncRequest(
            since=as_int(data["since"], "since"), epoch=optional(data, "epoch", as_text)
        )
    if kind == "post":
        return parse_post_fields(data)
    raise Invalid(f"unknown frame type {kind[:40]!r}", code="unknown_type")
