"""Every read. A snapshot's `head` and posts agree; a replay is exactly `since+1 … head`."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from .errors import Invalid, NotFound
from .models import Blog, Event, Post
from .protocol import post_json

POSTS_PAGE_DEFAULT = 20
POSTS_PAGE_MAX = 100
EVENTS_PAGE_DEFAULT = 100
EVENTS_PAGE_MAX = 1000
SNAPSHOT_PINNED_MAX = 20
# Consistent reads retry while writers move the head; past this they take the write lock.
_CONSISTENT_READ_ATTEMPTS = 5
# The blog fields a reader sees; read together with the head they are current at.
_BLOG_STATE = ["head", "epoch", "title", "description", "status"]


def blog_list() -> QuerySet[Blog]:
    return Blog.objects.select_related("owner").order_by("-created_at")


def blog_get(slug: str) -> Blog:
    try:
        return Blog.objects.get(slug=slug)
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {slug!r}") from None


def blog_head(blog_id: int) -> int:
    return Blog.objects.filter(pk=blog_id).values_list("head", flat=True).get()


def blog_position(blog_id: int) -> tuple[int, str]:
    """The committed (head, epoch) of a blog."""
    return Blog.objects.filter(pk=blog_id).values_list("head", "epoch").get()


def blog_positions(blog_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Committed (head, epoch) of several blogs in one query (the hub's heartbeat)."""
    rows = Blog.objects.filter(pk__in=blog_ids).values_list("pk", "head", "epoch")
    return {pk: (head, epoch) for pk, head, epoch in rows}


def _visible_posts(blog: Blog) -> QuerySet[Post]:
    return Post.objects.filter(blog=blog, deleted_at__isnull=True).select_related(
        "author", "photo"
    )


@dataclass(frozen=True)
class PostsPage:
    blog: Blog
    head: int
    posts: list[dict]
    next_before: int | None


def _page(
    blog: Blog, *, before: int | None, limit: int, with_pinned: bool
) -> tuple[list[dict], int | None]:
    query = _visible_posts(blog).order_by("-id")
    if before is not None:
        query = query.filter(id__lt=before)
    rows = list(query[: limit + 1])  # one more than asked tells whether there is more
    more = len(rows) > limit
    rows = rows[:limit]
    if with_pinned:
        # Pinned posts stay on top of the feed even when older than the first page.
        shown = {post.id for post in rows}
        pinned = _visible_posts(blog).filter(pinned=True).order_by("-id")[:SNAPSHOT_PINNED_MAX]
        rows += [post for post in pinned if post.id not in shown]
    return [post_json(post) for post in rows], (rows[limit - 1].id if more else None)


def posts_page(
    blog: Blog, *, before: int | None = None, limit: int = POSTS_PAGE_DEFAULT,
    with_pinned: bool = False,
) -> PostsPage:
    """Visible posts newest first, with the head they are current at.

    The head is read before and after the posts: equal values mean no write committed in
    between (every visible change moves the head), so posts and head agree without holding
    a transaction, which on SQLite would mean taking the write lock for a read.
    """
    if not 1 <= limit <= POSTS_PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {POSTS_PAGE_MAX}")
    for _ in range(_CONSISTENT_READ_ATTEMPTS):
        blog.refresh_from_db(fields=_BLOG_STATE)
        posts, next_before = _page(blog, before=before, limit=limit, with_pinned=with_pinned)
        if blog_head(blog.pk) == blog.head:
            break
    else:
        with transaction.atomic():
            locked = Blog.objects.select_for_update().get(pk=blog.pk)
            for field in _BLOG_STATE:
                setattr(blog, field, getattr(locked, field))
            posts, next_before = _page(blog, before=before, limit=limit, with_pinned=with_pinned)
    return PostsPage(blog=blog, head=blog.head, posts=posts, next_before=next_before)


def blog_snapshot(blog: Blog) -> PostsPage:
    """What a new reader starts from: the newest page of posts plus pinned ones."""
    return posts_page(blog, with_pinned=True)


@dataclass(frozen=True)
class Replay:
    head: int
    frames: list[str]


def events_since(
    blog: Blog, since: int, *, limit: int | None = None, head: int | None = None
) -> Replay:
    """Stored event frames `since+1 … head` (at most `limit`), in order.

    Events are immutable and the head moves in the transaction that writes them, so every
    event up to a head read before is already committed. `head` saves that read when the
    caller has just made it."""
    if head is None:
        head = blog_head(blog.pk)
    query = Event.objects.filter(blog=blog, seq__gt=since, seq__lte=head).order_by("seq")
    if limit is not None:
        query = query[:limit]
    return Replay(head=head, frames=list(query.values_list("frame", flat=True)))


def events_range(blog_id: int, epoch: str, after: int, upto: int) -> list[tuple[int, str]]:
    """Frames `after+1 … upto` of that epoch (the hub filling a gap the channel layer left);
    none if the log has started over since."""
    return list(
        Event.objects.filter(blog_id=blog_id, blog__epoch=epoch, seq__gt=after, seq__lte=upto)
        .order_by("seq")
        .values_list("seq", "frame")
    )


def needs_snapshot(
    *, since: int | None, epoch: str | None, current_epoch: str, head: int
) -> bool:
    """A client starts over when it has no position, holds another epoch's numbers, claims a
    seq beyond the head, or is further behind than the replay window."""
    return (
        since is None
        or (epoch is not None and epoch != current_epoch)
        or since > head
        or head - since > settings.LIVEBLOG_REPLAY_WINDOW
    )


@dataclass(frozen=True)
class CatchUp:
    """What a (re)connecting reader is sent: a snapshot, or the replay frames."""

    head: int
    snapshot: PostsPage | None
    frames: list[str]


def catch_up(
    blog: Blog, *, since: int | None, epoch: str | None, limit: int | None = None
) -> CatchUp:
    """The reads behind a websocket connect or resync, and the events API (which pages the
    replay with `limit`; the websocket sends all of it)."""
    blog.refresh_from_db(fields=_BLOG_STATE)
    if needs_snapshot(since=since, epoch=epoch, current_epoch=blog.epoch, head=blog.head):
        page = blog_snapshot(blog)
        return CatchUp(head=page.head, snapshot=page, frames=[])
    replay = events_since(blog, since, limit=limit, head=blog.head)
    return CatchUp(head=replay.head, snapshot=None, frames=replay.frames)
