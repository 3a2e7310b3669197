"""Photos in posts: upload through the API, checks and limits, metadata stripped, variants,
storage, serving, idempotent retries, deletion, and the photo in every shape readers get."""

import io
import json
import struct
import uuid
import zlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, ImageCms

from liveblog import photos, services
from liveblog.models import Event, Photo, Post
from project.media import DESK_MEDIA_CACHE_CONTROL, MEDIA_CACHE_CONTROL, media_urlpatterns
from tests.support.comms import Reader

POSTS_URL = "/api/liveblog/final/posts"
EVENTS_URL = "/api/liveblog/final/events"
PHOTO_KEYS = {"src", "srcset", "width", "height", "alt"}
GPS_IFD = 0x8825
ORIENTATION = 0x0112
XMP = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>Taken at the secret location</x:xmpmeta>"
COMMENT = b"secret comment"


# --- Images -----------------------------------------------------------------------------------


def gps_exif(*, orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: camera, and where the photo was taken."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.5)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (13.0, 24.0, 3.0)  # GPSLongitudeRef, GPSLongitude
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return exif


def two_halves(size=(600, 400), left="red", right="blue", mode="RGB") -> Image.Image:
    image = Image.new(mode, size, right)
    image.paste(Image.new(mode, (size[0] // 2, size[1]), left), (0, 0))
    return image


def encoded(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def phone_jpeg(size=(2400, 1600), *, orientation: int | None = None) -> bytes:
    """A camera JPEG carrying GPS EXIF, XMP and a comment."""
    return encoded(
        two_halves(size), exif=gps_exif(orientation=orientation), xmp=XMP, comment=COMMENT,
        quality=90,
    )


def noisy_jpeg(size=(2400, 1600)) -> bytes:
    """Large enough (a few MB) that Django spools the upload to a temporary file."""
    noise = Image.merge("RGB", [Image.effect_noise(size, 80) for _ in range(3)])
    return encoded(noise, exif=gps_exif(), quality=92)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing a huge image, with almost no data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- Requests and storage ---------------------------------------------------------------------


def new_photo_post(data: bytes | None = None, **fields) -> dict:
    form = {
        "client_id": str(uuid.uuid4()), "body": "The crowd at the gate",
        "photo_alt": "Fans waving scarves at the north gate",
        "photo": upload(phone_jpeg() if data is None else data), **fields,
    }
    return {name: value for name, value in form.items() if value is not None}


def multipart(client, data: dict, url: str = POSTS_URL, **extra):
    """A multipart/form-data POST (the Django test client's default encoding)."""
    return client.post(url, data, **extra)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_error(response, status, code=None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"error", "detail"} and data["detail"]
    if code is not None:
        assert data["error"] == code
    return data


def stored_files(root) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def assert_nothing_written(blog, media_root) -> None:
    assert not Post.objects.filter(blog=blog).exists()
    assert not Event.objects.filter(blog=blog).exists()
    assert not Photo.objects.exists()
    assert stored_files(media_root) == []
    blog.refresh_from_db()
    assert blog.head == 0


def srcset_entries(photo: dict) -> list[tuple[str, int]]:
    entries = []
    for item in photo["srcset"].split(", "):
        url, width = item.rsplit(" ", 1)
        assert width.endswith("w")
        entries.append((url, int(width[:-1])))
    return entries


def storage_name(url: str) -> str:
    assert url.startswith("/media/")
    return url.removeprefix("/media/")


def open_stored(name: str) -> tuple[Image.Image, bytes]:
    with default_storage.open(name) as handle:
        data = handle.read()
    return Image.open(io.BytesIO(data)), data


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores its photos in its own directory, never in the repository's media/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


@pytest.fixture
def author_client(author, blog):
    return signed_in(author)


# --- Publishing a photo -----------------------------------------------------------------------


@pytest.mark.django_db
def test_photo_post_answers_201_with_the_photo(author_client, blog, author, media_root):
    form = new_photo_post(key_event="true")
    response = multipart(author_client, form)
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"seq", "post"} and data["seq"] == 1
    post = data["post"]
    assert post["client_id"] == form["client_id"]
    assert post["body"] == "The crowd at the gate"
    assert post["html"] == "<p>The crowd at the gate</p>"  # the photo is not in the html
    assert (post["key_event"], post["pinned"]) == (True, False)

    photo = post["photo"]
    assert set(photo) == PHOTO_KEYS
    assert photo["alt"] == "Fans waving scarves at the north gate"
    assert (photo["width"], photo["height"]) == (2048, 1365)  # the largest variant
    entries = srcset_entries(photo)
    assert [width for _, width in entries] == [320, 640, 1024, 1600, 2048]
    assert photo["src"] == dict((width, url) for url, width in entries)[1024]
    for url, width in entries:
        assert url.startswith("/media/liveblog/photos/final/")
        assert url.endswith(f"-{width}.jpg")
    assert len(stored_files(media_root)) == 5

    row = Post.objects.select_related("photo").get(pk=post["id"])
    assert row.photo.uploaded_by == author and row.photo.blog == blog
    assert [variant["width"] for variant in row.photo.variants] == [320, 640, 1024, 1600, 2048]
    assert json.loads(Event.objects.get(blog=blog, seq=1).frame)["post"] == post


@pytest.mark.django_db
def test_stored_variants_carry_no_metadata(author_client, blog):
    source = Image.open(io.BytesIO(phone_jpeg()))
    assert source.getexif().get_ifd(GPS_IFD) and "xmp" in source.info  # the test's premise

    photo = multipart(author_client, new_photo_post()).json()["post"]["photo"]
    for url, width in srcset_entries(photo):
        image, data = open_stored(storage_name(url))
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.width == width
        assert image.height == round(1600 * width / 2400)
        assert not image.getexif()
        assert not {"exif", "xmp", "comment", "photoshop"} & set(image.info)
        assert image.info.get("progressive")
        for marker in (b"Exif\x00\x00", b"GPS", b"secret", b"xmpmeta", b"PhoneMaker"):
            assert marker not in data


@pytest.mark.django_db
def test_exif_orientation_is_applied(author_client):
    # Orientation 6: the sensor's image is to be turned 90 degrees clockwise to be upright.
    form = new_photo_post(phone_jpeg((600, 400), orientation=6))
    photo = multipart(author_client, form).json()["post"]["photo"]
    assert (photo["width"], photo["height"]) == (400, 600)
    image, _ = open_stored(storage_name(photo["src"]))
    assert image.size == (400, 600)
    assert not image.getexif().get(ORIENTATION)
    # Turned clockwise, the red left half is now the top half.
    red, blue = image.getpixel((200, 100)), image.getpixel((200, 500))
    assert red[0] > 200 and red[2] < 60
    assert blue[2] > 200 and blue[0] < 60


@pytest.mark.django_db
def test_large_upload_spooled_to_a_temporary_file_is_processed(author_client, media_root):
    data = noisy_jpeg()
    assert len(data) > 2.5 * 1024 * 1024  # beyond FILE_UPLOAD_MAX_MEMORY_SIZE
    response = multipart(author_client, new_photo_post(data))
    assert response.status_code == 201
    assert len(stored_files(media_root)) == 5
    for url, _ in srcset_entries(response.json()["post"]["photo"]):
        assert not open_stored(storage_name(url))[0].getexif()


@pytest.mark.django_db
def test_a_narrow_photo_keeps_its_own_width(author_client):
    photo = multipart(author_client, new_photo_post(phone_jpeg((800, 600)))).json()["post"][
        "photo"
    ]
    assert [width for _, width in srcset_entries(photo)] == [320, 640, 800]
    assert photo["src"].endswith("-800.jpg")  # all are narrower than 1024: the largest
    assert (photo["width"], photo["height"]) == (800, 600)


@pytest.mark.parametrize(
    ("original", "widths"),
    [
        (100, [100]),
        (320, [320]),
        (321, [320, 321]),
        (800, [320, 640, 800]),
        (1024, [320, 640, 1024]),
        (2048, [320, 640, 1024, 1600, 2048]),
        (2049, [320, 640, 1024, 1600, 2048]),
        (6000, [320, 640, 1024, 1600, 2048]),
    ],
)
def test_variant_widths(original, widths):
    assert photos.variant_widths(original) == widths


@pytest.mark.django_db
def test_photo_post_may_have_an_empty_body(author_client):
    response = multipart(author_client, new_photo_post(body=""))
    assert response.status_code == 201
    post = response.json()["post"]
    assert (post["body"], post["html"]) == ("", "")
    assert post["photo"]["alt"]


@pytest.mark.django_db
def test_photo_post_without_a_body_field_is_accepted(author_client):
    form = new_photo_post()
    del form["body"]
    assert multipart(author_client, form).status_code == 201


@pytest.mark.django_db
def test_photo_alt_is_stored_trimmed(author_client):
    form = new_photo_post(photo_alt="  A goal, from the stands  ")
    assert multipart(author_client, form).json()["post"]["photo"]["alt"] == (
        "A goal, from the stands"
    )


@pytest.mark.django_db
def test_photo_alt_of_300_characters_is_accepted(author_client):
    assert multipart(author_client, new_photo_post(photo_alt="a" * 300)).status_code == 201


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (Image.new("RGBA", (40, 30), (0, 0, 0, 0)), "PNG", (255, 255, 255)),
        (Image.new("LA", (40, 30), (0, 0)), "PNG", (255, 255, 255)),
        (Image.new("RGB", (40, 30), (0, 128, 0)), "WEBP", (0, 128, 0)),
        (Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (Image.new("I;16", (40, 30), 32768), "PNG", (128, 128, 128)),
    ],
    ids=["transparent-png", "transparent-grey-png", "webp", "cmyk-jpeg", "16-bit-png"],
)
def test_formats_become_rgb_jpeg(image, fmt, expected):
    variants = photos.process_photo(ContentFile(encoded(image, fmt)))
    assert [variant.width for variant in variants] == [40]
    out = Image.open(io.BytesIO(variants[0].data))
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (40, 30))
    assert all(abs(a - b) <= 6 for a, b in zip(out.getpixel((20, 15)), expected, strict=True))


def test_animated_gif_keeps_its_first_frame():
    frames = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    variants = photos.process_photo(ContentFile(out.getvalue()))
    red = Image.open(io.BytesIO(variants[0].data)).getpixel((20, 15))
    assert red[0] > 200 and red[2] < 60


def test_an_rgb_colour_profile_is_kept_and_nothing_else():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encoded(Image.new("RGB", (40, 30), "red"), icc_profile=srgb, exif=gps_exif())
    out = Image.open(io.BytesIO(photos.process_photo(ContentFile(source))[0].data))
    assert out.info.get("icc_profile") == srgb
    assert not out.getexif()


def test_a_cmyk_colour_profile_is_dropped():
    # Not a real CMYK profile, but the header says CMYK: it would not describe RGB output.
    cmyk = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    cmyk[16:20] = b"CMYK"
    source = encoded(Image.new("CMYK", (40, 30)), icc_profile=bytes(cmyk))
    out = Image.open(io.BytesIO(photos.process_photo(ContentFile(source))[0].data))
    assert "icc_profile" not in out.info


def swapped_primaries_profile(pad_to: int = 0) -> bytes:
    """An RGB profile whose red and green primaries are sRGB's swapped (so red pixels in it are
    green in sRGB), padded with unreferenced bytes to `pad_to`: a large non-sRGB profile."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", profile[128:132])[0]
    entries = {bytes(profile[132 + 12 * i:136 + 12 * i]): 136 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    profile[red:red + 8], profile[green:green + 8] = profile[green:green + 8], profile[red:red + 8]
    profile[84:100] = bytes(16)  # no profile ID (it would no longer match)
    profile += bytes(max(0, pad_to - len(profile)))
    profile[0:4] = struct.pack(">I", len(profile))
    return bytes(profile)


def test_a_large_colour_profile_is_applied_to_the_pixels_and_dropped():
    large = swapped_primaries_profile(pad_to=2 * 1024 * 1024)
    assert len(large) > photos.ICC_KEEP_MAX_BYTES
    source = encoded(two_halves(size=(1200, 800), left="red", right="blue"), icc_profile=large)
    variants = photos.process_photo(ContentFile(source))
    assert [variant.width for variant in variants] == [320, 640, 1024, 1200]
    for variant in variants:
        out = Image.open(io.BytesIO(variant.data))
        assert "icc_profile" not in out.info
        assert len(variant.data) < 64 * 1024  # two flat halves: a few KB, not 2 MiB
    largest = Image.open(io.BytesIO(variants[-1].data))
    # Converted to sRGB: "red" in the swapped profile is green; blue stays blue.
    green, blue = largest.getpixel((300, 400)), largest.getpixel((900, 400))
    assert green[1] > 200 and green[0] < 60 and green[2] < 60, green
    assert blue[2] > 200 and blue[0] < 60 and blue[1] < 60, blue


def test_a_small_rgb_profile_is_kept_as_it_is():
    small = swapped_primaries_profile()
    assert len(small) <= photos.ICC_KEEP_MAX_BYTES
    source = encoded(Image.new("RGB", (40, 30), "red"), icc_profile=small)
    out = Image.open(io.BytesIO(photos.process_photo(ContentFile(source))[0].data))
    assert out.info.get("icc_profile") == small
    red = out.getpixel((20, 15))  # left for the browser to apply
    assert red[0] > 200 and red[1] < 60


def test_a_large_profile_keeps_transparency_on_white():
    large = swapped_primaries_profile(pad_to=64 * 1024)
    image = Image.new("RGBA", (40, 30), (255, 0, 0, 255))
    image.paste(Image.new("RGBA", (20, 30), (0, 0, 0, 0)), (20, 0))
    out = Image.open(io.BytesIO(
        photos.process_photo(ContentFile(encoded(image, "PNG", icc_profile=large)))[0].data))
    assert "icc_profile" not in out.info
    green, white = out.getpixel((5, 15)), out.getpixel((35, 15))
    assert green[1] > 200 and green[0] < 60, green
    assert min(white) > 240, white


def test_an_unreadable_large_profile_is_dropped_and_the_pixels_kept():
    junk = b"\0\0\0\0" + b"mntrRGB " + bytes(8 * 1024)
    source = encoded(Image.new("RGB", (40, 30), "red"), icc_profile=junk)
    out = Image.open(io.BytesIO(photos.process_photo(ContentFile(source))[0].data))
    assert "icc_profile" not in out.info
    red = out.getpixel((20, 15))
    assert red[0] > 200 and red[1] < 60


# --- Serving ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_photo_url_is_served_with_a_long_cache(author_client, client):
    photo = multipart(author_client, new_photo_post()).json()["post"]["photo"]
    response = client.get(photo["src"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == MEDIA_CACHE_CONTROL
    assert MEDIA_CACHE_CONTROL == "public, max-age=31536000, immutable"
    body = b"".join(response.streaming_content)
    assert body == open_stored(storage_name(photo["src"]))[1]
    assert client.head(photo["src"]).status_code == 200


@pytest.mark.django_db
def test_a_desk_photo_is_served_no_store(author_client, client):
    """The desk asks for `?desk=1` (desk-view.js): possibly unpublished, kept nowhere."""
    photo = multipart(author_client, new_photo_post()).json()["post"]["photo"]
    response = client.get(f"{photo['src']}?desk=1")
    assert response.status_code == 200
    assert response["Cache-Control"] == DESK_MEDIA_CACHE_CONTROL == "private, no-store"
    assert b"".join(response.streaming_content) == open_stored(storage_name(photo["src"]))[1]


@pytest.mark.django_db
def test_media_answers_404_for_a_missing_file_and_405_for_writes(client, author_client):
    assert client.get("/media/liveblog/photos/final/nope-320.jpg").status_code == 404
    photo = multipart(author_client, new_photo_post()).json()["post"]["photo"]
    assert client.post(photo["src"]).status_code == 405


def test_media_is_not_routed_when_the_web_server_serves_it(settings):
    assert [pattern.name for pattern in media_urlpatterns()] == ["media"]
    settings.LIVEBLOG_SERVE_MEDIA = False
    assert media_urlpatterns() == []
    settings.LIVEBLOG_SERVE_MEDIA = True
    settings.MEDIA_URL = "https://media.example.org/liveblog/"
    assert media_urlpatterns() == []


# --- Idempotency ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_with_the_same_client_id_answers_the_first_and_stores_nothing(
    author_client, blog, media_root, monkeypatch
):
    form = new_photo_post()
    first = multipart(author_client, form)
    assert first.status_code == 201
    files = stored_files(media_root)

    def no_image_work(upload):
        raise AssertionError("a retry must not decode the photo again")

    monkeypatch.setattr(photos, "process_photo", no_image_work)
    retry = dict(form, photo=upload(phone_jpeg((900, 700))))
    second = multipart(author_client, retry)
    assert second.status_code == 200
    assert second.content == first.content
    assert stored_files(media_root) == files
    assert Photo.objects.count() == 1 and Post.objects.count() == 1
    assert Event.objects.filter(blog=blog).count() == 1


@pytest.mark.django_db
def test_retry_of_a_text_post_with_a_photo_answers_the_text_post(author_client, media_root):
    client_id = str(uuid.uuid4())
    first = author_client.post(
        POSTS_URL, {"client_id": client_id, "body": "Kick-off"}, content_type="application/json"
    )
    second = multipart(author_client, new_photo_post(client_id=client_id))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.content == first.content
    assert second.json()["post"]["photo"] is None
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_files_are_removed_when_the_database_write_fails(blog, author, media_root, monkeypatch):
    def failing_append(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_event_append", failing_append)
    with pytest.raises(RuntimeError):
        services.post_create(
            actor=author, blog_id=blog.pk, client_id=uuid.uuid4(), body="", photo_alt="A photo",
            photo=ContentFile(phone_jpeg((700, 500)), name="photo.jpg"),
        )
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_files_are_removed_when_a_concurrent_create_won(blog, author, media_root, monkeypatch):
    """The client_id check under the lock finds the post another request just made."""
    client_id = uuid.uuid4()
    real_insert = services._post_insert

    def insert_after_a_rival(*args, **kwargs):
        monkeypatch.setattr(services, "_post_insert", real_insert)
        services.post_create(actor=author, blog_id=blog.pk, client_id=client_id, body="First")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(services, "_post_insert", insert_after_a_rival)
    written = services.post_create(
        actor=author, blog_id=blog.pk, client_id=client_id, body="", photo_alt="A photo",
        photo=ContentFile(phone_jpeg((700, 500)), name="photo.jpg"),
    )
    assert not written.created and written.data["body"] == "First"
    assert stored_files(media_root) == []
    assert not Photo.objects.exists()


# --- Refusals: nothing is written -------------------------------------------------------------


def truncated_jpeg() -> bytes:
    data = phone_jpeg((1200, 800))
    return data[: len(data) // 2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make_form", "status", "code"),
    [
        (lambda: new_photo_post(b"this is not an image at all"), 400, "invalid"),
        (lambda: new_photo_post(truncated_jpeg()), 400, "invalid"),
        (lambda: new_photo_post(encoded(Image.new("RGB", (40, 30)), "BMP")), 400, "invalid"),
        (lambda: new_photo_post(encoded(Image.new("RGB", (40, 30)), "TIFF")), 400, "invalid"),
        (lambda: new_photo_post(png_claiming(50_000, 50_000)), 400, "invalid"),
        (lambda: new_photo_post(b""), 400, "invalid"),
        (lambda: new_photo_post(photo_alt=None), 400, "invalid"),
        (lambda: new_photo_post(photo_alt="   "), 400, "invalid"),
        (lambda: new_photo_post(photo_alt="a" * 301), 400, "too_long"),
        (lambda: new_photo_post(body="x" * 20001), 400, "too_long"),
        (lambda: new_photo_post(pinned="yes"), 400, "invalid"),
        (lambda: new_photo_post(client_id="not-a-uuid"), 400, "invalid"),
        (lambda: new_photo_post(client_id=None), 400, "invalid"),
        (lambda: new_photo_post(extra="field"), 400, "invalid"),
        (lambda: new_photo_post(photo="a text field, not a file"), 400, "invalid"),
        (lambda: {**new_photo_post(), "body": ["one", "two"]}, 400, "invalid"),
        (lambda: new_photo_post(photo=None, body=""), 400, "invalid"),
    ],
    ids=[
        "not-an-image", "truncated", "bmp", "tiff", "decompression-bomb", "empty-file",
        "missing-alt", "blank-alt", "alt-too-long", "body-too-long", "bad-flag", "bad-client-id",
        "no-client-id", "unknown-field", "photo-not-a-file", "field-twice",
        "no-photo-and-no-body",
    ],
)
def test_refused_uploads_write_nothing(author_client, blog, media_root, make_form, status, code):
    response = multipart(author_client, make_form())
    assert_error(response, status, code)
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_a_photo_over_the_byte_limit_is_413(author_client, blog, media_root, settings):
    data = phone_jpeg((1200, 800))
    settings.LIVEBLOG_MAX_PHOTO_BYTES = len(data) - 1
    detail = assert_error(multipart(author_client, new_photo_post(data)), 413, "too_large")
    assert "MiB" in detail["detail"]
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_a_photo_at_the_byte_limit_is_accepted(author_client, settings):
    data = phone_jpeg((1200, 800))
    settings.LIVEBLOG_MAX_PHOTO_BYTES = len(data)
    assert multipart(author_client, new_photo_post(data)).status_code == 201


@pytest.mark.django_db
def test_a_photo_over_the_pixel_limit_is_refused(author_client, blog, media_root, settings):
    settings.LIVEBLOG_MAX_PHOTO_PIXELS = 200 * 200
    response = multipart(author_client, new_photo_post(phone_jpeg((201, 200))))
    assert "megapixels" in assert_error(response, 400, "invalid")["detail"]
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_a_photo_at_the_pixel_limit_is_accepted(author_client, settings):
    settings.LIVEBLOG_MAX_PHOTO_PIXELS = 200 * 200
    assert multipart(author_client, new_photo_post(phone_jpeg((200, 200)))).status_code == 201


@pytest.mark.django_db
def test_a_request_over_the_size_limit_is_refused_before_it_is_read(
    author_client, blog, media_root, settings
):
    settings.LIVEBLOG_MAX_PHOTO_BYTES = 1000
    limit = 1000 + 1024 * 1024
    # The body is small: had the view read as much as the header claims, the test client's
    # payload would have raised instead of this answer.
    response = multipart(author_client, new_photo_post(), CONTENT_LENGTH=str(limit + 1))
    assert "request body" in assert_error(response, 413, "too_large")["detail"]
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_anonymous_multipart_is_401(client, blog, media_root):
    assert_error(multipart(client, new_photo_post()), 401, "not_authenticated")
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_non_author_multipart_is_403(stranger, blog, media_root):
    assert_error(multipart(signed_in(stranger), new_photo_post()), 403, "forbidden")
    assert_nothing_written(blog, media_root)


@pytest.mark.django_db
def test_multipart_needs_the_csrf_token(author, blog, media_root):
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    assert_error(multipart(client, new_photo_post()), 403, "csrf_failed")
    assert_nothing_written(blog, media_root)
    client.get("/liveblog/final/write/")
    token = client.cookies["csrftoken"].value
    response = multipart(client, new_photo_post(), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


@pytest.mark.django_db
def test_a_malformed_multipart_body_is_400_json(author_client, blog, media_root):
    response = author_client.post(
        POSTS_URL, data=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken",
        content_type="multipart/form-data",  # no boundary
    )
    assert_error(response, 400, "bad_form")
    assert_nothing_written(blog, media_root)


# --- Multipart without a photo ----------------------------------------------------------------


@pytest.mark.django_db
def test_multipart_without_a_photo_is_a_text_post(author_client, blog):
    form = {"client_id": str(uuid.uuid4()), "body": "**Goal!**", "pinned": "true",
            "key_event": "false", "photo_alt": ""}
    response = multipart(author_client, form)
    assert response.status_code == 201
    post = response.json()["post"]
    assert (post["html"], post["pinned"], post["key_event"]) == (
        "<p><strong>Goal!</strong></p>", True, False,
    )
    assert post["photo"] is None
    assert not Photo.objects.exists()


@pytest.mark.django_db
def test_json_create_still_needs_a_body(author_client, blog):
    response = author_client.post(
        POSTS_URL, {"client_id": str(uuid.uuid4()), "body": " "}, content_type="application/json"
    )
    assert_error(response, 400, "invalid")


# --- Editing and deleting ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_photo_posts_caption_may_be_emptied_and_the_photo_stays(author_client, blog):
    post = multipart(author_client, new_photo_post()).json()["post"]
    response = author_client.patch(
        f"{POSTS_URL}/{post['id']}", {"body": ""}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["post"]["photo"] == post["photo"]
    assert response.json()["post"]["body"] == ""


@pytest.mark.django_db
def test_deleting_a_post_removes_its_photo_files(
    author_client, client, blog, media_root, django_capture_on_commit_callbacks
):
    post = multipart(author_client, new_photo_post()).json()["post"]
    assert len(stored_files(media_root)) == 5
    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.delete(f"{POSTS_URL}/{post['id']}")
    assert response.status_code == 200
    assert stored_files(media_root) == []
    assert not Photo.objects.exists()
    assert Post.objects.get(pk=post["id"]).photo is None
    assert client.get(post["photo"]["src"]).status_code == 404
    # A late retry of the create still finds the tombstoned post and stores nothing.
    retry = multipart(author_client, new_photo_post(client_id=post["client_id"]))
    assert retry.status_code == 200
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_files_stay_until_the_deletion_commits(
    author_client, blog, media_root, django_capture_on_commit_callbacks
):
    post = multipart(author_client, new_photo_post()).json()["post"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        author_client.delete(f"{POSTS_URL}/{post['id']}")
    assert len(stored_files(media_root)) == 5
    for callback in callbacks:
        callback()
    assert stored_files(media_root) == []


# --- The photo in everything readers get ------------------------------------------------------


@pytest.mark.django_db
def test_event_frame_posts_page_and_snapshot_carry_the_photo(author_client, client, blog):
    post = multipart(author_client, new_photo_post()).json()["post"]
    events = client.get(EVENTS_URL, {"since": 0}).json()["events"]
    assert events[0]["kind"] == "post.created" and events[0]["post"]["photo"] == post["photo"]
    assert client.get(POSTS_URL).json()["posts"][0]["photo"] == post["photo"]
    snapshot = client.get(EVENTS_URL, {"since": 0, "epoch": "another"}).json()
    assert snapshot["type"] == "snapshot"
    assert snapshot["posts"][0]["photo"] == post["photo"]


@pytest.mark.django_db
def test_reader_page_renders_the_photo(author_client, client, blog):
    form = new_photo_post(photo_alt='The "away" end <cheering>')
    post = multipart(author_client, form).json()["post"]
    html = client.get("/liveblog/final/").content.decode()
    photo = post["photo"]
    figure = (
        f'<figure class="post-photo"><img src="{photo["src"]}" srcset="{photo["srcset"]}" '
        f'sizes="(min-width: 48rem) 39rem, calc(100vw - 4rem)" width="2048" height="1365" '
        # The page's first post: its photo is likely the largest paint, so fetched at once.
        f'alt="The &quot;away&quot; end &lt;cheering&gt;" fetchpriority="high">'
        "</figure>"
    )
    assert figure in html
    assert html.index('<div class="post-body" dir="auto">') < html.index(figure)


@pytest.mark.django_db
def test_admin_post_page_shows_the_photo(author_client, blog, django_user_model):
    post = multipart(author_client, new_photo_post()).json()["post"]
    admin = django_user_model.objects.create_superuser("root", password="root-password")
    page = signed_in(admin).get(f"/admin/liveblog/post/{post['id']}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="{post["photo"]["src"]}"' in html
    assert "Fans waving scarves at the north gate" in html


@pytest.mark.django_db(transaction=True)
async def test_websocket_snapshot_and_live_event_carry_the_photo(blog, author):
    from channels.db import database_sync_to_async

    def publish(client_id):
        return services.post_create(
            actor=author, blog_id=blog.pk, client_id=client_id, body="", photo_alt="The stadium",
            photo=ContentFile(phone_jpeg((700, 500)), name="photo.jpg"),
        ).data

    first = await database_sync_to_async(publish)(uuid.uuid4())
    reader = await Reader.open(blog.slug)
    await reader.expect("hello")
    snapshot = await reader.expect("snapshot")
    assert snapshot["posts"][0]["photo"] == first["photo"]
    await reader.expect("live")
    second = await database_sync_to_async(publish)(uuid.uuid4())
    event = await reader.expect("event")
    assert event["post"]["photo"] == second["photo"]
    assert event["post"]["photo"]["alt"] == "The stadium"
    await reader.close()


def test_a_large_profile_on_a_wide_photo_gives_the_usual_variants():
    large = swapped_primaries_profile(pad_to=64 * 1024)
    source = encoded(two_halves(size=(3000, 2000)), icc_profile=large)
    variants = photos.process_photo(ContentFile(source))
    assert [(variant.width, variant.height) for variant in variants] == [
        (320, 213), (640, 427), (1024, 683), (1600, 1067), (2048, 1365)]
    assert all("icc_profile" not in Image.open(io.BytesIO(v.data)).info for v in variants)


def test_a_large_profile_that_does_not_fit_the_pixels_is_ignored():
    # An RGB profile on a greyscale PNG: browsers ignore it, and so does the conversion.
    large = swapped_primaries_profile(pad_to=64 * 1024)
    source = encoded(Image.new("L", (40, 30), 200), "PNG", icc_profile=large)
    out = Image.open(io.BytesIO(photos.process_photo(ContentFile(source))[0].data))
    assert "icc_profile" not in out.info
    assert all(abs(channel - 200) <= 3 for channel in out.getpixel((20, 15)))
