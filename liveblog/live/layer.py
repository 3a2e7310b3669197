"""This process's link to the channel layer: one channel, the blogs' groups it is in, and the task
that receives on it.

The layer is a fast pipe, not the truth: it may be unreachable (Redis down during a deploy),
forget memberships (a Redis restart) or drop messages. Every failure here is logged and survived;
the caller re-joins at each heartbeat (`rejoin`) and heals delivery from the database log.
Messages received are handed to the one handler given at construction, synchronously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from .broadcast import blog_group

logger = logging.getLogger(__name__)

# After a failed receive (Redis down), wait this long before the next try.
RECEIVE_RETRY_SECONDS = 1


class LayerLink:
    def __init__(self, layer: Any, on_message: Callable[[dict], None]) -> None:
        self._layer = layer
        self._on_message = on_message
        self._channel: str | None = None
        self._receiving: asyncio.Task | None = None
        # Attach, join and leave one at a time: a leave racing a join must not undo it.
        self._membership = asyncio.Lock()

    @property
    def channel(self) -> str | None:
        """This process's channel, or None while the layer could not be reached."""
        return self._channel

    async def join(self, blog_id: int) -> None:
        """Attach (unless attached) and join the blog's group; failures are logged, and the
        next `rejoin` tries again."""
        async with self._membership:
            await self._attach()
            await self._group_call("group_add", blog_id)

    async def leave(self, blog_id: int) -> None:
        async with self._membership:
            await self._group_call("group_discard", blog_id)

    async def rejoin(self, blog_ids: list[int]) -> None:
        """Once per heartbeat: attach if not yet attached, restart a receiver that died, and
        join every group again (a Redis restart forgets memberships; joining twice is free)."""
        async with self._membership:
            await self._attach()
            if self._receiving is not None and self._receiving.done():
                logger.error("the channel layer receiver stopped; restarting it")
                self._receiving = asyncio.ensure_future(self._receive())
            for blog_id in blog_ids:
                await self._group_call("group_add", blog_id)

    def detach(self) -> None:
        """Stop receiving (no blog left to serve). Groups should be left first."""
        if self._receiving is not None:
            self._receiving.cancel()
        self._receiving = self._channel = None

    async def _attach(self) -> None:
        """Make this process's channel and start receiving on it, unless done already. When
        the layer cannot be reached, readers are served from the log until a later heartbeat
        attaches (channels-redis's pub/sub layer subscribes in `new_channel`)."""
        if self._channel is not None:
            return
        try:
            channel = await asyncio.wait_for(
                self._layer.new_channel(), timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT
            )
        except Exception as error:  # noqa: BLE001 - served from the log meanwhile
            logger.warning("channel layer unavailable, delivering from the log: %r", error)
            return
        self._channel = channel
        self._receiving = asyncio.ensure_future(self._receive())

    async def _group_call(self, method: str, blog_id: int) -> None:
        if self._channel is None:
            return
        try:
            await asyncio.wait_for(
                getattr(self._layer, method)(blog_group(blog_id), self._channel),
                timeout=settings.LIVEBLOG_BROADCAST_TIMEOUT,
            )
        except Exception as error:  # noqa: BLE001 - the heartbeat heals membership
            logger.warning("channel layer %s for blog %s failed: %r", method, blog_id, error)

    async def _receive(self) -> None:
        """Receive this process's messages, for ever."""
        while True:
            try:
                message = await self._layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - e.g. Redis down: retry, heal by log
                logger.warning("channel layer receive failed: %r", error)
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)
                continue
            try:
                self._on_message(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop live delivery
                logger.exception("dropped a channel layer message: %.200r", message)
