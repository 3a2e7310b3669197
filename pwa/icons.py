"""Draw the app's icons with Pillow: the Liveblog mark (a white dot broadcasting, on red).

    .venv/bin/python -m pwa.icons        # writes static/pwa/*.png (committed)

Sizes: 192 and 512 for the manifest, a 512 maskable one (the mark inside the 80 % safe zone, the
red filling the whole square so any mask shape works), a 180 apple-touch-icon, a 32 favicon, and a
96 notification badge (Android's status bar draws only its alpha: the white mark, no square).
"""

from pathlib import Path

from PIL import Image, ImageDraw

RED = (179, 18, 46, 255)
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "pwa"
SUPERSAMPLE = 4  # draw big, then shrink: smooth edges without an anti-aliasing library


def mark(
    size: int, *, maskable: bool = False, rounded: bool = True, badge: bool = False
) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if badge:
        pass  # the mark alone, on transparency
    elif maskable or not rounded:
        draw.rectangle((0, 0, big, big), fill=RED)
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=RED)
    # The mark fills 60 % of a plain icon, 48 % of a maskable one (inside its safe zone).
    scale = 0.48 if maskable else 0.9 if badge else 0.6
    centre = big / 2
    unit = big * scale / 2
    dot = unit * 0.3
    draw.ellipse((centre - dot, centre - dot, centre + dot, centre + dot), fill=WHITE)
    width = max(1, round(unit * 0.16))
    for radius, sweep in ((unit * 0.62, 50), (unit * 0.98, 46)):
        box = (centre - radius, centre - radius, centre + radius, centre + radius)
        draw.arc(box, 180 - sweep, 180 + sweep, fill=WHITE, width=width)
        draw.arc(box, -sweep, sweep, fill=WHITE, width=width)
    return image.resize((size, size), Image.Resampling.LANCZOS)


ICONS = {
    "icon-192.png": lambda: mark(192),
    "icon-512.png": lambda: mark(512),
    "icon-maskable-512.png": lambda: mark(512, maskable=True),
    # iOS rounds the corners itself and shows transparency as black: a full square.
    "apple-touch-icon.png": lambda: mark(180, rounded=False).convert("RGB"),
    "favicon-32.png": lambda: mark(32),
    "badge-96.png": lambda: mark(96, badge=True),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, draw in ICONS.items():
        draw().save(OUT / name, optimize=True)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
