"""Every read. A snapshot's `head` and posts agree; a replay is exactly `since+1 … head`.

Selectors take ids and return what they read: plain values (a frozen `BlogState`, a `PostsPage`
with the head and epoch it is current at). They never change their arguments.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from .errors import Invalid, NotFound
from .models import (
    Blog,
    DeskEvent,
    DeskStream,
    Event,
    Membership,
    Post,
    PushSubscription,
    Submission,
    SubmissionAction,
)
from .permissions import PUBLISHING_ROLES
from .protocol import needs_snapshot, post_json, submission_json

POSTS_PAGE_DEFAULT = 20
POSTS_PAGE_MAX = 100
EVENTS_PAGE_DEFAULT = 100
EVENTS_PAGE_MAX = 1000
SNAPSHOT_PINNED_MAX = 20
# Consistent reads retry while writers move the head; past this they take the write lock.
_CONSISTENT_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class BlogState:
    """A blog as readers see it, read at one moment, with the head it was current at."""

    id: int
    slug: str
    title: str
    description: str
    status: str
    epoch: str
    head: int
    created_at: datetime

    @property
    def pk(self) -> int:
        return self.id


_BLOG_STATE = list(BlogState.__dataclass_fields__)


def blog_list() -> QuerySet[Blog]:
    return Blog.objects.select_related("owner").order_by("-created_at")


def blog_get(slug: str) -> Blog:
    """The blog as a model (pages and permission checks); a fresh instance per call."""
    try:
        return Blog.objects.get(slug=slug)
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {slug!r}") from None


def blog_id(slug: str) -> int:
    try:
        return Blog.objects.filter(slug=slug).values_list("pk", flat=True).get()
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {slug!r}") from None


def blog_state(blog_id: int, *, lock: bool = False) -> BlogState:
    """The blog as readers see it; `lock`: under the row lock (inside a transaction)."""
    query = Blog.objects.select_for_update() if lock else Blog.objects
    try:
        return BlogState(**query.filter(pk=blog_id).values(*_BLOG_STATE).get())
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {blog_id}") from None


def blog_head(blog_id: int) -> int:
    return Blog.objects.filter(pk=blog_id).values_list("head", flat=True).get()


def blog_position(blog_id: int) -> tuple[int, str]:
    """The committed (head, epoch) of a blog."""
    try:
        return Blog.objects.filter(pk=blog_id).values_list("head", "epoch").get()
    except Blog.DoesNotExist:
        raise NotFound(f"no blog {blog_id}") from None


def feed_version(slug: str) -> tuple[int, str, datetime | None] | None:
    """A blog's committed (head, epoch, time of its last event) in one query, or None for no
    such blog: what tells a feed reader whether anything changed."""
    last_event = Event.objects.filter(blog=OuterRef("pk"), seq=OuterRef("head")).values(
        "created_at"
    )[:1]
    return (
        Blog.objects.filter(slug=slug).annotate(last_at=Subquery(last_event))
        .values_list("head", "epoch", "last_at").first()
    )


@dataclass(frozen=True)
class BlogDates:
    """When a blog's coverage began and last changed (its structured data's dates)."""

    first_post_at: datetime | None  # the earliest post, deleted ones included: it never moves
    last_event_at: datetime | None  # the event at the committed head


def blog_dates(blog_id: int) -> BlogDates:
    """Both dates in one query."""
    first_post = Post.objects.filter(blog=OuterRef("pk")).order_by("id").values("created_at")[:1]
    last_event = Event.objects.filter(blog=OuterRef("pk"), seq=OuterRef("head")).values(
        "created_at"
    )[:1]
    first, last = (
        Blog.objects.filter(pk=blog_id)
        .annotate(first_post_at=Subquery(first_post), last_event_at=Subquery(last_event))
        .values_list("first_post_at", "last_event_at").get()
    )
    return BlogDates(first_post_at=first, last_event_at=last)


def blog_positions(blog_ids: list[int]) -> dict[int, tuple[int, str, str]]:
    """Committed (head, epoch, slug) of several blogs in one query (the hub's heartbeat)."""
    rows = Blog.objects.filter(pk__in=blog_ids).values_list("pk", "head", "epoch", "slug")
    return {pk: (head, epoch, slug) for pk, head, epoch, slug in rows}


def log_tail(blog_id: int, window: int) -> tuple[int, str, list[tuple[int, str]]]:
    """The committed head and epoch, and the events of the last `window` seqs up to it (what a
    hub starting to serve a blog keeps in memory)."""
    head, epoch = blog_position(blog_id)
    return head, epoch, events_range(blog_id, epoch, max(0, head - window), head)


def _visible_posts(blog_id: int) -> QuerySet[Post]:
    return Post.objects.filter(blog_id=blog_id, deleted_at__isnull=True).select_related(
        "author", "photo"
    )


@dataclass(frozen=True)
class PostsPage:
    """Visible posts, newest first, and the blog as it was when they were read."""

    blog: BlogState
    posts: list[dict]
    next_before: int | None

    @property
    def head(self) -> int:
        return self.blog.head

    @property
    def epoch(self) -> str:
        return self.blog.epoch


def _page(
    blog_id: int, *, before: int | None, limit: int, with_pinned: bool
) -> tuple[list[dict], int | None]:
    query = _visible_posts(blog_id).order_by("-id")
    if before is not None:
        query = query.filter(id__lt=before)
    rows = list(query[: limit + 1])  # one more than asked tells whether there is more
    more = len(rows) > limit
    rows = rows[:limit]
    if with_pinned:
        # Pinned posts stay on top of the feed even when older than the first page.
        shown = {post.id for post in rows}
        pinned = _visible_posts(blog_id).filter(pinned=True).order_by("-id")[:SNAPSHOT_PINNED_MAX]
        rows += [post for post in pinned if post.id not in shown]
    return [post_json(post) for post in rows], (rows[limit - 1].id if more else None)


def posts_page(
    blog_id: int, *, before: int | None = None, limit: int = POSTS_PAGE_DEFAULT,
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
        state = blog_state(blog_id)
        posts, next_before = _page(blog_id, before=before, limit=limit, with_pinned=with_pinned)
        if blog_head(blog_id) == state.head:
            break
    else:
        with transaction.atomic():
            state = blog_state(blog_id, lock=True)  # writers wait until the posts are read
            posts, next_before = _page(
                blog_id, before=before, limit=limit, with_pinned=with_pinned
            )
    return PostsPage(blog=state, posts=posts, next_before=next_before)


def blog_snapshot(blog_id: int) -> PostsPage:
    """What a new reader starts from: the newest page of posts plus pinned ones."""
    return posts_page(blog_id, with_pinned=True)


def events_since(blog_id: int, since: int, *, head: int, limit: int) -> list[str]:
    """Stored event frames `since+1 … head` (at most `limit`), in order.

    Events are immutable and the head moves in the transaction that writes them, so every
    event up to a head read before is already committed."""
    query = Event.objects.filter(blog_id=blog_id, seq__gt=since, seq__lte=head).order_by("seq")
    return list(query.values_list("frame", flat=True)[:limit])


def events_range(blog_id: int, epoch: str, after: int, upto: int) -> list[tuple[int, str]]:
    """Frames `after+1 … upto` of that epoch (the hub filling a gap the channel layer left);
    none if the log has started over since."""
    return list(
        Event.objects.filter(blog_id=blog_id, blog__epoch=epoch, seq__gt=after, seq__lte=upto)
        .order_by("seq")
        .values_list("seq", "frame")
    )


@dataclass(frozen=True)
class EventsPage:
    epoch: str
    head: int
    frames: list[str]


def events_page(
    blog_id: int, *, since: int, epoch: str | None, limit: int
) -> EventsPage | PostsPage:
    """The events API: the log after `since` (at most `limit` events), or a snapshot when the
    client must start over (the same rule as the websocket, protocol.needs_snapshot)."""
    head, current_epoch = blog_position(blog_id)
    if needs_snapshot(since=since, epoch=epoch, current_epoch=current_epoch, head=head,
                      window=settings.LIVEBLOG_REPLAY_WINDOW):
        return blog_snapshot(blog_id)
    return EventsPage(epoch=current_epoch, head=head,
                      frames=events_since(blog_id, since, head=head, limit=limit))


# --- The desk (never a public read) -----------------------------------------------------------

# The desk shows what is still open, and this many of the newest decided (published, withdrawn)
# for context: a blog's desk history can be long, a phone's screen is not.
DESK_DECIDED_SHOWN = 30
_DESK_OPEN = (Submission.State.SUBMITTED, Submission.State.RETURNED, Submission.State.SCHEDULED)


def desk_audience(role: str, user_id: int) -> str:
    """The desk log a person follows: every submission for whoever publishes, their own for a
    contributor."""
    if role in PUBLISHING_ROLES:
        return DeskStream.EDITORS
    return f"user:{user_id}"


def submissions_for_json() -> QuerySet[Submission]:
    """Submissions with what their JSON needs (author, photo, history with its actors)."""
    return Submission.objects.select_related("author", "photo").prefetch_related(
        Prefetch("actions", queryset=SubmissionAction.objects.select_related("actor"))
    )


@dataclass(frozen=True)
class DeskSnapshot:
    epoch: str
    head: int
    submissions: list[dict]


def desk_stream(blog_id: int, audience: str) -> DeskStream:
    """The desk log (made empty on first use: a person may open the desk before anything was
    submitted)."""
    stream, _ = DeskStream.objects.get_or_create(blog_id=blog_id, audience=audience)
    return stream


def _desk_submissions(blog_id: int, audience: str) -> QuerySet[Submission]:
    query = Submission.objects.filter(blog_id=blog_id)
    if audience != DeskStream.EDITORS:
        query = query.filter(author_id=int(audience.removeprefix("user:")))
    return query


def desk_snapshot(blog_id: int, audience: str) -> DeskSnapshot:
    """The desk as one log sees it: its open submissions and the newest decided ones, oldest
    first, with the head they are current at (one transaction, like a feed snapshot)."""
    with transaction.atomic():
        stream = desk_stream(blog_id, audience)
        stream = DeskStream.objects.get(pk=stream.pk)
        mine = _desk_submissions(blog_id, audience)
        open_ids = list(mine.filter(state__in=_DESK_OPEN).values_list("id", flat=True))
        decided_ids = list(
            mine.exclude(state__in=_DESK_OPEN).order_by("-id")
            .values_list("id", flat=True)[:DESK_DECIDED_SHOWN]
        )
        rows = submissions_for_json().filter(pk__in=open_ids + decided_ids).order_by("id")
        return DeskSnapshot(
            epoch=stream.epoch, head=stream.head,
            submissions=[submission_json(row) for row in rows],
        )


def desk_position(stream_id: int) -> tuple[int, str]:
    """A desk log's committed (head, epoch)."""
    return DeskStream.objects.values_list("head", "epoch").get(pk=stream_id)


def desk_events_range(stream_id: int, epoch: str, after: int, upto: int) -> list[tuple[int, str]]:
    """A desk log's stored frames `after+1 … upto` of that epoch (none if the epoch moved on)."""
    if not DeskStream.objects.filter(pk=stream_id, epoch=epoch).exists():
        return []
    return list(
        DeskEvent.objects.filter(stream_id=stream_id, seq__gt=after, seq__lte=upto)
        .order_by("seq").values_list("seq", "frame")
    )


# --- The desk: reads for the API and the admin (small, each one query or two) --------------------


def submission_get(blog_id: int, submission_id: int) -> Submission:
    """One submission of the blog with what its JSON needs; NotFound in another blog. Callers
    check who may see it (permissions.can_revise_submission) before answering with it."""
    found = submissions_for_json().filter(blog_id=blog_id, pk=submission_id).first()
    if found is None:
        raise NotFound(f"no submission {submission_id} in this blog")
    return found


def blog_members(blog_id: int) -> list[tuple[object, str]]:
    """(user, role) of everyone who writes for the blog: the owner first, then the members by
    role (editors, then contributors) and name."""
    blog = Blog.objects.select_related("owner").get(pk=blog_id)
    rows = (
        Membership.objects.filter(blog_id=blog_id).exclude(user_id=blog.owner_id)
        .select_related("user").order_by("-role", "user__username")
    )
    return [(blog.owner, "owner"), *((row.user, row.role) for row in rows)]


def user_by_username(username: str) -> object:
    """An account by its username (the admin's, the API's and the commands' way to name one)."""
    found = get_user_model().objects.filter(username=username).first()
    if found is None:
        raise NotFound(f"no user {username!r}")
    return found


# --- Web Push ---------------------------------------------------------------------------------

PUSH_READ_CHUNK = 2000


def push_post(blog_id: int, post_id: int) -> Post | None:
    """A key event about to be pushed, with its blog and photo; None once it is deleted or no
    longer a key event (nothing is pushed for it then)."""
    return (
        Post.objects.select_related("blog", "photo")
        .filter(blog_id=blog_id, pk=post_id, deleted_at__isnull=True, key_event=True)
        .first()
    )


def push_subscriptions(blog_id: int) -> Iterator[tuple[int, str, str, str]]:
    """(id, endpoint, p256dh, auth) of every subscription to the blog, read in chunks."""
    return (
        PushSubscription.objects.filter(blog_id=blog_id).order_by("id")
        .values_list("id", "endpoint", "p256dh", "auth").iterator(chunk_size=PUSH_READ_CHUNK)
    )


def push_subscription_counts(blog_id: int, client_network: str) -> tuple[int, int]:
    """How many subscriptions the blog has, and how many came from this client network."""
    subscriptions = PushSubscription.objects.filter(blog_id=blog_id)
    return subscriptions.count(), subscriptions.filter(client_network=client_network).count()
