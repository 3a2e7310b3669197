"""The app shell: what the service worker precaches, and the version that names its cache."""

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import reverse

# The browser code, styles and icons of the app (not the admin's files), but not the large
# icons only an install uses (the browser fetches those itself, online, when installing).
SHELL_STATIC_PREFIXES = ("liveblog/", "pwa/")
# embed.js runs in other sites' pages, never in the app.
NOT_IN_SHELL = {"pwa/icon-512.png", "pwa/icon-maskable-512.png", "liveblog/embed.js"}
SHELL_SUFFIXES = (".js", ".css", ".svg", ".png")  # not READMEs and licences
# Only the author console loads these (its editor, the desk, the outbox and the Markdown preview's
# markdown-it: 62 of the shell's 126 KB compressed), so a reader's phone never downloads them:
# the worker caches them when a console opens (its AUTHOR_SHELL message) and, on a device that has
# opened one, at every install after that (templates/pwa/sw.js).
AUTHOR_ONLY = {
    "liveblog/console.js", "liveblog/desk.js", "liveblog/desk-state.js", "liveblog/desk-view.js",
    "liveblog/outbox.js", "liveblog/vendor/markdown-it.min.js",
}


def _shell_names() -> list[str]:
    return sorted(
        name for name in staticfiles_storage.hashed_files
        if name.startswith(SHELL_STATIC_PREFIXES) and name.endswith(SHELL_SUFFIXES)
        and name not in NOT_IN_SHELL
    )
SERVICE_WORKER_SOURCE = Path(__file__).resolve().parent.parent / "templates" / "pwa" / "sw.js"


def _reader_names() -> list[str]:
    return [name for name in _shell_names() if name not in AUTHOR_ONLY]


def author_shell() -> tuple[str, ...]:
    """The console's own files (AUTHOR_ONLY), by their hashed URLs."""
    return tuple(staticfiles_storage.url(name) for name in _shell_names() if name in AUTHOR_ONLY)


@lru_cache(maxsize=1)
def shell() -> tuple[tuple[str, ...], str]:
    """(precache URLs, version). The static names are the hashed ones from the staticfiles
    manifest, so any changed file changes a URL, and with it the version: a deploy that changes
    the app (the author's files included) always ships a new service worker. Read once per
    process (the manifest is fixed until the next deploy restarts the server)."""
    urls = (*(staticfiles_storage.url(name) for name in _reader_names()), reverse("offline"))
    digest = hashlib.sha256(json.dumps([urls, author_shell()]).encode())
    digest.update(SERVICE_WORKER_SOURCE.read_bytes())
    return urls, digest.hexdigest()[:12]


def shell_size_bytes() -> int:
    """The precached static files' size on disk (uncompressed), for the docs and the notes."""
    return sum(
        staticfiles_storage.size(staticfiles_storage.hashed_files[name])
        for name in _reader_names()
    )


def shell_compressed_bytes() -> int:
    """What installing downloads of the precached static files: WhiteNoise's gzip copy where
    collectstatic made one (it skips files that do not shrink, the PNGs), else the file."""
    total = 0
    for name in _reader_names():
        path = Path(staticfiles_storage.path(staticfiles_storage.hashed_files[name]))
        gzipped = path.with_name(path.name + ".gz")
        total += (gzipped if gzipped.exists() else path).stat().st_size
    return total
