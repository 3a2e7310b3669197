"""Blogs, their posts, and the per-blog event log (the source of truth readers replay from)."""

import secrets
import uuid

from django.conf import settings
from django.db import models


def new_epoch() -> str:
    return secrets.token_hex(8)


class Blog(models.Model):
    class Status(models.TextChoices):
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_blogs"
    )
    # Everyone who writes for the blog besides its owner, each with a role (Membership): editors
    # publish, contributors submit to the desk. The owner publishes and manages the roles.
    authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="authored_blogs", blank=True,
        through="Membership", through_fields=("blog", "user"),
    )
    # Changes whenever the log is reset or restored: clients holding seqs of another epoch
    # start over from a snapshot.
    epoch = models.CharField(max_length=32, default=new_epoch, editable=False)
    # Newest seq; incremented in the same transaction as the change it numbers.
    head = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the blog was last set to ended (None while live): the structured data's
    # coverageEndTime. Set by services.blog_update with the status.
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Full origins ("https://news.example") allowed to show /liveblog/<slug>/embed/ in a frame:
    # the embed view's CSP frame-ancestors. Empty: nobody. Set through services.blog_update.
    embed_origins = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Membership(models.Model):
    """A person's role on a blog. The owner's role is "owner" whatever this row says."""

    class Role(models.TextChoices):
        EDITOR = "editor", "Editor"
        CONTRIBUTOR = "contributor", "Contributor"

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="liveblog_memberships"
    )
    # Editor by default: whoever could write before roles existed published directly.
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.EDITOR)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blog", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class Photo(models.Model):
    """A photo attached to a post: web-sized JPEG variants in the default storage, made by
    liveblog/photos.py without the original's metadata (the original itself is not kept)."""

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="photos")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="liveblog_photos"
    )
    alt = models.CharField(max_length=300, help_text="Text alternative, written by the author")
    # Of the largest variant.
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # [{"name": storage name, "width", "height"}, …], narrowest first.
    variants = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.alt[:60]


class Post(models.Model):
    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="posts")
    client_id = models.UUIDField(default=uuid.uuid4, editable=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="liveblog_posts"
    )
    body = models.TextField(help_text="Markdown")
    html = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Deletion is a tombstone: the row stays so that a retried create with the same client_id
    # still finds it and does not post it again.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    pinned = models.BooleanField(default=False)
    key_event = models.BooleanField(default=False)
    photo = models.OneToOneField(
        Photo, null=True, blank=True, on_delete=models.SET_NULL, related_name="post"
    )
    # When its Web Push went out (queued on commit): a key event is pushed once, however often
    # its flag is turned off and on again. None: never pushed.
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["blog", "client_id"], name="post_unique_client_id"),
        ]
        indexes = [models.Index(fields=["blog", "deleted_at", "-id"], name="post_feed_idx")]

    def __str__(self) -> str:
        return self.body[:60]


class Event(models.Model):
    class Kind(models.TextChoices):
        POST_CREATED = "post.created"
        POST_UPDATED = "post.updated"
        POST_DELETED = "post.deleted"
        BLOG_UPDATED = "blog.updated"

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, null=True, blank=True)
    # The event frame exactly as sent on the wire, encoded once when the event is written.
    frame = models.TextField()
    # Who made the change (None: the scheduler, or an account deleted since). Never on the wire.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["blog", "seq"]
        constraints = [
            # The last line of defence behind the row lock: never two events with one number.
            models.UniqueConstraint(fields=["blog", "seq"], name="event_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.blog_id}#{self.seq} {self.kind}"


class Submission(models.Model):
    """A post on the desk: written by a contributor (or scheduled by an editor), not public.

    Nothing here is ever read by a public path: readers see posts, and a Post row exists only
    once the submission is published (the public log's post.created is appended then). Kept
    after publication as the post's history on the desk."""

    class State(models.TextChoices):
        SUBMITTED = "submitted", "Waiting for an editor"
        RETURNED = "returned", "Returned to its author"
        WITHDRAWN = "withdrawn", "Withdrawn by its author"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="submissions")
    client_id = models.UUIDField(default=uuid.uuid4, editable=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="liveblog_submissions"
    )
    body = models.TextField(blank=True, help_text="Markdown")
    html = models.TextField(editable=False)
    pinned = models.BooleanField(default=False)
    key_event = models.BooleanField(default=False)
    photo = models.OneToOneField(
        Photo, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.SUBMITTED)
    # The editor's note when returned.
    note = models.CharField(max_length=500, blank=True)
    # When a scheduled submission is due: kept in the database, so any process publishes it on
    # time (services.submissions_publish_due), restarts included.
    publish_at = models.DateTimeField(null=True, blank=True)
    # The public post made when it was published.
    post = models.OneToOneField(
        Post, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    # The seq its post.created took in the public log (kept: a log reset renumbers nothing here).
    published_seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["blog", "client_id"], name="submission_unique_client_id"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "publish_at"], name="submission_due_idx"),
            models.Index(fields=["blog", "state", "id"], name="submission_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.state}: {self.body[:60]}"


class SubmissionAction(models.Model):
    """Who did what to a submission, and when: its history on the desk and in the admin."""

    class Action(models.TextChoices):
        SUBMITTED = "submitted"
        REVISED = "revised"
        WITHDRAWN = "withdrawn"
        RETURNED = "returned"
        EDITED = "edited"
        SCHEDULED = "scheduled"
        PUBLISHED = "published"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="actions")
    # None for the scheduler (a scheduled submission published at its time).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S}"


class DeskStream(models.Model):
    """One numbered log of desk events: the editors' (every submission of the blog) or one
    author's (their own submissions). Same rules as the public log, never mixed with it."""

    EDITORS = "editors"

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="desk_streams")
    # EDITORS, or "user:<id>" for one author's own submissions.
    audience = models.CharField(max_length=40)
    epoch = models.CharField(max_length=32, default=new_epoch, editable=False)
    head = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blog", "audience"], name="desk_stream_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.blog_id}/{self.audience}@{self.head}"


class DeskEvent(models.Model):
    stream = models.ForeignKey(DeskStream, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    frame = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stream", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="desk_event_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.stream_id}#{self.seq}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription to one blog's key events (liveblog/push/). The
    endpoint is a URL the reader's browser handed us: it was checked when stored
    (https, public addresses) and is checked again at every send."""

    ENDPOINT_MAX_CHARS = 1024

    blog = models.ForeignKey(Blog, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=ENDPOINT_MAX_CHARS)
    # The browser's ECDH public key (65 bytes) and auth secret (16), base64url as it sent them.
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=40)
    # The client address it came from, as counted against LIVEBLOG_PUSH_MAX_PER_ADDRESS (IPv6
    # as its /64): bounds one client's share of a blog's subscriptions.
    client_network = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=200, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["blog", "endpoint"], name="push_unique_endpoint"),
        ]
        indexes = [
            models.Index(fields=["blog", "client_network"], name="push_address_idx"),
        ]

    def __str__(self) -> str:
        return self.endpoint[:80]
