"""Pages worth measuring: a reader page seeded through the API as a newsroom's would look (a
description, a key event, a link, real JPEG photos with alt text). Shared by the Lighthouse runs
(e2e/test_lighthouse.py, `make lighthouse`) and the `page` benchmark."""

from __future__ import annotations

import io

from PIL import Image

from .daphne import ApiClient

# The first posts, as e2e/test_lighthouse.py has always seeded them (a key event, a linked post, a
# photo with its alt text), so `image-alt` and the link audits have something to judge.
FIRST_POSTS = 4


def jpeg(width: int = 320, height: int = 240, *, grain: int = 0, number: int = 0) -> bytes:
    """A JPEG upload. With `grain`, noise over a colour that differs by `number`: it compresses
    like a photo (hundreds of KB at 1600 px), not like a flat colour (a few KB)."""
    colour = (30 + 37 * number % 200, 110, 60 + 53 * number % 190)
    image = Image.new("RGB", (width, height), colour)
    if grain:
        noise = Image.effect_noise((width, height), grain).convert("RGB")
        image = Image.blend(image, noise, 0.35)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def seed_blog(api: ApiClient, slug: str, posts: int = FIRST_POSTS, *, photo_every: int = 0,
              photo_size: tuple[int, int] = (320, 240)) -> None:
    """A blog's description and `posts` posts, oldest first: the first four as above, then
    numbered updates, every `photo_every`-th of them a photo of `photo_size` (0: none)."""
    status, answer = api.request("PATCH", f"/api/liveblog/{slug}/", {
        "description": "Every kick of the cup final at Wembley, as it happens.",
    })
    assert status == 200, answer
    api.post(slug, "Kick-off at Wembley: the final is under way", key_event=True)
    api.post(slug, "Both sides unchanged. [The team sheets](https://example.com/team-sheets)")
    api.post_photo(slug, jpeg(), alt="Fans fill the stands before kick-off")
    api.post(slug, "A quiet spell in midfield")
    width, height = photo_size
    for number in range(FIRST_POSTS + 1, posts + 1):
        text = f"Update {number}: pressure builds on the visitors' left flank"
        if photo_every and number % photo_every == 0:
            api.post_photo(slug, jpeg(width, height, grain=64, number=number),
                           alt=f"Players contest the ball in minute {number * 3}", body=text)
        else:
            api.post(slug, text)
