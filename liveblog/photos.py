"""Photos in posts: check an uploaded image and make web-sized JPEG variants without metadata.

Pure image work (no storage, no database): `process_photo` takes the uploaded file and returns
the encoded variants; services.py stores them. Phones put the place a photo was taken in its
EXIF (GPS), so nothing of the original file's metadata survives: the pixels are decoded, turned
upright, and encoded afresh.

Colour profiles: a small RGB profile (at most ICC_KEEP_MAX_BYTES: a phone's Display P3 is about
0.5 KB, sRGB 3 KB) is kept in every variant, so wide-gamut colours stay right. Any other profile —
a large one (embedded profiles can be 15 MB of lookup tables, which would be copied into all
five variants and every reader's download) or a CMYK or grey one, which cannot describe RGB
output — is applied instead: the pixels are converted to sRGB with LittleCMS (PIL.ImageCms) and
the variants carry no profile (browsers take untagged images as sRGB). A profile LittleCMS cannot
read is dropped and the pixels kept as they are.
"""

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import Invalid, TooLarge

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
VARIANT_WIDTHS = (320, 640, 1024, 1600, 2048)
JPEG_QUALITY = 82
# Larger profiles are applied to the pixels (to sRGB) rather than copied into each variant.
ICC_KEEP_MAX_BYTES = 4096
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# A profile's colour space → the image mode LittleCMS converts from, and the decoded modes it
# can describe (a profile that does not fit the pixels is ignored, as browsers do).
_PROFILE_MODES = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}
_FITTING_MODES = {"RGB": {"RGB", "RGBA", "RGBX", "P", "PA"}, "CMYK": {"CMYK"}, "GRAY": {"L", "LA"}}


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
    image, icc_profile, original = _decode(upload)
    widths = variant_widths(original[0])
    variants = []
    # Each variant is resized from the next larger one: far cheaper than going back to a
    # 40-megapixel original every time, and every step is still a plain downscale.
    source = image
    for width in reversed(widths):
        size = _scaled_size(original, width)
        if source.size != size:
            source = _shrink(source, size)
        variants.append(Variant(*size, _encode(source, icc_profile)))
    return variants[::-1]


def _scaled_size(original: tuple[int, int], width: int) -> tuple[int, int]:
    """The size of a variant `width` wide, from the original's (upright) size."""
    return width, max(1, round(original[1] * width / original[0]))


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


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


def _decode(upload: File) -> tuple[Image.Image, bytes | None, tuple[int, int]]:
    """The photo's pixels, upright and in RGB on white (converted to sRGB and shrunk to the
    largest variant when its profile is not kept), the profile to keep, and its upright size.

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
    image, original = _eight_bit(image), image.size
    icc_profile = image.info.get("icc_profile")
    if isinstance(icc_profile, bytes) and icc_profile and not _keepable(icc_profile):
        image, icc_profile = _to_srgb(image, icc_profile), None
    return _flattened_rgb(image), icc_profile or None, original


def _check_pixels(image: Image.Image) -> None:
    # The header's size, checked before decoding: a tiny file can claim gigapixels.
    if image.width * image.height > settings.LIVEBLOG_MAX_PHOTO_PIXELS:
        raise Invalid(_too_many_pixels())


def _too_many_pixels() -> str:
    limit = settings.LIVEBLOG_MAX_PHOTO_PIXELS
    return f"photo has more than {limit / 1_000_000:g} megapixels"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _keepable(profile: bytes) -> bool:
    """Small and RGB: it carries no personal data and keeps colours right, at little cost."""
    return len(profile) <= ICC_KEEP_MAX_BYTES and profile[16:20] == b"RGB "


def _to_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    """The pixels converted from their profile to sRGB (alpha kept); unchanged when the
    profile cannot be read or does not fit the pixels."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        space = source.profile.xcolor_space.strip()
        if image.mode not in _FITTING_MODES.get(space, ()):
            return image
        pixels, alpha = image.convert(_PROFILE_MODES[space]), _alpha(image)
        # Only the largest variant's pixels are converted: 20x cheaper for 40 megapixels.
        size = _scaled_size(image.size, min(image.width, VARIANT_WIDTHS[-1]))
        if size != image.size:
            pixels = _shrink(pixels, size)
            alpha = None if alpha is None else _shrink(alpha, size)
        converted = ImageCms.profileToProfile(
            pixels, source, _SRGB, outputMode="RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, KeyError, OSError, ValueError):
        return image
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greys scaled to 8 bits (a plain conversion would clip them to white)."""
    if image.mode in {"I", "F"} or image.mode.startswith("I;"):
        info = image.info
        image = image.convert("I").point(lambda value: value / 256).convert("L")
        image.info = info
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA"} or (
        image.mode in {"P", "L", "RGB"} and "transparency" in image.info
    )


def _alpha(image: Image.Image) -> Image.Image | None:
    return image.convert("RGBA").getchannel("A") if _has_alpha(image) else None


def _flattened_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparency is laid on white (JPEG has none)."""
    if not _has_alpha(image):
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
