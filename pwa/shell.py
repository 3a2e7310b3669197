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


def _shell_names() -> list[str]:
    return sorted(
        name for name in staticfiles_storage.hashed_files
        if name.startswith(SHELL_STATIC_PREFIXES) and name.endswith(SHELL_SUFFIXES)
        and name not in NOT_IN_SHELL
    )
SERVICE_WORKER_SOURCE = Path(__file__).resolve().parent.parent / "templates" / "pwa" / "sw.js"


@lru_cache(maxsize=1)
def shell() -> tuple[tuple[str, ...], str]:
    """(precache URLs, version). The static names are the hashed ones from the staticfiles
    manifest, so any changed file changes a URL, and with it the version: a deploy that changes
    the app always ships a new service worker. Read once per process (the manifest is fixed
    until the next deploy restarts the server)."""
    urls = (*(staticfiles_storage.url(name) for name in _shell_names()), reverse("offline"))
    digest = hashlib.sha256(json.dumps(urls).encode())
    digest.update(SERVICE_WORKER_SOURCE.read_bytes())
    return urls, digest.hexdigest()[:12]


def shell_size_bytes() -> int:
    """The precached static files' size on disk (uncompressed), for the docs and the notes."""
    return sum(
        staticfiles_storage.size(staticfiles_storage.hashed_files[name])
        for name in _shell_names()
    )
