"""Server-Sent Events: the live feed for readers whose network refuses the websocket upgrade
(corporate proxies, some hotel and stadium Wi-Fi) while plain HTTP works.

`GET /sse/liveblog/<slug>/?since=<seq>&epoch=<epoch>` streams exactly the websocket's frames
(DESIGN.md): `hello`, a snapshot or the replay, `live`, live events and a `ping` every heartbeat,
each as one SSE message (live/eventstream.py). A browser's own reconnect sends `Last-Event-ID:
<epoch>:<seq>`, which wins over the query (it repeats the first URL). The reader is a `Delivery`
of this process's hub like any websocket reader: one subscription per blog per process, each
event encoded once, the same backlog bound, the same catch-up pacing. There is no way back to
the server on this transport: a resync is a reconnect with `since`, and posting stays on the API.

Served as plain ASGI ahead of Django (`EventStreamRouter`): a stream lives for hours and needs
neither sessions nor middleware, and a reconnect storm must cost no more than the websocket's.
A refusal before the stream starts is an HTTP status with a JSON body (404 unknown blog, 429 too
many connections from the address, 503 database unavailable); once streaming, an `error` frame
and the end of the response.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re

from . import protocol
from .consumers import BUSY_RETRY_AFTER_SECONDS, client_address, position_from_query
from .errors import Invalid, LiveblogError, NotFound, Unavailable
from .live.delivery import Delivery
from .live.eventstream import preamble, stream_wire_for
from .live.hub import get_hub
from .live.limits import address_slots

logger = logging.getLogger(__name__)

# Django's `slug` path converter, under the same prefix DESIGN.md names.
STREAM_PATH = re.compile(r"/sse/liveblog/(?P<slug>[-a-zA-Z0-9_]+)/")
# A plain EventSource (not this app's client, which reconnects with its own backoff) waits this
# long before reconnecting; spread, so that a crowd dropped together does not come back together.
RETRY_MS = (1000, 5000)
# An epoch is a short token (models.new_epoch); anything longer in Last-Event-ID is not one.
MAX_EPOCH_CHARS = 64

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    # Never cached, never transformed or buffered by a proxy on the way (nginx honours
    # X-Accel-Buffering; README, "Transports").
    (b"cache-control", b"no-store, no-transform"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]


class EventStreamRouter:
    """ASGI: event-stream requests here, every other HTTP request to `application` (Django)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        match = STREAM_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.application(scope, receive, send)
        else:
            await serve_event_stream(scope, receive, send, slug=match["slug"])


def position_of(scope: dict) -> tuple[int | None, str | None, Invalid | None]:
    """The reader's position: `Last-Event-ID` (`<epoch>:<seq>`) when sent, else the query's
    `since` and `epoch`; and why a position was ignored (the reader then gets a snapshot)."""
    last_id = next((value for name, value in scope.get("headers", ())
                    if name == b"last-event-id"), None)
    if last_id is None:
        return position_from_query(scope)
    epoch, _, raw_seq = last_id.decode("latin-1").rpartition(":")
    try:
        if not epoch or len(epoch) > MAX_EPOCH_CHARS:
            raise Invalid("Last-Event-ID must be <epoch>:<seq>")
        return protocol.int_param(raw_seq, "Last-Event-ID's seq"), epoch, None
    except Invalid as error:
        return None, None, error


async def _refuse(send, status: int, error: LiveblogError, headers: list | None = None) -> None:
    body = protocol.encode({"error": error.code, "detail": error.detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()), *(headers or []),
    ]})
    await send({"type": "http.response.body", "body": body})


async def serve_event_stream(scope, receive, send, *, slug: str) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await _refuse(send, 405, Invalid("an event stream is read with GET",
                                         code="method_not_allowed"), [(b"allow", b"GET")])
        return
    address = client_address(scope)
    if not address_slots().acquire(address):
        await _refuse(send, 429, Invalid("too many connections from your address",
                                         code="rate_limited"),
                      [(b"retry-after", str(BUSY_RETRY_AFTER_SECONDS).encode())])
        return
    try:
        await _stream(scope, receive, send, slug=slug)
    finally:
        address_slots().release(address)


async def _stream(scope, receive, send, *, slug: str) -> None:
    hub = get_hub()
    try:
        blog_id = await hub.blog_id(slug)
    except NotFound as error:
        await _refuse(send, 404, error)
        return
    except Unavailable:
        await _refuse(send, 503, Unavailable("try again shortly"), [(b"retry-after", b"5")])
        return
    await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
    await send({"type": "http.response.body", "more_body": True, "body": preamble(
        retry_ms=random.randint(*RETRY_MS), comment="liveblog event stream")})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    ended = asyncio.Event()
    delivery = Delivery(stream_wire_for(send, on_end=ended.set), slug=slug)
    disconnected = asyncio.ensure_future(_disconnect(receive))
    ending = asyncio.ensure_future(ended.wait())
    try:
        since, epoch, ignored = position_of(scope)
        if ignored is not None:
            delivery.out(protocol.error_frame(ignored.code, ignored.detail))
        try:
            await delivery.follow(hub, blog_id, since=since, epoch=epoch)
        except LiveblogError as error:  # the blog went, or the database did
            delivery.refuse(error)
        except Exception:  # noqa: BLE001 - a bug must not leave a reader hanging
            logger.exception("could not subscribe a stream reader to blog %r", slug)
            delivery.refuse(Unavailable("try again shortly"))
        await asyncio.wait([disconnected, ending], return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnected.cancel()
        ending.cancel()
        await delivery.leave()


async def _disconnect(receive) -> None:
    """Returns when the client has gone (the request's own body is read and ignored)."""
    while (await receive())["type"] != "http.disconnect":
        pass
