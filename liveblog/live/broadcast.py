"""Fast-path delivery of committed events through the channel layer.

The database log is the truth: a broadcast that fails or times out is logged and forgotten, never
raised into the write that committed (readers recover the event from the log by heartbeat).

Writes commit in worker threads; their broadcasts run on the server's event loop, which the ASGI
application hands over when it starts (`serve_on`, from project/asgi.py). A write then returns at
once: the author's answer never waits behind the fan-out of the previous event. A process that
serves nothing (a management command, a script) has no server loop and sends synchronously.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

EVENT_MESSAGE_TYPE = "liveblog.event"
RESET_MESSAGE_TYPE = "liveblog.reset"
DESK_EVENT_MESSAGE_TYPE = "desk.event"
DESK_ACCESS_MESSAGE_TYPE = "desk.access"


def blog_group(blog_id: int) -> str:
    return f"liveblog.{blog_id}"


def desk_group(stream_id: int) -> str:
    """One desk log's live subscribers: never a blog's public group."""
    return f"liveblog-desk.{stream_id}"


def desk_member_group(blog_id: int, user_id: int) -> str:
    """One person's desk connections to one blog (ended when their role changes)."""
    return f"liveblog-desk-member.{blog_id}.{user_id}"


_server_loop: asyncio.AbstractEventLoop | None = None


def serve_on(loop: asyncio.AbstractEventLoop | None) -> None:
    """Broadcast on this loop from now on: the ASGI server's, set when the application starts."""
    global _server_loop
    _server_loop = loop


def event_publish(*, blog_id: int, epoch: str, seq: int, frame: str) -> None:
    """Send one committed event to every process's hub. Called from on_commit, in sync code.
    The epoch travels along so that no hub ever mixes two epochs' numbers."""
    _send(blog_group(blog_id), {
        "type": EVENT_MESSAGE_TYPE, "blog": blog_id, "epoch": epoch, "seq": seq, "frame": frame,
    })


def reset_publish(*, blog_id: int, epoch: str) -> None:
    """Tell every process's hub that the blog's log started over (new epoch)."""
    _send(blog_group(blog_id), {"type": RESET_MESSAGE_TYPE, "blog": blog_id, "epoch": epoch})


def desk_publish(*, stream_id: int, epoch: str, seq: int, frame: str) -> None:
    """Send one committed desk event to the desk connections following that desk log."""
    _send(desk_group(stream_id), {
        "type": DESK_EVENT_MESSAGE_TYPE, "stream": stream_id, "epoch": epoch, "seq": seq,
        "frame": frame,
    })


def desk_access_changed(*, blog_id: int, user_id: int) -> None:
    """A person's role on a blog changed: their desk connections to it end."""
    _send(desk_member_group(blog_id, user_id), {"type": DESK_ACCESS_MESSAGE_TYPE})


def _send(group: str, message: dict) -> None:
    loop = _server_loop
    if loop is not None and loop.is_running():
        def start_send() -> None:
            asyncio.ensure_future(_group_send(group, message))

        try:
            # Callbacks handed over this way run in the order given: one writer's events
            # leave in order.
            loop.call_soon_threadsafe(start_send)
            return
        except RuntimeError:  # the server is shutting down: its loop closed in between
            pass
    # No server in this process (a management command): nothing else runs here, so the
    # command waits for its broadcast.
    async_to_sync(_group_send)(group, message)


async def _group_send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await asyncio.wait_for(
            layer.group_send(group, message), timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT,
        )
    except Exception as error:  # noqa: BLE001 - any layer failure is survivable by design
        logger.warning("broadcast %s to %s failed: %r", message["type"], group, error)


def serving() -> bool:
    """True in a process that serves (the ASGI application runs on its loop)."""
    loop = _server_loop
    return loop is not None and loop.is_running()
