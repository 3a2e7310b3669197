"""What a push says: the JSON the service worker shows as a notification (the spec's contract:
blog, title, post, seq, text, image, url). Built once per post, encrypted per subscription."""

from __future__ import annotations

import json

from django.core.files.storage import default_storage

from ..models import Post
from ..rendering import cut_text, plain_text

TEXT_CHARS = 280
# A notification's image is shown at most a few hundred pixels wide: the widest variant up to
# this, so a phone never downloads a full-size photo for it.
IMAGE_MAX_WIDTH = 800
# RFC 8291 leaves 4096 - 86 (header) - 17 (padding delimiter and tag) bytes for the message;
# push services refuse more. Long titles or storage URLs are cut to stay under it.
PAYLOAD_MAX_BYTES = 3993


def image_url(post: Post) -> str | None:
    if post.photo is None or not post.photo.variants:
        return None
    variants = sorted(post.photo.variants, key=lambda variant: variant["width"])
    fitting = [variant for variant in variants if variant["width"] <= IMAGE_MAX_WIDTH]
    return default_storage.url((fitting[-1] if fitting else variants[0])["name"])


def payload(post: Post, seq: int) -> bytes:
    """The push message for a post (its blog and photo loaded), UTF-8 JSON."""
    text = plain_text(post.html) or (post.photo.alt if post.photo else "")
    data = {
        "blog": post.blog.slug, "title": post.blog.title, "post": post.pk, "seq": seq,
        "text": cut_text(text, TEXT_CHARS), "image": image_url(post),
        "url": f"/liveblog/{post.blog.slug}/#post-{post.pk}",
    }
    encoded = _encode(data)
    if len(encoded) > PAYLOAD_MAX_BYTES:  # a very long storage URL or title: drop, then cut
        data["image"] = None
        data["title"] = cut_text(data["title"], 80)
        encoded = _encode(data)
    return encoded


def _encode(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
