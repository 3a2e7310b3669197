"""Settings: everything comes from the environment, with defaults that are safe to run locally.

Environment:
    SECRET_KEY        Django secret; when unset, one is generated once into var/secret_key.
    DEBUG             "1"/"true" to enable debug pages (default off).
    ALLOWED_HOSTS     comma-separated (default "127.0.0.1,localhost,[::1]"); with the port
                      daphne listens on, also websocket origins (project/origins.py).
    CSRF_TRUSTED_ORIGINS  comma-separated origins (https://live.example.com), for deployments
                      behind a TLS proxy; also the websocket origin allow-list there.
    LIVEBLOG_PLAIN_HTTP   "1": the site is plain http on purpose (make run, the tests' servers):
                      no redirect to https, no Secure-only cookies, no HSTS. Otherwise, with
                      DEBUG off, all three are on.
    SECURE_HSTS_SECONDS, SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD   HSTS (default
                      0: off, off, off).
    SECURE_PROXY_SSL  "1": believe X-Forwarded-Proto: https from any peer (LIVEBLOG_TRUSTED_PROXIES
                      is the safer way, for proxies it lists).
    SECURE_COOKIES    older switch for Secure cookies; when set, it still decides them.
    LIVEBLOG_IMAGE_HOSTS  comma-separated origins images may come from besides the site and
                      MEDIA_URL's origin (default none): CSP img-src and the Markdown sanitizer.
    DATABASE_URL      default sqlite:///db.sqlite3 in the repository root.
    REDIS_URL         when set, channels-redis carries events between processes.
    LIVEBLOG_REDIS_LAYER    "pubsub" (default) or "lists" (RedisChannelLayer), with REDIS_URL.
    LIVEBLOG_LAYER_CAPACITY, LIVEBLOG_LAYER_EXPIRY   per-channel queue limits of the "lists" and
                      in-memory layers (default 1000 messages, 30 s); beyond them events are
                      dropped by the layer and healed from the log.
    DATABASE_POOL_MIN, DATABASE_POOL_MAX   psycopg connection pool size with PostgreSQL.
    LIVEBLOG_HEARTBEAT_SECONDS, LIVEBLOG_REPLAY_WINDOW   wire-protocol knobs (see DESIGN.md).
    MEDIA_ROOT, MEDIA_URL   where uploaded photos are stored and served (default media/, /media/).
    LIVEBLOG_SERVE_MEDIA    serve MEDIA_URL from Django itself (default on; turn off in production).
    LIVEBLOG_MAX_PHOTO_BYTES, LIVEBLOG_MAX_PHOTO_PIXELS   upload limits for photos in posts.
    LIVEBLOG_OFFLINE_BLOGS, LIVEBLOG_OFFLINE_PHOTOS, LIVEBLOG_OFFLINE_PHOTO_BYTES   what a
                      reader's browser keeps for reading offline (blogs; photos, bytes).
    LIVEBLOG_MAX_BACKLOG_BYTES   unsent bytes a websocket may hold (default 1 MiB).
    LIVEBLOG_FRAME_RATE, LIVEBLOG_FRAME_BURST   frames a websocket client may send (1/s, 20).
    LIVEBLOG_MAX_SOCKETS_PER_ADDRESS   open websockets per client address per process (128).
    LIVEBLOG_HANDSHAKE_SECONDS   a new connection's request headers must arrive within (20).
    LIVEBLOG_DIRECT_WIRE    "0" sends websocket frames through ASGI instead of daphne's fast
                      path (default on; it turns itself off when Twisted or Autobahn lack
                      what it uses).
    LIVEBLOG_TRUSTED_PROXIES  comma-separated IPs or CIDRs of reverse proxies whose
                      X-Forwarded-For / X-Forwarded-Proto are believed (default none).
    LIVEBLOG_SIGNIN_FAILURES, LIVEBLOG_SIGNIN_ADDRESS_FAILURES, LIVEBLOG_SIGNIN_COOLOFF_MINUTES
                      sign-in lockout: failures per (username, address) pair (default 5) and
                      per address (default 50) before a lockout of 15 minutes.
    LIVEBLOG_THROTTLE_WRITES, LIVEBLOG_THROTTLE_ANON_READS, LIVEBLOG_THROTTLE_USER_READS
                      API throttles as "units/seconds" (defaults 60/60 per signed-in user,
                      600/60 per anonymous address, 1200/60 per signed-in user).
    LIVEBLOG_PUBLISHER_NAME, LIVEBLOG_PUBLISHER_LOGO   the publisher in reader pages' JSON-LD
                      (default "Liveblog" and the app's 512 px icon; a logo path is made absolute).
    LIVEBLOG_NEWS_ARTICLE   "1": the JSON-LD also holds a NewsArticle (default off).
    LIVEBLOG_SCHEDULER      "0" turns off the publishing of scheduled posts in server processes
                      (default on: every process running project.asgi publishes what fell due;
                      `manage.py liveblog_publish_due --loop` or cron does it instead).
    LIVEBLOG_SCHEDULER_SECONDS   how often each process looks for posts that fell due (0.5).
    LIVEBLOG_VAPID_PRIVATE_KEY   the VAPID private key for Web Push: the base64url raw 32-byte
                      P-256 key (as `npx web-push generate-vapid-keys` prints it); when unset,
                      one is generated once into var/vapid_private_key.pem.
    LIVEBLOG_VAPID_SUBJECT   the VAPID `sub` claim push services may contact (a mailto: or https:
                      URL; default mailto:webmaster@ the first named ALLOWED_HOSTS entry).
    LIVEBLOG_PUSH_INSECURE_ENDPOINTS   "1" accepts http and loopback push endpoints (tests and
                      local development only; off by default).
    LIVEBLOG_PUSH_MAX_PER_BLOG, LIVEBLOG_PUSH_MAX_PER_ADDRESS   push subscriptions per blog
                      (100000) and per client address (an IPv6 /64) per blog (20).
    LIVEBLOG_PUSH_SENDER    "0" sends no pushes from this process (default on).
    LIVEBLOG_PUSH_WORKERS, LIVEBLOG_PUSH_TTL_SECONDS, LIVEBLOG_PUSH_CONNECT_SECONDS,
    LIVEBLOG_PUSH_READ_SECONDS   the push sender's concurrency (32), TTL (6 h) and timeouts (3 s,
                      5 s).
    LIVEBLOG_THROTTLE_PUSH  push (un)subscribe requests per client address ("20/60").
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _secret_key() -> str:
    """The environment's key, else one generated once and kept in var/ (never a fixed default)."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sitemaps",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "liveblog",
    "pwa",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "project.i18n.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "project.viewer.ViewerMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "project.i18n.js_catalog",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# No persistent connections: under ASGI every request runs in a thread of its own, and a
# connection kept open in it would outlive the thread (Django's advice for ASGI). PostgreSQL
# gets a connection pool instead (psycopg's), so a request borrows rather than connects.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": int(os.environ.get("DATABASE_POOL_MIN", "2")),
            "max_size": int(os.environ.get("DATABASE_POOL_MAX", "20")),
            "timeout": 10,
        },
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE makes every write transaction take the
    # write lock up front, so concurrent writers queue on the busy timeout instead of failing
    # with "database is locked" when a read lock cannot be upgraded. The backend queues this
    # process's writers on a lock before that (project/sqlite/base.py): SQLite's busy handler
    # sleeps in steps rather than waiting for the lock's release.
    DATABASES["default"]["ENGINE"] = "project.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file too (not shared-cache memory), so they lock exactly like production;
    # one per test process, so that concurrent runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# redis-py 8 defaults socket_timeout to 5 s, the same as channels-redis's own blocking wait for
# messages: idle receivers would time out. Give it headroom.
_REDIS_HOSTS = [{"address": REDIS_URL, "socket_timeout": 30}]
# With Redis: "pubsub" (one PUBLISH per event, pushed to each process) or "lists" (channels-
# redis's RedisChannelLayer: a Lua script per group send, polled with BZPOPMIN). The choice and
# its measurements are in the README ("Scale-out").
LIVEBLOG_REDIS_LAYER = os.environ.get("LIVEBLOG_REDIS_LAYER", "pubsub")
_LAYER_CAPACITY = int(os.environ.get("LIVEBLOG_LAYER_CAPACITY", "1000"))
_LAYER_EXPIRY = int(os.environ.get("LIVEBLOG_LAYER_EXPIRY", "30"))
if REDIS_URL and LIVEBLOG_REDIS_LAYER == "lists":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": _REDIS_HOSTS,
                # One message per process per event (the hub), so a deep queue costs little and
                # rides out bursts; anything dropped beyond it is healed from the log.
                "capacity": _LAYER_CAPACITY,
                "expiry": _LAYER_EXPIRY,
                "group_expiry": 300,
            },
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": _REDIS_HOSTS},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {
                "capacity": _LAYER_CAPACITY, "expiry": _LAYER_EXPIRY, "group_expiry": 300,
            },
        }
    }

LIVEBLOG_HEARTBEAT_SECONDS = env_number("LIVEBLOG_HEARTBEAT_SECONDS", 15)
LIVEBLOG_REPLAY_WINDOW = int(os.environ.get("LIVEBLOG_REPLAY_WINDOW", "1000"))
# How long a blog's stream (its ring of recent events, its snapshot, its channel-layer group)
# outlives its last reader on a process: a reader who comes back within it (a phone's dropped
# connection, the next page view of an embed) is caught up from memory, not from a read of the
# log's tail. 0 ends it with its last reader.
LIVEBLOG_STREAM_LINGER_SECONDS = env_number(
    "LIVEBLOG_STREAM_LINGER_SECONDS", LIVEBLOG_HEARTBEAT_SECONDS
)
LIVEBLOG_MAX_FRAME_BYTES = 64 * 1024
# A reader with more than this unsent (daphne's write buffer; or queued frames under another
# ASGI server) is too slow: it is closed and comes back with `since`, so it never holds
# memory or the others up.
LIVEBLOG_MAX_BACKLOG_BYTES = int(os.environ.get("LIVEBLOG_MAX_BACKLOG_BYTES", str(1024 * 1024)))
LIVEBLOG_MAX_QUEUED_FRAMES = int(os.environ.get("LIVEBLOG_MAX_QUEUED_FRAMES", "256"))
# Frames a client may send: a bucket of LIVEBLOG_FRAME_BURST refilled at LIVEBLOG_FRAME_RATE a
# second. A reader sends a resync now and then (at most one per heartbeat), an author a post
# every few seconds; a burst of 20 covers an author sending what they typed offline at once.
# Beyond it a frame gets `rate_limited`; a client that keeps going (as many frames again) is
# closed with 1008. Each frame it is answered costs it a token too, so a flood costs its parsing.
LIVEBLOG_FRAME_RATE = env_number("LIVEBLOG_FRAME_RATE", 1)
LIVEBLOG_FRAME_BURST = int(os.environ.get("LIVEBLOG_FRAME_BURST", "20"))
# Open websockets per client address on one process (the address after the trusted-proxy
# rewrite). An office or a carrier NAT puts dozens of readers behind one address; far more
# than that from one address is someone holding sockets open. Each socket may hold up to
# LIVEBLOG_MAX_BACKLOG_BYTES, so this times that bounds what one address can pin in memory.
# A new connection's first request line and headers (a websocket upgrade's included) must all
# arrive within this (project/handshakes.py): a phone on a poor network sends them in a second
# or two; a client trickling them a byte at a time to hold connections open is dropped.
LIVEBLOG_HANDSHAKE_SECONDS = env_number("LIVEBLOG_HANDSHAKE_SECONDS", 20)
LIVEBLOG_MAX_SOCKETS_PER_ADDRESS = int(os.environ.get("LIVEBLOG_MAX_SOCKETS_PER_ADDRESS", "128"))
# Under daphne, frames go straight to the connection, framed once per process (the fast path,
# liveblog/live/wire.py); 0 sends them through ASGI instead. The fast path turns itself off when
# the Twisted/Autobahn internals it uses are missing.
LIVEBLOG_DIRECT_WIRE = env_bool("LIVEBLOG_DIRECT_WIRE", True)
# Full garbage collections between deliveries, at most this often (liveblog/live/gcpolicy.py).
LIVEBLOG_GC_POLICY = env_bool("LIVEBLOG_GC_POLICY", True)
LIVEBLOG_GC_FULL_EVERY_SECONDS = env_number("LIVEBLOG_GC_FULL_EVERY_SECONDS", 30)
LIVEBLOG_MAX_BODY_CHARS = int(os.environ.get("LIVEBLOG_MAX_BODY_CHARS", "20000"))
# Photos in posts: an upload larger than this is refused (413) before it is decoded, and a
# request whose Content-Length exceeds it by more than a MiB (room for the other fields) is
# refused before its body is parsed. The pixel cap stops decompression bombs before decoding.
LIVEBLOG_MAX_PHOTO_BYTES = int(os.environ.get("LIVEBLOG_MAX_PHOTO_BYTES", str(15 * 1024 * 1024)))
LIVEBLOG_MAX_PHOTO_PIXELS = int(os.environ.get("LIVEBLOG_MAX_PHOTO_PIXELS", "40000000"))
# A broadcast that takes longer than this is abandoned: the write already committed, and
# readers recover the event from the log through the heartbeat.
LIVEBLOG_BROADCAST_TIMEOUT = env_number("LIVEBLOG_BROADCAST_TIMEOUT", 2)
# Scheduled posts: each server process publishes those that fell due this often
# (liveblog/scheduler.py); a post goes out within this of its time. Off in the pytest process.
LIVEBLOG_SCHEDULER = env_bool("LIVEBLOG_SCHEDULER", True)
LIVEBLOG_SCHEDULER_SECONDS = env_number("LIVEBLOG_SCHEDULER_SECONDS", 0.5)
if LIVEBLOG_SCHEDULER_SECONDS <= 0:
    raise ImproperlyConfigured("LIVEBLOG_SCHEDULER_SECONDS must be more than 0")

# --- Web Push (liveblog/push/) ---------------------------------------------------------------
# The VAPID key signs every push request: from the environment (base64url of the raw 32-byte
# private key), else generated once into var/ like the secret key (liveblog/push/vapid.py).
LIVEBLOG_VAPID_PRIVATE_KEY = os.environ.get("LIVEBLOG_VAPID_PRIVATE_KEY", "").strip()
LIVEBLOG_VAPID_KEY_FILE = VAR_DIR / "vapid_private_key.pem"


def _vapid_subject() -> str:
    """A contact push services can write to: mailto:webmaster@ the site's first named host."""
    if subject := os.environ.get("LIVEBLOG_VAPID_SUBJECT", "").strip():
        if not subject.startswith(("mailto:", "https://")):
            raise ImproperlyConfigured("LIVEBLOG_VAPID_SUBJECT must be a mailto: or https: URL")
        return subject
    named = [host for host in ALLOWED_HOSTS  # a name, not an address or a wildcard
             if "." in host and not host.startswith((".", "[")) and "*" not in host
             and not host.replace(".", "").isdigit()]
    return f"mailto:webmaster@{named[0] if named else 'localhost'}"


LIVEBLOG_VAPID_SUBJECT = _vapid_subject()
if LIVEBLOG_VAPID_PRIVATE_KEY:
    import base64
    import binascii

    try:
        _raw = base64.urlsafe_b64decode(LIVEBLOG_VAPID_PRIVATE_KEY + "=" * (-len(
            LIVEBLOG_VAPID_PRIVATE_KEY) % 4))
    except (binascii.Error, ValueError):
        _raw = b""
    if len(_raw) != 32:
        raise ImproperlyConfigured(
            "LIVEBLOG_VAPID_PRIVATE_KEY must be the base64url raw 32-byte P-256 private key"
        )
# Tests and local development only: http endpoints, and loopback ones (a local push service).
# Never in production: the server would POST wherever a reader's browser told it to.
LIVEBLOG_PUSH_INSECURE_ENDPOINTS = env_bool("LIVEBLOG_PUSH_INSECURE_ENDPOINTS")
# Each subscription costs one request per key event, so a blog's total is bounded (100000
# sends at 32 at a time take about a minute), and so is one address's share of it, so that one
# client cannot fill a blog's quota. Per address per blog, IPv6 counted per /64 (one household
# or phone has a whole /64): 20 covers a family or an office, not a script.
LIVEBLOG_PUSH_MAX_PER_BLOG = int(os.environ.get("LIVEBLOG_PUSH_MAX_PER_BLOG", "100000"))
LIVEBLOG_PUSH_MAX_PER_ADDRESS = int(os.environ.get("LIVEBLOG_PUSH_MAX_PER_ADDRESS", "20"))
# The sender (liveblog/push/sender.py): off in the pytest process (tests/plain_http.py).
LIVEBLOG_PUSH_SENDER = env_bool("LIVEBLOG_PUSH_SENDER", True)
LIVEBLOG_PUSH_WORKERS = int(os.environ.get("LIVEBLOG_PUSH_WORKERS", "32"))
# A key event is news for hours, not days: one the phone could not get within 6 h is dropped.
LIVEBLOG_PUSH_TTL_SECONDS = int(os.environ.get("LIVEBLOG_PUSH_TTL_SECONDS", str(6 * 3600)))
# Push services answer in well under a second; one that does not is skipped, never waited for.
LIVEBLOG_PUSH_CONNECT_SECONDS = env_number("LIVEBLOG_PUSH_CONNECT_SECONDS", 3)
LIVEBLOG_PUSH_READ_SECONDS = env_number("LIVEBLOG_PUSH_READ_SECONDS", 5)

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
CSRF_FAILURE_VIEW = "liveblog.views.api.csrf_failure"

# --- Security headers -----------------------------------------------------------------------
# With DEBUG off the site is taken to be served over HTTPS (itself or behind a TLS proxy): http
# is redirected, cookies are Secure and, once SECURE_HSTS_SECONDS is set, browsers are told to
# use https only. A site that really is plain http (`make run` on a LAN, the tests' servers)
# says so with LIVEBLOG_PLAIN_HTTP=1; it is never the default, so a forgotten variable fails
# closed (a redirect to https) rather than sending session cookies in clear.
LIVEBLOG_PLAIN_HTTP = DEBUG or env_bool("LIVEBLOG_PLAIN_HTTP")
_HTTPS = not LIVEBLOG_PLAIN_HTTP
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# SECURE_COOKIES (before LIVEBLOG_PLAIN_HTTP existed) still decides the cookies when it is set.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS)
SECURE_SSL_REDIRECT = _HTTPS
# HSTS is sticky in browsers for its whole max-age, so it is off until a deployment opts in
# (start small, e.g. 300, then a year: 31536000).
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0")) if _HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL"):
    # Only behind a proxy that sets X-Forwarded-Proto itself (and strips a client's own).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # NONCE: the reader page inlines app.css (templates/liveblog/reader.html, bench `page`).
        "style-src": [SELF, NONCE],
        # Images from the site, plus the image origins below (MEDIA_URL's, LIVEBLOG_IMAGE_HOSTS):
        # an image from anywhere else would be a tracking pixel on every reader. blob: is the
        # author console's preview of a photo before it is sent. (No data: — nothing uses it,
        # and the sanitizer drops data: images from posts.)
        "img-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Client address behind proxies (project/proxies.py) -------------------------------------------
# X-Forwarded-For and -Proto are believed only from these peers (IPs or CIDRs): an address a
# client could choose would make the sign-in lockout and the throttles worthless. Empty: the
# server is reached directly and the TCP peer is the client.
LIVEBLOG_TRUSTED_PROXIES = env_list("LIVEBLOG_TRUSTED_PROXIES", "")

# --- Sign-in lockout (django-axes; project/signin.py) ---------------------------------------------
# Failed sign-ins are counted in the database (so every process sees them) per (username,
# address) pair and per address, never per username alone: a lock on a username would let
# anyone lock an editor out on election night from anywhere. The pair lock stops guessing one
# account's password; the address lock, much higher so that a newsroom behind one NAT address
# is not caught by its own typos, stops one address trying many accounts.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes asks
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out sign-in before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "project.signin.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = int(os.environ.get("LIVEBLOG_SIGNIN_FAILURES", "5"))
LIVEBLOG_SIGNIN_ADDRESS_FAILURES = int(os.environ.get("LIVEBLOG_SIGNIN_ADDRESS_FAILURES", "50"))
# Counted from the latest failure (one made while locked out counts too): an attacker who keeps
# trying stays locked out.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_COOLOFF_TIME = timedelta(minutes=env_number("LIVEBLOG_SIGNIN_COOLOFF_MINUTES", 15))
# The address TrustedProxies resolved (REMOTE_ADDR), never a header axes would parse itself.
AXES_CLIENT_IP_CALLABLE = "project.proxies.client_address"
AXES_LOCKOUT_CALLABLE = "project.signin.lockout_response"
# A success does not wipe the failures: axes would wipe the whole address's count, letting
# someone with an account of their own reset it between guesses.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False

# --- API throttles (liveblog/throttle.py) ---------------------------------------------------------
# "units/seconds", fixed windows in the default cache: process memory in the embedded default,
# Redis with REDIS_URL, so that the limits hold across processes. Over a limit: 429 with
# Retry-After (the author's outbox waits that long). The reasons for each default are in the
# README ("Security").
# Writes per signed-in user: an author posts every few seconds; an outbox flushing a queue
# after an outage goes on after Retry-After. Stops a runaway script flooding every reader.
LIVEBLOG_THROTTLE_WRITES = os.environ.get("LIVEBLOG_THROTTLE_WRITES", "60/60")
# Anonymous reads per address: readers get updates over the websocket and read the API only to
# load older posts, but thousands of phones can share one carrier NAT address, so this is
# generous; `events` costs one unit per 50 events asked for (`limit=1000` costs 20).
LIVEBLOG_THROTTLE_ANON_READS = os.environ.get("LIVEBLOG_THROTTLE_ANON_READS", "600/60")
# Reads per signed-in user (the author console, newsroom tools): one person, generous.
LIVEBLOG_THROTTLE_USER_READS = os.environ.get("LIVEBLOG_THROTTLE_USER_READS", "1200/60")
# Push (un)subscriptions per address: a reader taps the bell once or twice per blog; each
# subscribe resolves the endpoint's host, so a flood is refused early.
LIVEBLOG_THROTTLE_PUSH = os.environ.get("LIVEBLOG_THROTTLE_PUSH", "20/60")
LIVEBLOG_THROTTLE_CACHE = "default"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "liveblog",
            # Short timeouts: a throttle that cannot reach Redis lets the request through
            # rather than hold it (liveblog/throttle.py).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
# Directories whose files override the built-in ones of the same name (a newsroom's own
# stylesheet or icons), first match wins: LIVEBLOG_EXTRA_STATIC_DIRS=/srv/brand/static:...
STATICFILES_DIRS = [
    *[Path(path) for path in os.environ.get("LIVEBLOG_EXTRA_STATIC_DIRS", "").split(":") if path],
    BASE_DIR / "static",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "project.storage.StaticStorage"},
}
# Uploaded photos go through the default storage: these local files unless STORAGES says
# otherwise. Their names are unique, so they are served with a year-long immutable cache.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = os.environ.get("MEDIA_URL", "/media/")
# The embedded default serves MEDIA_URL itself; production serves it from the web server or
# object storage and turns this off.
LIVEBLOG_SERVE_MEDIA = env_bool("LIVEBLOG_SERVE_MEDIA", True)

# --- Reading offline --------------------------------------------------------------------------
# What a reader's browser keeps so that blogs read once read offline (README, "Offline &
# install"). The blogs whose posts are kept (static/liveblog/feed-store.js), the most recently
# saved first; a blog forgotten takes its photos with it.
LIVEBLOG_OFFLINE_BLOGS = int(os.environ.get("LIVEBLOG_OFFLINE_BLOGS", "20"))
# The photos kept (static/liveblog/photo-cache.js), least recently used evicted first, by
# count and by bytes. A phone's storage is shared with its owner's own photos, apps and
# messages, and the reader never asked for these copies: keep the last few blogs' worth, not
# an archive. A blog of 30 photo posts read to the end takes 7.9 MB on a phone (1600 px
# variants at 3x) and 4.0 MB on a desktop (1024 px) (e2e/test_offline_photos.py,
# var/e2e-photos.json). 150 photos keep five such blogs; 40 MiB holds those five at phone
# sizes (39.4 MB) and stops larger photos, or a tablet's, from taking more (on a desktop the
# count binds first, near 20 MB). Photos of a blog whose posts are forgotten go with it.
LIVEBLOG_OFFLINE_PHOTOS = int(os.environ.get("LIVEBLOG_OFFLINE_PHOTOS", "150"))
LIVEBLOG_OFFLINE_PHOTO_BYTES = int(
    os.environ.get("LIVEBLOG_OFFLINE_PHOTO_BYTES", str(40 * 1024 * 1024))
)

# --- Structured data (liveblog/structured_data.py) -------------------------------------------
# The publisher named in every reader page's JSON-LD; an empty logo means the app's own icon.
LIVEBLOG_PUBLISHER_NAME = os.environ.get("LIVEBLOG_PUBLISHER_NAME", "Liveblog")
LIVEBLOG_PUBLISHER_LOGO = os.environ.get("LIVEBLOG_PUBLISHER_LOGO", "")
# A NewsArticle beside the LiveBlogPosting, for publishers whose tools expect one.
LIVEBLOG_NEWS_ARTICLE = env_bool("LIVEBLOG_NEWS_ARTICLE")

# --- Images from elsewhere ------------------------------------------------------------------
# Posts and pages show images from the site itself and from these origins only (CSP img-src
# and the Markdown sanitizer, liveblog/rendering.py): LIVEBLOG_IMAGE_HOSTS, comma-separated
# origins such as https://images.example.com (empty by default), plus MEDIA_URL's origin when
# photos are served from object storage or a CDN.


def _origin(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ImproperlyConfigured(f"{name}: {url!r} is not an origin like https://host[:port]")
    return f"{parts.scheme}://{parts.netloc.lower()}"


LIVEBLOG_IMAGE_ORIGINS = [
    *(_origin(url, "LIVEBLOG_IMAGE_HOSTS") for url in env_list("LIVEBLOG_IMAGE_HOSTS", "")),
    *([_origin(urlsplit(MEDIA_URL)._replace(path="").geturl(), "MEDIA_URL")]
      if urlsplit(MEDIA_URL).netloc else []),
]
CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] += LIVEBLOG_IMAGE_ORIGINS

# --- Languages (project/i18n.py; README "In your language") ---------------------------------------
# English is the default (no Accept-Language, or none of these); the browser's Accept-Language
# chooses among them, and the reader's choice in the switch (Django's language cookie, set by
# set_language) overrides it. Arabic is right to left (LANGUAGE_BIDI).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("de", "Deutsch"), ("ar", "العربية")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600  # a choice made once is remembered for a year
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "liveblog": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}
