"""The database reads of the live runtime, run off the event loop.

The ORM never runs on the loop: each call here hops to Django's database thread
(`database_sync_to_async`, which also closes stale connections) and comes back with plain values.
A database that fails (down, restarting, out of connections) raises `Unavailable`, so that no
part of the runtime handles ORM exceptions itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import DatabaseError

from .. import protocol, selectors
from ..errors import Unavailable
from .snapshots import Snapshot

P = ParamSpec("P")
T = TypeVar("T")


async def in_db_thread(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in the database thread; a database error is Unavailable."""
    try:
        return await database_sync_to_async(function)(*args, **kwargs)
    except DatabaseError as error:
        raise Unavailable("the database is unavailable; try again shortly") from error


class Log:
    """What the runtime reads: blog ids, positions, stored event frames and snapshots."""

    async def blog_id(self, slug: str) -> int:
        """Raises NotFound."""
        return await in_db_thread(selectors.blog_id, slug)

    async def tail(self, blog_id: int, window: int) -> tuple[int, str, list[tuple[int, str]]]:
        """The committed head and epoch, and the (at most `window`) events up to that head.
        Raises NotFound."""
        return await in_db_thread(selectors.log_tail, blog_id, window)

    async def positions(self, blog_ids: list[int]) -> dict[int, tuple[int, str, str]]:
        """Committed (head, epoch, slug) of several blogs, in one query."""
        return await in_db_thread(selectors.blog_positions, blog_ids)

    async def events(self, blog_id: int, epoch: str, after: int, upto: int
                     ) -> list[tuple[int, str]]:
        """Stored frames `after+1 … upto` of that epoch (none once the log started over)."""
        return await in_db_thread(selectors.events_range, blog_id, epoch, after, upto)

    async def snapshot(self, blog_id: int) -> Snapshot:
        """The snapshot frame a new reader starts from, head and posts read consistently."""
        page = await in_db_thread(selectors.blog_snapshot, blog_id)
        return Snapshot(epoch=page.epoch, head=page.head, text=protocol.encode(
            protocol.snapshot_json(page)
        ))

