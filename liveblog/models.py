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
    authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="authored_blogs", blank=True
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["blog", "seq"]
        constraints = [
            # The last line of defence behind the row lock: never two events with one number.
            models.UniqueConstraint(fields=["blog", "seq"], name="event_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.blog_id}#{self.seq} {self.kind}"
