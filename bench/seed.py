"""Fill a blog's log with real events, inside one `manage.py shell` process:

    manage.py shell -c "from bench.seed import main; main('match', 'reporter', 10000)"

Every event is made by liveblog.services.post_create (Markdown rendering, sanitizing, the seq
counter, the stored frame, the on_commit broadcast), batched in transactions. Prints one JSON
line with the timings.

The first and last `probe` posts are timed apart, so the output shows what a create costs on
an empty and on a full log (it must not grow with the log).
"""

import json
import time
import uuid

BATCH = 500


def body(number: int) -> str:
    """A typical update: a few sentences of Markdown with emphasis and a link."""
    return (
        f"**{number}'** Goal! A curling shot from the edge of the box, past the keeper's "
        "outstretched glove and in off the post. The away end erupts; the home bench is on "
        "its feet appealing for offside, but the flag stays down and VAR confirms it. "
        "[Watch the replay](https://example.com/replay) and *tell us* what you think."
    )


def _create(blog: object, author: object, numbers: range) -> float:
    """Create posts `numbers` in batched transactions; returns ms per post."""
    from django.db import transaction

    from liveblog import services

    started = time.monotonic()
    for start in range(numbers.start, numbers.stop, BATCH):
        with transaction.atomic():
            for number in range(start, min(start + BATCH, numbers.stop)):
                services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                                     body=body(number))
    return (time.monotonic() - started) * 1000 / max(1, len(numbers))


def main(slug: str, username: str, count: int, probe: int = 50) -> None:
    from django.contrib.auth import get_user_model
    from django.db.models import Avg
    from django.db.models.functions import Length

    from liveblog.models import Blog, Event

    author = get_user_model().objects.get(username=username)
    blog = Blog.objects.get(slug=slug)
    probe = min(probe, count // 2)
    started = time.monotonic()
    first_ms = _create(blog, author, range(0, probe))
    bulk_ms = _create(blog, author, range(probe, count - probe))
    last_ms = _create(blog, author, range(count - probe, count))
    blog.refresh_from_db()
    frames = Event.objects.filter(blog=blog).aggregate(size=Avg(Length("frame")))
    print(json.dumps({
        "events": blog.head, "seconds": round(time.monotonic() - started, 2),
        "probe_posts": probe, "create_ms_empty_log": round(first_ms, 2),
        "create_ms_full_log": round(last_ms, 2), "create_ms_bulk": round(bulk_ms, 2),
        "frame_bytes": round(frames["size"] or 0),
    }))
