"""The VAPID key that signs every push request (RFC 8292), and the public key browsers
subscribe with.

LIVEBLOG_VAPID_PRIVATE_KEY holds the base64url raw 32-byte P-256 private key (the form
`npx web-push generate-vapid-keys` and py-vapid's `--gen` print). Without it, one key is
generated once into var/vapid_private_key.pem (mode 0600), like var/secret_key: every
process of the deployment must share it, as every subscription is bound to it. Changing it
orphans every subscription (browsers must subscribe again).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from py_vapid import Vapid02

# A VAPID token is good for at most 24 h (RFC 8292); ours for 12 h, reused for 1 h per push
# service, so a burst of a thousand pushes signs once per service, not a thousand times.
TOKEN_SECONDS = 12 * 3600
REUSE_SECONDS = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _generated(path: Path) -> bytes:
    """The PEM in `path`, written once: a new key goes to a temporary file that is then linked
    into place, so concurrent processes agree on one key and none reads half a file."""
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made one first: use that one
        finally:
            temporary.unlink()
    return path.read_bytes()


@cache
def signer() -> Vapid02:
    if raw := settings.LIVEBLOG_VAPID_PRIVATE_KEY:
        return Vapid02.from_raw(raw.encode())
    return Vapid02.from_pem(_generated(Path(settings.LIVEBLOG_VAPID_KEY_FILE)))


def public_key() -> str:
    """The application server key browsers subscribe with: the uncompressed point, base64url."""
    point = signer().public_key.public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    return _b64url(point)


_tokens: dict[str, tuple[float, str]] = {}
_tokens_lock = threading.Lock()


def authorization(endpoint: str) -> str:
    """The `Authorization: vapid t=…, k=…` header for a push service (its origin is the
    token's audience)."""
    parts = urlsplit(endpoint)
    audience = f"{parts.scheme}://{parts.netloc}"
    now = time.time()
    with _tokens_lock:
        made, header = _tokens.get(audience, (0.0, ""))
        if now - made < REUSE_SECONDS:
            return header
    claims = {"aud": audience, "exp": int(now) + TOKEN_SECONDS,
              "sub": settings.LIVEBLOG_VAPID_SUBJECT}
    header = signer().sign(claims)["Authorization"]
    with _tokens_lock:
        _tokens[audience] = (now, header)
    return header


def forget() -> None:
    """Tests: read the key from the settings again."""
    signer.cache_clear()
    with _tokens_lock:
        _tokens.clear()
