"""Fast-path delivery of committed events through the channel layer.

The database log is the truth: a broadcast that fails or times out is logged and forgotten, never
raised into the write that committed (readers recover the event from the log by heartbeat).
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

EVENT_MESSAGE_TYPE = "liveblog.event"
RESET_MESSAGE_TYPE = "liveblog.reset"


def blog_group(blog_id: int) -> str:
    return f"liveblog.{blog_id}"


async def _group_send(blog_id: int, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await asyncio.wait_for(
            layer.group_send(blog_group(blog_id), message),
            timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT,
        )
    except Exception as error:  # noqa: BLE001 - any layer failure is survivable by design
        logger.warning("broadcast %s to blog %s failed: %r", message["type"], blog_id, error)


# The server's event loop, once a hub runs on it. A write committed in a worker thread hands
# its broadcast to that loop and returns at once: the author's answer never waits behind the
# fan-out of the previous event. (Callbacks handed over this way run in the order given.)
_server_loop: asyncio.AbstractEventLoop | None = None


def serve_on(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def _send_sync(blog_id: int, message: dict) -> None:
    loop = _server_loop
    if loop is not None and loop.is_running():
        def start_send() -> None:
            asyncio.ensure_future(_group_send(blog_id, message))

        try:
            loop.call_soon_threadsafe(start_send)
            return
        except RuntimeError:  # the loop closed in between
            pass
    try:  # no server loop here (a management command, a test): send and wait
        async_to_sync(_group_send)(blog_id, message)
    except Exception as error:  # noqa: BLE001
        logger.warning("broadcast %s to blog %s failed: %r", message["type"], blog_id, error)


def event_publish(*, blog_id: int, epoch: str, seq: int, frame: str) -> None:
    """Send one committed event to every process's hub. Called from on_commit, in sync code.
    The epoch travels along so that no hub ever mixes two epochs' numbers."""
    _send_sync(blog_id, {
        "type": EVENT_MESSAGE_TYPE, "blog": blog_id, "epoch": epoch, "seq": seq, "frame": frame,
    })


def reset_publish(*, blog_id: int, epoch: str) -> None:
    """Tell every process's hub that the blog's log started over (new epoch)."""
    _send_sync(blog_id, {"type": RESET_MESSAGE_TYPE, "blog": blog_id, "epoch": epoch})
