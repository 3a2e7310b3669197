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


def _send_sync(blog_id: int, message: dict) -> None:
    try:
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
