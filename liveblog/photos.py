"""Photos in posts: check an uploaded image and make web-sized JPEG variants without metadata.

Pure image work (no storage, no database): `process_photo` takes the uploaded file and returns
the encoded variants; services.py stores them. Phones put the place a photo was taken in its
EXIF (GPS), so nothing of the original file's metadata survives: the pixels are decoded, turned
upright, and encoded afresh.
"""

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Invalid, TooLarge

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
VARIANT_WIDTHS = (320, 640, 1024, 1600, 2048)
JPEG_QUALITY = 82


@dataclass(frozen=True)
class Variant:
    width: int
    height: int
    data: bytes  # a JPEG file


def process_photo(upload: File) -> list[Variant]:
    """The variants of an uploaded photo, narrowest first.

    Raises TooLarge for a file over LIVEBLOG_MAX_PHOTO_BYTES, Invalid for anything that is
    not a complete JPEG, PNG, WebP or GIF (first frame) of at most LIVEBLOG_MAX_PHOTO_PIXELS.
    """
    _check_size(upload)
    image, icc_profile = _decode(upload)
    widths = variant_widths(image.width)
    variants = []
    # Each variant is resized from the next larger one: far cheaper than going back to a
    # 40-megapixel original every time, and every step is still a plain downscale.
    source = image
    for width in reversed(widths):
        height = max(1, round(image.height * width / image.width))
        if source.size != (width, height):
            source = source.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        variants.append(Variant(width, height, _encode(source, icc_profile)))
    return variants[::-1]


def variant_widths(original_width: int) -> list[int]:
    """The standard widths narrower than the original, plus the original capped at the largest."""
    largest = min(original_width, VARIANT_WIDTHS[-1])
    return sorted({width for width in VARIANT_WIDTHS if width < largest} | {largest})


def _check_size(upload: File) -> None:
    limit = settings.LIVEBLOG_MAX_PHOTO_BYTES
    if upload.size > limit:
        raise TooLarge(f"photo is larger than {_megabytes(limit)}")
    if upload.size == 0:
        raise Invalid("photo is an empty file")


def _decode(upload: File) -> tuple[Image.Image, bytes | None]:
    """The photo's pixels, upright and in RGB on white, and an RGB colour profile if it has one.

    Decodes the whole image now, so a truncated or corrupt file is refused here rather than
    half-drawn later."""
    upload.seek(0)
    try:
        with Image.open(upload, formats=ACCEPTED_FORMATS) as opened:
            _check_pixels(opened)
            opened.load()
            # A new image (a copy when already upright): `opened` is closed on leaving `with`.
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise Invalid("photo must be a JPEG, PNG, WebP or GIF image") from None
    except Image.DecompressionBombError:
        raise Invalid(_too_many_pixels()) from None
    except Invalid:
        raise
    except Exception:
        # Pillow's decoders report a broken file in many ways (OSError for truncated data,
        # SyntaxError for a bad PNG chunk, ValueError, EOFError, zlib and struct errors…):
        # for an upload they all mean the same thing.
        raise Invalid("photo is truncated or corrupt") from None
    icc_profile = _rgb_icc_profile(image)
    return _flattened_rgb(image), icc_profile


def _check_pixels(image: Image.Image) -> None:
    # The header's size, checked before decoding: a tiny file can claim gigapixels.
    if image.width * image.height > settings.LIVEBLOG_MAX_PHOTO_PIXELS:
        raise Invalid(_too_many_pixels())


def _too_many_pixels() -> str:
    limit = settings.LIVEBLOG_MAX_PHOTO_PIXELS
    return f"photo has more than {limit / 1_000_000:g} megapixels"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _rgb_icc_profile(image: Image.Image) -> bytes | None:
    """The colour profile, if it describes RGB (a phone's Display P3, say): it carries no
    personal data and keeps colours right. A CMYK or grey profile would not fit the RGB output."""
    profile = image.info.get("icc_profile")
    if isinstance(profile, bytes) and profile[16:20] == b"RGB ":
        return profile
    return None


def _flattened_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparency is laid on white (JPEG has none)."""
    if image.mode in {"I", "F"} or image.mode.startswith("I;"):
        # 16-bit and float greys would clip to white in a plain conversion: scale to 8 bits.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    has_alpha = image.mode in {"RGBA", "LA", "PA"} or (
        image.mode in {"P", "L", "RGB"} and "transparency" in image.info
    )
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, "white")
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _encode(image: Image.Image, icc_profile: bytes | None) -> bytes:
    # Pillow copies some metadata from `info` into what it saves (a JPEG comment, say); start
    # from none at all, and name the only thing kept.
    image.info = {}
    out = io.BytesIO()
    options = {"quality": JPEG_QUALITY, "progressive": True, "optimize": True}
    if icc_profile:
        options["icc_profile"] = icc_profile
    image.save(out, "JPEG", **options)
    return out.getvalue()
