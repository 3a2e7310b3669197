"""Every write. HTTP views, the websocket consumer, the admin and management commands call these.

Each visible change takes the blog's next seq inside the transaction that makes it, and its event
frame is broadcast only after that transaction commits. A service is given a blog's id, not a
model instance: it reads the blog itself, under the blog's lock, and decides who may write
against those rows (an owner replaced or an author removed a moment ago is refused), and it never
changes an object its caller holds.
"""

import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.validators import validate_slug
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from . import photos
from .errors import Conflict, Invalid, NotAllowed, NotAuthenticated, NotFound, TooMany
from .live import broadcast
from .models import (
    Blog,
    DeskEvent,
    DeskStream,
    Event,
    Membership,
    Photo,
    Post,
    PushSubscription,
    Submission,
    SubmissionAction,
    new_epoch,
)
from .permissions import (
    CONTRIBUTOR,
    PUBLISHING_ROLES,
    can_edit_post,
    can_manage_blog,
    role_of,
)
from .protocol import blog_json, event_frame, member_json, post_json, submission_json
from .push import endpoints as push_endpoints
from .push import sender as push_sender
from .rendering import render_markdown
from .selectors import push_subscription_counts, submissions_for_json

logger = logging.getLogger(__name__)

PHOTO_ALT_MAX_CHARS = 300


@dataclass(frozen=True)
class Written:
    """The answer to a write: the seq it took (None when nothing changed, or nothing public)
    and the object. `desk`: the object is a submission (waiting, returned, scheduled…), which
    is on the desk and not in the public log."""

    seq: int | None
    data: dict
    created: bool = False
    desk: bool = False


# --- The log ----------------------------------------------------------------------------------


def _blog(blog_id: int, *, lock: bool = False) -> Blog:
    """Read the blog; with `lock`, under a row lock (PostgreSQL) / inside the write lock that
    SQLite's IMMEDIATE transactions take at BEGIN: concurrent writers to one blog queue here."""
    query = Blog.objects.select_for_update() if lock else Blog.objects
    try:
        return query.get(pk=blog_id)
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {blog_id}") from None


def _event_append(
    locked: Blog, kind: str, payload: Any, *, post: Post | None = None, actor: Any = None
) -> Event:
    """Take the next seq and record the event; `payload` may be a callable of the new head so
    that a blog event carries the head it creates. Must run inside the writer's transaction.
    `actor` (None for the scheduler) is kept for the post's history, never sent."""
    seq = locked.head + 1
    Blog.objects.filter(pk=locked.pk).update(head=seq)
    locked.head = seq
    now = timezone.now()
    body = payload() if callable(payload) else payload
    frame = event_frame(seq=seq, kind=kind, at=now, payload=body)
    event = Event.objects.create(
        blog=locked, seq=seq, kind=kind, post=post, frame=frame,
        actor=_recorded(actor),
    )
    _publish_on_commit(locked.pk, locked.epoch, seq, frame)
    return event


def _recorded(actor: Any) -> Any:
    """Who a history row names: the signed-in actor, or None (the scheduler)."""
    return actor if actor is not None and actor.is_authenticated else None


def _publish_on_commit(blog_id: int, epoch: str, seq: int, frame: str) -> None:
    # A plain function, not functools.partial: Django logs a failed robust callback through
    # its __qualname__, which a partial lacks (the write would then fail with a 500).
    def publish_event() -> None:
        broadcast.event_publish(blog_id=blog_id, epoch=epoch, seq=seq, frame=frame)

    transaction.on_commit(publish_event, robust=True)


def _push_on_commit(post: Post, seq: int) -> None:
    """A public key event is pushed to its blog's subscribers once the transaction commits,
    and only once per post: `pushed_at` is set here, under the blog lock, in the same
    transaction (turning the flag off and on again pushes nothing more)."""
    if not post.key_event or post.pushed_at is not None:
        return
    if not Post.objects.filter(pk=post.pk, pushed_at__isnull=True).update(
            pushed_at=timezone.now()):
        return
    blog_id, post_id = post.blog_id, post.pk

    # A plain function, not functools.partial (see _publish_on_commit).
    def push_key_event() -> None:
        push_sender.enqueue(blog_id=blog_id, post_id=post_id, seq=seq)

    transaction.on_commit(push_key_event, robust=True)


# --- Checks -----------------------------------------------------------------------------------


def _require_signed_in(actor: Any) -> None:
    if actor is None or not actor.is_authenticated:
        raise NotAuthenticated("sign in to write")
    if not actor.is_active:
        raise NotAllowed("this account is disabled")


def _require_author(actor: Any, blog: Blog) -> str:
    """The actor's role on the blog; NotAllowed for someone who does not write for it."""
    _require_signed_in(actor)
    role = role_of(actor, blog)
    if role is None:
        raise NotAllowed("you are not an author of this blog")
    return role


def _require_publisher(actor: Any, blog: Blog) -> str:
    role = _require_author(actor, blog)
    if role not in PUBLISHING_ROLES:
        raise NotAllowed("only the blog's editors and its owner may do this")
    return role


def _refuse_nul(text: str, name: str) -> str:
    """PostgreSQL text cannot hold NUL characters (SQLite can): refuse them everywhere alike."""
    if "\x00" in text:
        raise Invalid(f"{name} must not contain NUL characters")
    return text


def validate_body(body: str, *, allow_empty: bool = False) -> str:
    """The body as written, if it is one we accept (shared with the admin's form). Only a
    post with a photo may have an empty body (the photo is the update)."""
    if not isinstance(body, str) or (not allow_empty and not body.strip()):
        raise Invalid("body must not be empty")
    _refuse_nul(body, "body")
    limit = settings.LIVEBLOG_MAX_BODY_CHARS
    if len(body) > limit:
        raise Invalid(f"body is longer than {limit} characters", code="too_long")
    return body


def _clean_photo_alt(alt: Any) -> str:
    if not isinstance(alt, str) or not alt.strip():
        raise Invalid(
            "photo_alt is required with a photo: describe it for readers who cannot see it"
        )
    alt = _refuse_nul(alt.strip(), "photo_alt")
    if len(alt) > PHOTO_ALT_MAX_CHARS:
        raise Invalid(f"photo_alt is longer than {PHOTO_ALT_MAX_CHARS} characters", code="too_long")
    return alt


def _clean_title(title: str) -> str:
    if not isinstance(title, str) or not title.strip():
        raise Invalid("title must not be empty")
    if len(title) > 200:
        raise Invalid("title is longer than 200 characters")
    return _refuse_nul(title.strip(), "title")


# Each is in the embed's CSP header: a newsroom has a few partner sites, not hundreds.
EMBED_ORIGINS_MAX = 20
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(\.{_LABEL})*|[0-9a-f:.]*:[0-9a-f:.]*")  # a name, or IPv6
_DEFAULT_PORTS = {"http": 80, "https": 443}


def clean_origin(value: Any) -> str:
    """A full origin ("https://news.example", "http://127.0.0.1:8080"), in the form browsers
    compare: lower case, without a default port. Anything else (a path, a wildcard, a scheme
    other than http(s)) is refused: it goes into a CSP header and is compared with
    `event.origin` as it is."""
    if not isinstance(value, str) or len(value) > 200:
        raise Invalid("an embed origin must be a string of at most 200 characters")
    refused = Invalid(f"{value!r} is not an origin like https://news.example")
    try:
        parts = urlsplit(value.strip())
        port, host = parts.port, (parts.hostname or "").lower()
    except ValueError:  # a bad port or IPv6 address
        raise refused from None
    if (parts.scheme not in _DEFAULT_PORTS or parts.path not in ("", "/") or parts.query
            or parts.fragment or parts.username or parts.password
            or value.strip().endswith(":") or not _HOST.fullmatch(host)):
        raise refused
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


def clean_embed_origins(values: Any) -> list[str]:
    """The origins allowed to embed a blog: each cleaned, duplicates dropped, order kept."""
    if not isinstance(values, list):
        raise Invalid("embed_origins must be a list of origins")
    cleaned = list(dict.fromkeys(clean_origin(value) for value in values))
    if len(cleaned) > EMBED_ORIGINS_MAX:
        raise Invalid(f"at most {EMBED_ORIGINS_MAX} embed origins")
    return cleaned


# --- Posts ------------------------------------------------------------------------------------


def _created_answer(
    blog_id: int, client_id: uuid.UUID, *, asker: Any = None, asker_role: str | None = None
) -> Written | None:
    """The first answer given for this client_id, rebuilt from its post.created event; or,
    for a client_id still on the desk, the submission as it is now, if `asker` may see it.

    Two lookups, each on its own index ((blog, client_id), then the event's post): a join lets
    SQLite's planner scan the whole log of a blog."""
    post_id = (
        Post.objects.filter(blog_id=blog_id, client_id=client_id)
        .values_list("id", flat=True).first()
    )
    if post_id is None:
        return _submitted_answer(blog_id, client_id, asker, asker_role)
    row = (
        Event.objects.filter(post_id=post_id, kind=Event.Kind.POST_CREATED)
        .values_list("seq", "frame")
        .first()
    )
    if row is None:  # the log was reset since: the post as it is now, with no seq
        post = Post.objects.select_related("author", "photo").get(pk=post_id)
        return Written(seq=None, data=post_json(post), created=False)
    seq, frame = row
    return Written(seq=seq, data=json.loads(frame)["post"], created=False)


def _submitted_answer(
    blog_id: int, client_id: uuid.UUID, asker: Any, asker_role: str | None
) -> Written | None:
    """A client_id that is on the desk (not published): the submission as it is now. Only to
    its author or an editor: another contributor who sends the same client_id (a guess, or a
    copied one) learns nothing of it, not even its note."""
    row = (
        Submission.objects.filter(blog_id=blog_id, client_id=client_id)
        .values_list("id", "author_id").first()
    )
    if row is None:
        return None
    submission_id, author_id = row
    if asker is not None and author_id != asker.pk and asker_role not in PUBLISHING_ROLES:
        raise Conflict("this client_id is taken; make a new one")
    return Written(seq=None, data=submission_json(_desk_read(submission_id)), desk=True)


# Scheduling further ahead than this is a typo (a year too far), not an embargo.
PUBLISH_AT_MAX_AHEAD = timedelta(days=366)


def clean_publish_at(publish_at: datetime | None) -> datetime | None:
    """A publish time in the future, or None for now (a time already past means now)."""
    if publish_at is None:
        return None
    if not isinstance(publish_at, datetime) or timezone.is_naive(publish_at):
        raise Invalid("publish_at must be an ISO 8601 time with a time zone")
    now = timezone.now()
    if publish_at > now + PUBLISH_AT_MAX_AHEAD:
        raise Invalid("publish_at is more than a year ahead")
    return publish_at if publish_at > now else None


def post_create(
    *,
    actor: Any,
    blog_id: int,
    client_id: uuid.UUID,
    body: str,
    key_event: bool = False,
    pinned: bool = False,
    photo: File | None = None,
    photo_alt: str | None = None,
    publish_at: datetime | None = None,
) -> Written:
    """Publish a post, optionally with a photo; or, from a contributor (or with a future
    `publish_at`), put it on the desk as a submission (Written.desk, no seq). A client_id the
    blog already has returns the first answer (or the submission as it is now) and appends
    nothing, so a phone retrying after a lost answer never posts twice; it is answered before
    any image work, so a retried upload is not decoded or stored again."""
    _require_signed_in(actor)
    body = validate_body(body, allow_empty=photo is not None)
    fields = {
        "author": actor, "body": body, "html": render_markdown(body),
        "key_event": key_event, "pinned": pinned, "publish_at": clean_publish_at(publish_at),
    }
    if photo is None:
        return _post_insert(blog_id, client_id, fields, photo_variants=[], photo_alt=None)
    photo_alt = _clean_photo_alt(photo_alt)
    # Image work is slow and happens before the lock: refuse a stranger, and answer a retry,
    # before it (the transaction checks the author again, against the rows it locks).
    blog = _blog(blog_id)
    role = _require_author(actor, blog)
    if known := _created_answer(blog_id, client_id, asker=actor, asker_role=role):
        return known
    stored = _photo_files_save(blog.slug, photos.process_photo(photo))
    try:
        written = _post_insert(
            blog_id, client_id, fields, photo_variants=stored, photo_alt=photo_alt
        )
    except BaseException:
        _files_delete(_names(stored))  # nothing refers to them
        raise
    if not written.created:  # a concurrent request with this client_id got there first
        _files_delete(_names(stored))
    return written


def _post_insert(
    blog_id: int, client_id: uuid.UUID, fields: dict, *, photo_variants: list[dict],
    photo_alt: str | None,
) -> Written:
    """The post, its photo and its post.created event, in one transaction under the blog lock;
    or the submission and its desk events, when the author's role (read under the lock) or a
    publish time says it waits."""
    fields = dict(fields)
    publish_at = fields.pop("publish_at", None)
    author, role = fields["author"], None
    try:
        with transaction.atomic():
            locked = _blog(blog_id, lock=True)
            role = _require_author(author, locked)
            if publish_at is not None and role == CONTRIBUTOR:
                raise NotAllowed("contributors cannot schedule posts; an editor decides when")
            if known := _created_answer(blog_id, client_id, asker=author, asker_role=role):
                return known
            photo = None
            if photo_variants:
                photo = _photo_create(locked, fields["author"], photo_variants, photo_alt)
            if role == CONTRIBUTOR or publish_at is not None:
                return _submission_insert(locked, client_id, fields, photo, publish_at)
            post = Post.objects.create(blog=locked, client_id=client_id, photo=photo, **fields)
            data = post_json(post)
            event = _event_append(
                locked, Event.Kind.POST_CREATED, {"post": data}, post=post,
                actor=fields["author"],
            )
            _push_on_commit(post, event.seq)
    except IntegrityError:
        # Only reachable if a writer bypassed the lock; the unique constraint held the line.
        if known := _created_answer(blog_id, client_id, asker=author, asker_role=role):
            return known
        raise
    return Written(seq=event.seq, data=data, created=True)


# --- Photos -----------------------------------------------------------------------------------


def _photo_files_save(slug: str, variants: list[photos.Variant]) -> list[dict]:
    """Store the variants; returns them as Photo.variants. Runs before the blog is locked:
    storage may be slow (object storage is a network away), and the lock holds up every
    writer to the blog. A random stem keeps names unguessable and unique, so they can be
    cached forever."""
    stem = f"liveblog/photos/{slug}/{secrets.token_hex(16)}"
    stored: list[dict] = []
    try:
        for variant in variants:
            name = default_storage.save(f"{stem}-{variant.width}.jpg", ContentFile(variant.data))
            stored.append({"name": name, "width": variant.width, "height": variant.height})
    except BaseException:
        _files_delete(_names(stored))
        raise
    return stored


def _photo_create(locked: Blog, uploader: Any, variants: list[dict], alt: str) -> Photo:
    largest = max(variants, key=lambda variant: variant["width"])
    return Photo.objects.create(
        blog=locked, uploaded_by=uploader, alt=alt,
        width=largest["width"], height=largest["height"], variants=variants,
    )


def _photo_delete(photo: Photo) -> None:
    """Remove a photo; its files go once the transaction commits (a rollback keeps them, as
    the post still shows them), so a deleted photo stops being served."""
    names = _names(photo.variants)
    photo.delete()

    # A plain function, not functools.partial (see _publish_on_commit).
    def delete_photo_files() -> None:
        _files_delete(names)

    transaction.on_commit(delete_photo_files, robust=True)


def _names(variants: list[dict]) -> list[str]:
    return [variant["name"] for variant in variants]


def _files_delete(names: list[str]) -> None:
    """Best effort: a failed delete is logged with the name to remove by hand, and never
    replaces the error or answer of the write that called it."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("could not delete photo file %s from storage", name)


# --- Posts: changes ---------------------------------------------------------------------------


def _live_post(locked: Blog, post_id: int) -> Post:
    try:
        return Post.objects.select_related("author", "photo").get(
            blog=locked, pk=post_id, deleted_at__isnull=True
        )
    except Post.DoesNotExist:
        raise NotFound(f"no post {post_id} in this blog") from None


def post_update(
    *,
    actor: Any,
    blog_id: int,
    post_id: int,
    body: str | None = None,
    pinned: bool | None = None,
    key_event: bool | None = None,
) -> Written:
    """Edit a post's body and/or its flags. Appends one post.updated event if anything changed."""
    _require_signed_in(actor)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        _require_author(actor, locked)
        post = _live_post(locked, post_id)
        if not can_edit_post(actor, locked, post):
            raise NotAllowed("only the blog's editors and its owner may change published posts")
        if body is not None:
            body = validate_body(body, allow_empty=post.photo_id is not None)
        changed = []
        if body is not None and body != post.body:
            post.body, post.html, post.edited_at = body, render_markdown(body), timezone.now()
            changed += ["body", "html", "edited_at"]
        if pinned is not None and pinned != post.pinned:
            post.pinned = pinned
            changed.append("pinned")
        if key_event is not None and key_event != post.key_event:
            post.key_event = key_event
            changed.append("key_event")
        if not changed:
            return Written(seq=None, data=post_json(post))
        post.save(update_fields=changed)
        data = post_json(post)
        event = _event_append(
            locked, Event.Kind.POST_UPDATED, {"post": data}, post=post, actor=actor
        )
        if "key_event" in changed:
            _push_on_commit(post, event.seq)
    return Written(seq=event.seq, data=data)


def post_delete(*, actor: Any, blog_id: int, post_id: int) -> Written:
    """Tombstone a post. Deleting it again answers with the seq of the first deletion."""
    _require_signed_in(actor)
    tombstone = {"id": post_id, "deleted": True}
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        _require_author(actor, locked)
        post = Post.objects.filter(blog=locked, pk=post_id).select_related("photo").first()
        if post is None:
            raise NotFound(f"no post {post_id} in this blog")
        if not can_edit_post(actor, locked, post):
            raise NotAllowed("only the blog's editors and its owner may delete published posts")
        if post.deleted_at is not None:
            seq = (
                Event.objects.filter(blog=locked, post=post, kind=Event.Kind.POST_DELETED)
                .values_list("seq", flat=True)
                .first()
            )
            return Written(seq=seq, data=tombstone)
        photo = post.photo
        post.deleted_at, post.photo = timezone.now(), None
        post.save(update_fields=["deleted_at", "photo"])
        if photo is not None:  # privacy: a deleted post's photo must stop being served
            _photo_delete(photo)
        event = _event_append(
            locked, Event.Kind.POST_DELETED, {"post": tombstone}, post=post, actor=actor
        )
    return Written(seq=event.seq, data=tombstone)


# --- Blogs ------------------------------------------------------------------------------------


def blog_create(*, actor: Any, slug: str, title: str, description: str = "") -> Blog:
    """Create a blog (staff only); its creator becomes owner and first author. Not an event:
    a new blog starts at head 0 so its first post is seq 1."""
    _require_signed_in(actor)
    if not actor.is_staff:
        raise NotAllowed("only staff may create blogs")
    if not isinstance(slug, str) or not slug or len(slug) > 80:
        raise Invalid("slug must be 1 to 80 characters")
    try:
        validate_slug(slug)
    except ValidationError:
        raise Invalid("slug may contain only letters, numbers, hyphens and underscores") from None
    if not isinstance(description, str):
        raise Invalid("description must be a string")
    _refuse_nul(description, "description")
    title = _clean_title(title)
    try:
        with transaction.atomic():
            blog = Blog.objects.create(slug=slug, title=title, description=description, owner=actor)
            blog.authors.add(actor)
    except IntegrityError:
        raise Conflict(f"the slug {slug!r} is taken") from None
    return blog


def blog_update(
    *,
    actor: Any,
    blog_id: int,
    title: str | None = None,
    description: str | None = None,
    status: str | None = None,
    owner: Any = None,
    embed_origins: list[str] | None = None,
) -> Written:
    """Change title, description or status (staff or owner): one blog.updated event if any
    changed. A new owner (staff only) and the origins allowed to embed the blog are not
    visible to readers, so they take no seq."""
    _require_signed_in(actor)
    if title is not None:
        title = _clean_title(title)
    if description is not None and not isinstance(description, str):
        raise Invalid("description must be a string")
    if description is not None:
        _refuse_nul(description, "description")
    if status is not None and status not in Blog.Status.values:
        raise Invalid(f"status must be one of {', '.join(Blog.Status.values)}")
    if embed_origins is not None:
        embed_origins = clean_embed_origins(embed_origins)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        if not can_manage_blog(actor, locked):
            raise NotAllowed("only the blog's owner or staff may change it")
        if owner is not None and owner.pk != locked.owner_id and not actor.is_staff:
            raise NotAllowed("only staff may hand a blog to another owner")
        if owner is not None and owner.pk != locked.owner_id:
            locked.owner = owner
            locked.save(update_fields=["owner"])
            locked.authors.add(owner)
        if embed_origins is not None and embed_origins != locked.embed_origins:
            locked.embed_origins = embed_origins
            locked.save(update_fields=["embed_origins"])
        changed = {
            field: value
            for field, value in (("title", title), ("description", description), ("status", status))
            if value is not None and getattr(locked, field) != value
        }
        if not changed:
            return Written(seq=None, data=blog_json(locked))
        for field, value in changed.items():
            setattr(locked, field, value)
        if "status" in changed:  # coverage ends (and starts again) with the status
            locked.ended_at = timezone.now() if status == Blog.Status.ENDED else None
            changed["ended_at"] = locked.ended_at
        locked.save(update_fields=list(changed))
        event = _event_append(
            locked, Event.Kind.BLOG_UPDATED, lambda: {"blog": blog_json(locked)}, actor=actor
        )
        data = blog_json(locked)
    return Written(seq=event.seq, data=data)


def blog_log_reset(*, actor: Any, blog_id: int) -> Blog:
    """Start the blog's log over: a new epoch, no events, head 0 (staff only).

    For compacting a long log or after restoring a backup. Posts stay as they are; every
    reader, connected or not, starts over from a snapshot of them, because no seq of the old
    epoch means anything in the new one."""
    _require_signed_in(actor)
    if not actor.is_staff:
        raise NotAllowed("only staff may reset a blog's log")
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        Event.objects.filter(blog=locked).delete()
        locked.epoch, locked.head = new_epoch(), 0
        locked.save(update_fields=["epoch", "head"])
        blog_id, epoch = locked.pk, locked.epoch

        def publish_reset() -> None:
            broadcast.reset_publish(blog_id=blog_id, epoch=epoch)

        transaction.on_commit(publish_reset, robust=True)
    return locked


# --- The desk: submissions --------------------------------------------------------------------
#
# A submission is a post that is not public: a contributor's, waiting for an editor, or one an
# editor scheduled. It has no Post row and takes no public seq, so no public read can show it;
# publishing it makes the Post and appends post.created at that moment. Every change to it is
# numbered in the desk's own logs (the editors' one, and its author's), never the public one.

NOTE_MAX_CHARS = 500
_WAITING = (Submission.State.SUBMITTED, Submission.State.RETURNED)
_PUBLISHABLE = (Submission.State.SUBMITTED, Submission.State.RETURNED, Submission.State.SCHEDULED)


def _desk_read(submission_id: int) -> Submission:
    return submissions_for_json().get(pk=submission_id)


def desk_audiences(author_id: int) -> tuple[str, str]:
    """The desk logs a submission's changes go to: every editor's, and its author's own."""
    return DeskStream.EDITORS, f"user:{author_id}"


def _desk_append(locked: Blog, submission_id: int, *, created: bool = False) -> dict:
    """Number the submission's new state in each desk log it belongs to, and broadcast it after
    commit to those logs' live subscribers. Runs under the blog lock, which orders the desk's
    writers as it orders the public log's. Returns the submission's JSON."""
    submission = _desk_read(submission_id)
    data = submission_json(submission)
    kind = "submission.created" if created else "submission.updated"
    now = timezone.now()
    for audience in desk_audiences(submission.author_id):
        stream, _ = DeskStream.objects.get_or_create(blog=locked, audience=audience)
        seq = stream.head + 1
        DeskStream.objects.filter(pk=stream.pk).update(head=seq)
        frame = event_frame(seq=seq, kind=kind, at=now, payload={"submission": data})
        DeskEvent.objects.create(stream=stream, seq=seq, submission_id=submission_id, frame=frame)
        _desk_publish_on_commit(stream.pk, stream.epoch, seq, frame)
    return data


def _desk_publish_on_commit(stream_id: int, epoch: str, seq: int, frame: str) -> None:
    # A plain function, not functools.partial (see _publish_on_commit).
    def publish_desk_event() -> None:
        broadcast.desk_publish(stream_id=stream_id, epoch=epoch, seq=seq, frame=frame)

    transaction.on_commit(publish_desk_event, robust=True)


def _action(submission: Submission, actor: Any, action: str, note: str = "") -> None:
    SubmissionAction.objects.create(
        submission=submission, action=action, note=note,
        actor=_recorded(actor),
    )


def _submission_insert(
    locked: Blog, client_id: uuid.UUID, fields: dict, photo: Photo | None,
    publish_at: datetime | None,
) -> Written:
    """A new submission (waiting, or scheduled by an editor) and its first desk events."""
    author = fields["author"]
    state = Submission.State.SCHEDULED if publish_at else Submission.State.SUBMITTED
    submission = Submission.objects.create(
        blog=locked, client_id=client_id, photo=photo, state=state, publish_at=publish_at,
        **fields,
    )
    _action(submission, author, SubmissionAction.Action.SUBMITTED)
    if publish_at:
        _action(submission, author, SubmissionAction.Action.SCHEDULED)
    data = _desk_append(locked, submission.pk, created=True)
    return Written(seq=None, data=data, created=True, desk=True)


def _locked_submission(locked: Blog, submission_id: int) -> Submission:
    try:
        return Submission.objects.select_related("photo").get(blog=locked, pk=submission_id)
    except Submission.DoesNotExist:
        raise NotFound(f"no submission {submission_id} in this blog") from None


def _submission_edit(
    submission: Submission, *, body: str | None, key_event: bool | None, pinned: bool | None
) -> bool:
    """Apply changed fields to the submission (unsaved); True if anything changed."""
    changed = False
    if body is not None:
        body = validate_body(body, allow_empty=submission.photo_id is not None)
        if body != submission.body:
            submission.body, submission.html = body, render_markdown(body)
            changed = True
    for field, value in (("key_event", key_event), ("pinned", pinned)):
        if value is not None and value != getattr(submission, field):
            setattr(submission, field, value)
            changed = True
    return changed


def _desk_answer(locked: Blog, submission: Submission) -> Written:
    """Save the submission and number its new state on the desk."""
    submission.save()
    return Written(seq=None, data=_desk_append(locked, submission.pk), desk=True)


def _own_submission(
    actor: Any, locked: Blog, submission_id: int, verb: str
) -> tuple[str, Submission]:
    """The actor's role and the submission, if it is theirs or they publish on the blog (the
    role read once, under the lock)."""
    role = _require_author(actor, locked)
    submission = _locked_submission(locked, submission_id)
    if submission.author_id != actor.pk and role not in PUBLISHING_ROLES:
        raise NotAllowed(f"you may only {verb} your own submissions")
    return role, submission


def _desk_unchanged(submission: Submission) -> Written:
    """The answer to a desk write that changed nothing: the submission as it is."""
    return Written(seq=None, data=submission_json(_desk_read(submission.pk)), desk=True)


def submission_revise(
    *, actor: Any, blog_id: int, submission_id: int, body: str | None = None,
    key_event: bool | None = None, pinned: bool | None = None,
) -> Written:
    """Change a submission. Its author revises it while it waits (a returned one goes back to
    the queue); an editor edits it before deciding. Nothing changed: nothing numbered."""
    _require_signed_in(actor)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        role, submission = _own_submission(actor, locked, submission_id, "revise")
        editing = role in PUBLISHING_ROLES
        allowed = _PUBLISHABLE if editing else _WAITING
        if submission.state not in allowed:
            raise Conflict(f"this submission is {submission.state}; it can no longer be revised")
        changed = _submission_edit(submission, body=body, key_event=key_event, pinned=pinned)
        resubmitted = not editing and submission.state == Submission.State.RETURNED
        if not changed and not resubmitted:
            return _desk_unchanged(submission)
        if resubmitted:
            submission.state, submission.note = Submission.State.SUBMITTED, ""
        _action(submission, actor, SubmissionAction.Action.EDITED if editing
                else SubmissionAction.Action.REVISED)
        return _desk_answer(locked, submission)


def submission_withdraw(*, actor: Any, blog_id: int, submission_id: int) -> Written:
    """Take a submission back before it is published (its author; or an editor dropping a
    scheduled post). Its photo is deleted. Withdrawing it again changes nothing."""
    _require_signed_in(actor)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        role, submission = _own_submission(actor, locked, submission_id, "withdraw")
        if submission.state == Submission.State.WITHDRAWN:
            return _desk_unchanged(submission)
        allowed = _PUBLISHABLE if role in PUBLISHING_ROLES else _WAITING
        if submission.state not in allowed:
            raise Conflict(f"this submission is {submission.state}; it cannot be withdrawn")
        photo = submission.photo
        submission.state, submission.photo, submission.publish_at = (
            Submission.State.WITHDRAWN, None, None
        )
        if photo is not None:
            _photo_delete(photo)
        _action(submission, actor, SubmissionAction.Action.WITHDRAWN)
        return _desk_answer(locked, submission)


def clean_note(note: Any) -> str:
    if not isinstance(note, str) or not note.strip():
        raise Invalid("note is required: tell the author what to change")
    note = _refuse_nul(note.strip(), "note")
    if len(note) > NOTE_MAX_CHARS:
        raise Invalid(f"note is longer than {NOTE_MAX_CHARS} characters", code="too_long")
    return note


def submission_return(*, actor: Any, blog_id: int, submission_id: int, note: str) -> Written:
    """Send a waiting (or scheduled) submission back to its author with a note (editors)."""
    _require_signed_in(actor)
    note = clean_note(note)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        _require_publisher(actor, locked)
        submission = _locked_submission(locked, submission_id)
        if submission.state not in (Submission.State.SUBMITTED, Submission.State.SCHEDULED):
            raise Conflict(f"this submission is {submission.state}; it cannot be returned")
        submission.state, submission.note, submission.publish_at = (
            Submission.State.RETURNED, note, None
        )
        _action(submission, actor, SubmissionAction.Action.RETURNED, note)
        return _desk_answer(locked, submission)


def submission_publish(
    *, actor: Any, blog_id: int, submission_id: int, body: str | None = None,
    key_event: bool | None = None, pinned: bool | None = None,
    publish_at: datetime | None = None,
) -> Written:
    """Publish a submission now (editors), after applying the editor's changes if any; with a
    future `publish_at`, schedule it instead. Publishing it again answers with the post and
    the seq it took the first time, so a double tap publishes once."""
    _require_signed_in(actor)
    publish_at = clean_publish_at(publish_at)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        _require_publisher(actor, locked)
        submission = _locked_submission(locked, submission_id)
        if submission.state == Submission.State.PUBLISHED:
            if known := _created_answer(blog_id, submission.client_id):
                return known
        if submission.state not in _PUBLISHABLE:
            raise Conflict(f"this submission is {submission.state}; it cannot be published")
        if _submission_edit(submission, body=body, key_event=key_event, pinned=pinned):
            _action(submission, actor, SubmissionAction.Action.EDITED)
        if publish_at is not None:
            submission.state, submission.publish_at, submission.note = (
                Submission.State.SCHEDULED, publish_at, ""
            )
            _action(submission, actor, SubmissionAction.Action.SCHEDULED)
            return _desk_answer(locked, submission)
        return _submission_publish_now(locked, submission, actor)


def _submission_publish_now(locked: Blog, submission: Submission, actor: Any) -> Written:
    """Make the public post (its author the submission's, its time now) and append its
    post.created: from this moment it is a post like any other."""
    post = Post.objects.create(
        blog=locked, client_id=submission.client_id, author_id=submission.author_id,
        body=submission.body, html=submission.html, key_event=submission.key_event,
        pinned=submission.pinned, photo=submission.photo,
    )
    post = Post.objects.select_related("author", "photo").get(pk=post.pk)
    data = post_json(post)
    event = _event_append(locked, Event.Kind.POST_CREATED, {"post": data}, post=post, actor=actor)
    _push_on_commit(post, event.seq)
    submission.state, submission.post, submission.published_seq, submission.note = (
        Submission.State.PUBLISHED, post, event.seq, ""
    )
    _action(submission, actor, SubmissionAction.Action.PUBLISHED)
    submission.save()
    _desk_append(locked, submission.pk)
    return Written(seq=event.seq, data=data, created=True)


def submissions_publish_due(*, now: datetime | None = None, limit: int = 100) -> list[Written]:
    """Publish every scheduled submission whose time has come (the scheduler calls this in each
    server process, about twice a second). Each is re-read under its blog's lock, so of two
    processes that find it due, one publishes it and the other finds it published."""
    now = now or timezone.now()
    due = list(
        Submission.objects.filter(state=Submission.State.SCHEDULED, publish_at__lte=now)
        .order_by("publish_at", "id").values_list("blog_id", "id")[:limit]
    )
    published = []
    for blog_id, submission_id in due:
        try:
            written = _due_publish(blog_id, submission_id, now)
        except (OperationalError, InterfaceError):
            raise  # the database itself: the caller's next run tries them all again
        except Exception:  # noqa: BLE001 - one bad submission must not hold up the others
            logger.exception("could not publish scheduled submission %s", submission_id)
            continue
        if written is not None:
            published.append(written)
    return published


def _due_publish(blog_id: int, submission_id: int, now: datetime) -> Written | None:
    """Publish one due submission, unless another process did first (re-read under the lock)."""
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        submission = (
            Submission.objects.select_related("photo")
            .filter(pk=submission_id, state=Submission.State.SCHEDULED, publish_at__lte=now)
            .first()
        )
        if submission is None:
            return None
        return _submission_publish_now(locked, submission, None)


# --- The desk: who writes for a blog ----------------------------------------------------------


def member_set(*, actor: Any, blog_id: int, user: Any, role: str) -> dict:
    """Give someone a role on the blog (owner and staff): editor or contributor."""
    _require_signed_in(actor)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        if not can_manage_blog(actor, locked):
            raise NotAllowed("only the blog's owner or staff may change who writes for it")
        if role not in Membership.Role.values:
            raise Invalid(f"role must be one of {', '.join(Membership.Role.values)}")
        if not user.is_active:
            raise Invalid("that account is disabled")
        if user.pk == locked.owner_id:
            raise Invalid("the owner's role is owner; hand the blog over to change it")
        membership, created = Membership.objects.get_or_create(
            blog=locked, user=user, defaults={"role": role, "added_by": actor},
        )
        if not created and membership.role != role:
            membership.role, membership.added_by = role, actor
            membership.save(update_fields=["role", "added_by", "updated_at"])
            _desk_access_changed_on_commit(locked.pk, user.pk)
    return member_json(user, role)


def member_remove(*, actor: Any, blog_id: int, user: Any) -> None:
    """Take someone off the blog (owner and staff). Their submissions stay on the desk."""
    _require_signed_in(actor)
    with transaction.atomic():
        locked = _blog(blog_id, lock=True)
        if not can_manage_blog(actor, locked):
            raise NotAllowed("only the blog's owner or staff may change who writes for it")
        if user.pk == locked.owner_id:
            raise Invalid("the owner cannot be removed; hand the blog over first")
        if Membership.objects.filter(blog=locked, user=user).delete()[0]:
            _desk_access_changed_on_commit(locked.pk, user.pk)


def _desk_access_changed_on_commit(blog_id: int, user_id: int) -> None:
    """The person's open desk connections to this blog end (they reconnect with what their
    new role allows, or are refused)."""
    def publish_access_changed() -> None:
        broadcast.desk_access_changed(blog_id=blog_id, user_id=user_id)

    transaction.on_commit(publish_access_changed, robust=True)


# --- Web Push subscriptions -------------------------------------------------------------------


def push_subscribe(*, blog_id: int, subscription: Any, address: str | None) -> bool:
    """Store a browser's push subscription to a blog's key events (anyone may: readers are
    not signed in). True if it is new; a known endpoint gets its keys updated. The endpoint
    must be https on a public host (push/endpoints.py; its addresses are checked at each send,
    never here: no DNS in a request), and the blog and
    the client's address each hold a bounded number (checked without the blog's lock, which
    would hold up its authors: concurrent subscribes may pass a bound by a few)."""
    cleaned = push_endpoints.clean_subscription(subscription)
    push_endpoints.check_host(push_endpoints.endpoint_host(cleaned.endpoint)[0])
    network = push_endpoints.client_network(address)
    keys = {"p256dh": cleaned.p256dh, "auth": cleaned.auth}
    with transaction.atomic():
        _blog(blog_id)
        if PushSubscription.objects.filter(blog_id=blog_id, endpoint=cleaned.endpoint).update(
                **keys):
            return False
        total, mine = push_subscription_counts(blog_id, network)
        if mine >= settings.LIVEBLOG_PUSH_MAX_PER_ADDRESS:
            raise TooMany("too many push subscriptions from this address")
        if total >= settings.LIVEBLOG_PUSH_MAX_PER_BLOG:
            raise Conflict("this blog has as many push subscriptions as it takes",
                           code="subscriptions_full")
        try:
            with transaction.atomic():
                PushSubscription.objects.create(
                    blog_id=blog_id, endpoint=cleaned.endpoint, client_network=network, **keys
                )
        except IntegrityError:  # the same endpoint, subscribed a moment ago
            return False
    return True


def push_unsubscribe(*, blog_id: int, endpoint: Any) -> bool:
    """Forget a subscription (its endpoint is the browser's secret). True if there was one."""
    if not isinstance(endpoint, str) or len(endpoint) > PushSubscription.ENDPOINT_MAX_CHARS:
        raise Invalid("endpoint must be the subscription's endpoint URL")
    _blog(blog_id)
    return PushSubscription.objects.filter(blog_id=blog_id, endpoint=endpoint).delete()[0] > 0


PUSH_WRITE_CHUNK = 500  # ids per statement: under SQLite's bound on parameters


def push_deliveries_record(*, sent: list[int], gone: list[int], failed: dict[int, str]) -> None:
    """After a batch: drop what push services said is gone (404/410), note when each
    subscription was last sent to, or why it failed."""
    now = timezone.now()
    subscriptions = PushSubscription.objects
    for start in range(0, len(gone), PUSH_WRITE_CHUNK):
        subscriptions.filter(pk__in=gone[start:start + PUSH_WRITE_CHUNK]).delete()
    for start in range(0, len(sent), PUSH_WRITE_CHUNK):
        subscriptions.filter(pk__in=sent[start:start + PUSH_WRITE_CHUNK]).update(
            last_sent_at=now, last_error="")
    by_error: dict[str, list[int]] = {}
    for subscription_id, error in failed.items():
        by_error.setdefault(error[:200], []).append(subscription_id)
    for error, ids in by_error.items():
        for start in range(0, len(ids), PUSH_WRITE_CHUNK):
            subscriptions.filter(pk__in=ids[start:start + PUSH_WRITE_CHUNK]).update(
                last_error=error, last_error_at=now)
