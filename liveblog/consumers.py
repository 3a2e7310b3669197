"""The websocket consumer: translates frames to hub, selector and service calls and back. What a
reader is sent, and in which order, is its `Delivery` (live/delivery.py), shared with the event
stream (sse.py); this module reads the socket.

What a client can cost is bounded whatever it sends (README, "Security"): everything it is sent
counts against the delivery's bounds, incoming frames spend a token bucket, and an address has at
most LIVEBLOG_MAX_SOCKETS_PER_ADDRESS sockets on this process. Catch-ups run as tasks of their
own, so incoming frames are read (and refused) while one goes out.
"""

import logging
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import protocol, services
from .auth import user_of
from .errors import Invalid, LiveblogError, Unavailable
from .live.delivery import (  # noqa: F401 - the close codes are part of this module's API
    CLOSE_NOT_FOUND,
    CLOSE_TOO_SLOW,
    CLOSE_UNAVAILABLE,
    Delivery,
)
from .live.hub import get_hub
from .live.limits import FrameBudget, address_slots, retry_after_seconds
from .live.log import in_db_thread
from .live.wire import wire_for

logger = logging.getLogger(__name__)

# RFC 6455: a policy violation (a client that kept sending past its budget), and "try again
# later" (its address has too many sockets here).
CLOSE_ABUSIVE = 1008
CLOSE_TRY_LATER = 1013
# How long a client over the per-address cap is asked to wait before it tries again.
BUSY_RETRY_AFTER_SECONDS = 30


def client_address(scope: dict) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def position_from_query(scope: dict) -> tuple[int | None, str | None, Invalid | None]:
    """`since` and `epoch` from the query string, and why `since` was ignored (not fatal: the
    reader gets a snapshot, and an error frame says why)."""
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    epoch = query.get("epoch", [None])[0] or None
    raw_since = query.get("since", [None])[0]
    if raw_since in (None, ""):
        return None, epoch, None
    try:
        return protocol.int_param(raw_since, "since"), epoch, None
    except Invalid as error:
        return None, epoch, error


class LiveblogConsumer(AsyncWebsocketConsumer):
    # No per-socket channel: the process's hub receives for every reader of a blog.
    channel_layer_alias = None
    channel_layer = None
    # Nor groups (Channels would give every consumer an empty list of them).
    groups = ()

    blog_id: int | None = None
    delivery: Delivery | None = None
    # The address holding one of its slots (released when this consumer ends).
    address: str | None = None
    holds_slot = False

    async def __call__(self, scope, receive, send) -> None:
        """Channels' AsyncConsumer.__call__ with no channel layer, reading `receive` in this task:
        Channels would run every `receive` in a task of its own and wait on it with
        asyncio.wait (two more tasks' and futures' worth of memory per idle reader); with a
        single source to read the order and handling of messages are the same."""
        self.scope = scope
        self.base_send = send
        # Leave the hub however this consumer ends (a disconnect, an error, a cancellation), so
        # that it never keeps a reader that is gone.
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if self.delivery is not None:
                await self.delivery.leave()
            if self.holds_slot:
                address_slots().release(self.address)

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its `aclose_old_connections()` before a connect or a
        disconnect: a thread hop each (a reconnect storm is thousands of both, 11 % of the
        server's CPU in one). This consumer touches the database only through `in_db_thread`,
        which closes old connections around each call itself. A client's frames keep the hop:
        they are few, and it leaves the connect's catch-up time to send `hello` first."""
        if message["type"] not in ("websocket.connect", "websocket.disconnect"):
            await super().dispatch(message)
            return
        await getattr(self, get_handler_name(message))(message)

    async def connect(self) -> None:
        """Accept, find the blog, then follow it: hello + catch-up + live."""
        self.budget = FrameBudget(rate=settings.LIVEBLOG_FRAME_RATE,
                                  burst=settings.LIVEBLOG_FRAME_BURST)
        await self.accept()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        delivery = self.delivery = Delivery(wire_for(self.base_send), slug=slug)
        self.address = client_address(self.scope)
        if not address_slots().acquire(self.address):
            delivery.out(protocol.error_frame(
                "rate_limited", "too many connections from your address",
                retry_after=BUSY_RETRY_AFTER_SECONDS,
            ))
            delivery.wire.close(CLOSE_TRY_LATER)
            return
        self.holds_slot = True
        hub = get_hub()
        try:
            blog_id = await hub.blog_id(slug)
            since, epoch, ignored = position_from_query(self.scope)
            if ignored is not None:
                delivery.out(protocol.error_frame(ignored.code, ignored.detail))
            await delivery.follow(hub, blog_id, since=since, epoch=epoch)
        except LiveblogError as error:  # NotFound, or Unavailable
            delivery.refuse(error)
            return
        except Exception:  # noqa: BLE001 - a bug must not leave a reader hanging
            logger.exception("could not subscribe a reader to blog %r", slug)
            delivery.refuse(Unavailable("try again shortly"))
            return
        self.blog_id = blog_id

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: `resync` or `post`; anything else is answered with an error."""
        delivery = self.delivery
        if delivery.cut_loose:
            return
        delivery.wire.pace_input()
        if not self._within_budget():
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.LIVEBLOG_MAX_FRAME_BYTES:
            delivery.out(protocol.error_frame(
                "too_large", f"frames are limited to {settings.LIVEBLOG_MAX_FRAME_BYTES} bytes"
            ))
            return
        if not delivery.following:
            return  # closing
        if text_data is None:
            delivery.out(protocol.error_frame("invalid", "frames must be JSON text"))
            return
        try:
            request = protocol.parse_client_frame(text_data)
        except Invalid as error:
            delivery.out(protocol.error_frame(error.code, error.detail))
            return
        if isinstance(request, protocol.ResyncRequest):
            delivery.resync(since=request.since, epoch=request.epoch)
        else:
            await self.publish(request)

    def _within_budget(self) -> bool:
        """Spend a token for this frame. Over budget: a `rate_limited` error, and a close (1008)
        for a client that keeps going regardless."""
        wait = self.budget.take()
        if not wait:
            return True
        if self.budget.exhausted:
            logger.info("closing a websocket from %s that kept sending past its budget",
                        self.address)
            self.delivery.cut_loose = True
            self.delivery.wire.shut(CLOSE_ABUSIVE)
        else:
            self.delivery.out(protocol.error_frame(
                "rate_limited", "too many frames; slow down",
                retry_after=retry_after_seconds(wait),
            ))
        return False

    # --- Authors ------------------------------------------------------------------------------

    async def publish(self, request: protocol.PostRequest) -> None:
        """A signed-in author's `post`: the same service as the HTTP API, answered with `ack`.
        Who may post is decided by the service, against the rows it reads in its transaction."""
        try:
            written = await in_db_thread(self._post_create, request)
        except LiveblogError as error:
            if isinstance(error, Unavailable):
                logger.warning("post over the websocket failed: %r", error.__cause__)
            self.delivery.out(protocol.error_frame(error.code, error.detail))
            return
        self.delivery.out(protocol.ack_frame(
            client_id=str(request.client_id), seq=written.seq, post=written.data
        ))

    def _post_create(self, request: protocol.PostRequest) -> services.Written:
        return services.post_create(
            actor=user_of(self.scope),
            blog_id=self.blog_id,
            client_id=request.client_id,
            body=request.body,
            key_event=request.key_event,
            pinned=request.pinned,
            publish_at=request.publish_at,
        )
