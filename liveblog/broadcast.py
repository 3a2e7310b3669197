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


def blog_group(blog_id: int) -> str:
    return f"liveblog.{blog_id}"


async def event_publish_async(*, blog_id: int, seq: int, frame: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": EVENT_MESSAGE_TYPE, "blog": blog_id, "seq": seq, "frame": frame}
    try:
        await asyncio.wait_for(
            layer.group_send(blog_group(blog_id), message),
            timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT,
        )
    except Exception as error:  # noqa: BLE001 - any layer failure is survivable by design
        logger.warning("broadcast of blog %s seq %s failed: %r", blog_id, seq, error)


def event_publish(*, blog_id: int, seq: int, frame: str) -> None:
    """Send one committed event to every process's hub. Called from on_commit, in sync code."""
    try:
        async_to_sync(event_publish_async)(blog_id=blog_id, seq=seq, frame=frame)
    except Exception as error:  # noqa: BLE001
        logger.warning("broadcast of blog %s seq %s failed: %r", blog_id, seq, error)
