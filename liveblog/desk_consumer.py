"""The desk websocket: `/ws/desk/<slug>/?since=&epoch=`, one person's desk log, live.

The same protocol as the public socket (hello, snapshot or replay, live, events, ping, resync;
DESIGN.md) over a different log: the editors' desk log for the owner and editors, a
contributor's own for a contributor (selectors.desk_audience). Nothing here touches the public
runtime: desk events travel in their own channel-layer groups (`broadcast.desk_group`), never a
blog's.

A blog has a handful of editors and contributors, so there is no per-process fan-out: each desk
socket has its own channel-layer channel and joins its log's group and its person's group
itself. The ordering rule is the public one: join the groups, then read the log; live events
that arrive meanwhile wait in `pending`; once the catch-up went out, those it covered are
dropped and the rest follow in seq order. Events that arrive out of order (two processes'
broadcasts) wait for the one before them; one the layer lost is read from the log at the next
heartbeat, so delivery heals by itself, and `ping.head` (read from the database) tells the
client whatever is left.

Who may follow which log is checked against the database when the socket opens, again at each
heartbeat, and whenever their role changes (`desk.access`, sent by the member services): then
the socket ends with `forbidden` and 4409, and the client reconnects to what its new role shows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from . import protocol, selectors
from .auth import user_of
from .consumers import (
    BUSY_RETRY_AFTER_SECONDS,
    CLOSE_ABUSIVE,
    CLOSE_TRY_LATER,
    client_address,
)
from .errors import Invalid, NotAuthenticated, NotFound, Unavailable
from .live import broadcast
from .live.delivery import (
    CATCH_UP_LOW_WATER,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_SLOW,
    CLOSE_UNAVAILABLE,
    STALL_HEARTBEATS,
)
from .live.delivery import heartbeat_seconds as _heartbeat
from .live.limits import FrameBudget, address_slots, retry_after_seconds
from .live.log import in_db_thread
from .live.wire import Wire, wait_for_room, wire_for
from .models import Blog, DeskStream
from .permissions import role_of

logger = logging.getLogger(__name__)

# Anonymous, or not writing for this blog.
CLOSE_FORBIDDEN = 4403
# The person's role on the blog changed (or they were removed): reconnect without `since`.
CLOSE_ROLE_CHANGED = 4409
# A replay is read from the database this many events at a time, so a long one never sits in
# memory whole.
REPLAY_CHUNK = 200


@dataclass
class Member:
    """Who is on the socket, as the database said when last asked."""

    blog_id: int
    user_id: int
    role: str
    stream_id: int


@dataclass
class CatchUpRead:
    """What a catch-up sends: its log's epoch and head, and a snapshot frame or replay rows
    (`after` the seq the replay starts after; more rows are read in chunks)."""

    epoch: str
    head: int
    snapshot: str | None = None
    after: int = 0
    rows: list[tuple[int, str]] = field(default_factory=list)


class Refused(Exception):
    """The socket is not allowed (any more): the error frame and the close code to end with."""

    def __init__(self, code: str, detail: str, close_code: int) -> None:
        super().__init__(detail)
        self.code, self.detail, self.close_code = code, detail, close_code


# --- Database reads (each run in the database thread) -----------------------------------------


def _current_role(scope: dict, blog_id: int) -> tuple[int | None, str | None]:
    """The session's user and their role on the blog, read now. Raises NotFound when the blog
    is gone."""
    user = user_of(scope)
    try:
        blog = Blog.objects.get(pk=blog_id)
    except Blog.DoesNotExist:
        raise NotFound("this blog no longer exists") from None
    return (user.pk if user.is_authenticated else None), role_of(user, blog)


def _member(scope: dict, slug: str) -> Member:
    """Who opens the desk of the blog `slug`, and the desk log they follow (made on first
    use). Raises NotFound or Refused."""
    blog_id = selectors.blog_id(slug)
    user_id, role = _current_role(scope, blog_id)
    if user_id is None:
        raise Refused("not_authenticated", "sign in to open the desk", CLOSE_FORBIDDEN)
    if role is None:
        raise Refused("forbidden", "you do not write for this blog", CLOSE_FORBIDDEN)
    stream = selectors.desk_stream(blog_id, selectors.desk_audience(role, user_id))
    return Member(blog_id=blog_id, user_id=user_id, role=role, stream_id=stream.pk)


def _heartbeat_read(scope: dict, member: Member) -> tuple[int, str, str | None, bool]:
    """At each heartbeat: the log's committed (head, epoch), the person's role now, and
    whether they are still the same person (a sign-out ends the session)."""
    user_id, role = _current_role(scope, member.blog_id)
    try:
        head, epoch = selectors.desk_position(member.stream_id)
    except DeskStream.DoesNotExist:
        raise NotFound("this blog no longer exists") from None
    return head, epoch, role, user_id == member.user_id


def _catch_up_read(member: Member, since: int | None, epoch: str | None) -> CatchUpRead:
    """A snapshot, or the first chunk of the replay `since+1 … head` (the same rules as the
    public log, protocol.needs_snapshot)."""
    head, current = selectors.desk_position(member.stream_id)
    if since is not None and not protocol.needs_snapshot(
        since=since, epoch=epoch, current_epoch=current, head=head,
        window=settings.LIVEBLOG_REPLAY_WINDOW,
    ):
        upto = min(head, since + REPLAY_CHUNK)
        rows = selectors.desk_events_range(member.stream_id, current, since, upto)
        if len(rows) == upto - since:
            return CatchUpRead(epoch=current, head=head, after=since, rows=rows)
        # The log started over between the two reads: a snapshot of the new one.
    audience = selectors.desk_audience(member.role, member.user_id)
    snapshot = selectors.desk_snapshot(member.blog_id, audience)
    return CatchUpRead(epoch=snapshot.epoch, head=snapshot.head, snapshot=protocol.encode(
        protocol.desk_snapshot_json(epoch=snapshot.epoch, head=snapshot.head,
                                    submissions=snapshot.submissions)
    ))


def parse_desk_frame(text: str) -> protocol.ResyncRequest:
    """The one frame a desk client sends: `resync`. Raises Invalid with the code to answer."""
    data = protocol.decode_json(text, "frame")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Invalid("frame must be a JSON object with a string type")
    if data["type"] != "resync":
        raise Invalid(
            f"unknown frame type {data['type'][:40]!r}: the desk socket takes resync frames "
            "only (changes go through the API)",
            code="unknown_type",
        )
    if "since" not in data:
        raise Invalid("resync needs since")
    return protocol.ResyncRequest(
        since=protocol.as_int(data["since"], "since"),
        epoch=protocol.optional(data, "epoch", protocol.as_text),
    )


class DeskConsumer(AsyncWebsocketConsumer):
    # No channel made by channels itself: this consumer makes its own, and survives a layer
    # that cannot be reached (delivery then heals from the log at each heartbeat).
    channel_layer_alias = None

    slug: str = ""
    member: Member | None = None
    wire: Wire | None = None
    address: str | None = None
    holds_slot = False
    low_water = CATCH_UP_LOW_WATER
    # True while a catch-up is being sent: live events wait in `pending`, and a resync is
    # answered by the catch-up under way.
    catching_up = True
    # Ended (refused, too slow, abusive, role changed): nothing more is sent or read.
    ended = False
    # The epoch and the last seq this connection sent (None before the first catch-up).
    epoch: str | None = None
    last_seq = 0

    async def __call__(self, scope, receive, send) -> None:
        self.tasks: set[asyncio.Task] = set()
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.groups_joined: list[str] = []
        try:
            await super().__call__(scope, receive, send)
        finally:
            for task in self.tasks:
                task.cancel()
            await self._leave_groups()
            if self.holds_slot:
                address_slots().release(self.address)

    # --- Opening ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Accept, check who this is, join the groups, then hello + catch-up + live."""
        # Live events by seq, with their epoch, not yet sent (see the module's docstring).
        self.pending: dict[int, tuple[str, str]] = {}
        self.catching_up_lock = asyncio.Lock()
        self.budget = FrameBudget(rate=settings.LIVEBLOG_FRAME_RATE,
                                  burst=settings.LIVEBLOG_FRAME_BURST)
        self.low_water = min(settings.LIVEBLOG_MAX_BACKLOG_BYTES // 4, CATCH_UP_LOW_WATER)
        await self.accept()
        self.wire = wire_for(self.base_send)
        self.address = client_address(self.scope)
        if not address_slots().acquire(self.address):
            self.out(protocol.error_frame(
                "rate_limited", "too many connections from your address",
                retry_after=BUSY_RETRY_AFTER_SECONDS,
            ))
            self._end(CLOSE_TRY_LATER)
            return
        self.holds_slot = True
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        since, epoch = self._position_from_query()
        try:
            member = await in_db_thread(_member, self.scope, self.slug)
        except Exception as error:  # noqa: BLE001 - every failure ends with a frame and a close
            self._refuse(error)
            return
        self.member = member
        # Subscribed before anything is read from the log: nothing falls in between.
        await self._join_groups()
        self._start_task(self._heartbeats())
        self._start_catch_up(since=since, epoch=epoch, hello=True)

    def _position_from_query(self) -> tuple[int | None, str | None]:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        epoch = query.get("epoch", [None])[0] or None
        raw_since = query.get("since", [None])[0]
        if raw_since in (None, ""):
            return None, epoch
        try:
            return protocol.int_param(raw_since, "since"), epoch
        except Invalid as error:
            # Not fatal: the client gets a snapshot, and the error says why.
            self.out(protocol.error_frame(error.code, error.detail))
            return None, epoch

    def _refuse(self, error: Exception) -> None:
        """A fatal error: its frame, then the close that goes with it."""
        if isinstance(error, Refused):
            frame, code = protocol.error_frame(error.code, error.detail), error.close_code
        elif isinstance(error, NotFound):
            frame, code = protocol.error_frame(error.code, error.detail), CLOSE_NOT_FOUND
        elif isinstance(error, NotAuthenticated):
            frame, code = protocol.error_frame(error.code, error.detail), CLOSE_FORBIDDEN
        else:
            if isinstance(error, Unavailable):
                logger.warning("desk socket for %r: %r", self.slug, error.__cause__)
            else:
                logger.error("desk socket for %r failed", self.slug, exc_info=error)
            frame = protocol.error_frame("unavailable", "try again shortly")
            code = CLOSE_UNAVAILABLE
        self.out(frame)
        self._end(code)

    def _end(self, code: int) -> None:
        """Close after what was sent, and stop sending and reading."""
        if self.ended:
            return
        self.ended = True
        self.pending = {}
        self.wire.close(code)

    def _start_task(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- The channel layer --------------------------------------------------------------------

    def _groups(self) -> list[str]:
        member = self.member
        return [broadcast.desk_group(member.stream_id),
                broadcast.desk_member_group(member.blog_id, member.user_id)]

    async def _join_groups(self) -> None:
        """Make this socket's channel (once) and join its groups (again at each heartbeat: a
        Redis restart forgets memberships, and the in-memory layer expires them). A layer that
        cannot be reached is logged; the log heals delivery meanwhile."""
        if self.layer is None:
            return
        timeout = settings.LIVEBLOG_BROADCAST_TIMEOUT
        try:
            if self.channel is None:
                self.channel = await asyncio.wait_for(self.layer.new_channel(), timeout)
                self._start_task(self._receive_from_layer())
            for group in self._groups():
                await asyncio.wait_for(self.layer.group_add(group, self.channel), timeout)
                if group not in self.groups_joined:
                    self.groups_joined.append(group)
        except Exception as error:  # noqa: BLE001 - delivery heals from the log
            logger.warning("desk socket: channel layer unavailable: %r", error)

    async def _leave_groups(self) -> None:
        if self.layer is None or self.channel is None:
            return
        for group in self.groups_joined:
            try:
                await asyncio.wait_for(self.layer.group_discard(group, self.channel),
                                       settings.LIVEBLOG_BROADCAST_TIMEOUT)
            except Exception as error:  # noqa: BLE001 - the layer expires it anyway
                logger.debug("desk socket: could not leave %s: %r", group, error)

    async def _receive_from_layer(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - e.g. Redis down: heal by log
                logger.warning("desk socket: channel layer receive failed: %r", error)
                await asyncio.sleep(1)
                continue
            kind = message.get("type")
            if kind == broadcast.DESK_EVENT_MESSAGE_TYPE:
                self._live_event(message)
            elif kind == broadcast.DESK_ACCESS_MESSAGE_TYPE:
                self._role_changed()

    # --- Incoming frames ----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: `resync`; anything else is answered with an error."""
        if self.ended:
            return
        self.wire.pace_input()
        if not self._within_budget():
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.LIVEBLOG_MAX_FRAME_BYTES:
            self.out(protocol.error_frame(
                "too_large", f"frames are limited to {settings.LIVEBLOG_MAX_FRAME_BYTES} bytes"
            ))
            return
        if text_data is None:
            self.out(protocol.error_frame("invalid", "frames must be JSON text"))
            return
        try:
            request = parse_desk_frame(text_data)
        except Invalid as error:
            self.out(protocol.error_frame(error.code, error.detail))
            return
        if self.member is not None and not self.catching_up:
            # (during a catch-up, the catch-up under way answers it)
            self._start_catch_up(since=request.since, epoch=request.epoch, hello=False)

    def _within_budget(self) -> bool:
        """As the public socket: `rate_limited` over budget, 1008 for a client that keeps on."""
        wait = self.budget.take()
        if not wait:
            return True
        if self.budget.exhausted:
            logger.info("closing a desk socket from %s that kept sending past its budget",
                        self.address)
            self.ended = True
            self.wire.shut(CLOSE_ABUSIVE)
        else:
            self.out(protocol.error_frame(
                "rate_limited", "too many frames; slow down",
                retry_after=retry_after_seconds(wait),
            ))
        return False

    def out(self, text: str) -> None:
        """Send one frame; a socket too far behind to take it is closed (4008)."""
        if not self.ended and not self.wire.send(text):
            self._too_slow()

    def _too_slow(self) -> None:
        if self.ended:
            return
        logger.info("desk stream %s: a client fell behind at seq %s; closing it",
                    self.member.stream_id if self.member else None, self.last_seq)
        self.ended = True
        self.pending = {}
        self.wire.abandon(CLOSE_TOO_SLOW)

    # --- Catch-up -----------------------------------------------------------------------------

    def _start_catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        self.catching_up = True
        self._start_task(self._catch_up(since=since, epoch=epoch, hello=hello))

    async def _catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        async with self.catching_up_lock:
            self.catching_up = True
            try:
                await self._send_catch_up(since=since, epoch=epoch, hello=hello)
            except Exception as error:  # noqa: BLE001 - Unavailable, or a bug: end cleanly
                self._refuse(error)

    async def _send_catch_up(self, *, since: int | None, epoch: str | None, hello: bool) -> None:
        """hello (first time), a snapshot or the replay `since+1 … head`, then `live`, then the
        live events that arrived meanwhile and were not covered."""
        read = await in_db_thread(_catch_up_read, self.member, since, epoch)
        if self.ended:
            return
        if hello:
            self.out(protocol.hello_frame(
                slug=self.slug, epoch=read.epoch, head=read.head, heartbeat=_heartbeat(),
                role=self.member.role,
            ))
        if read.snapshot is not None:
            if not await self._paced(read.snapshot):
                return
        elif not await self._replay(read):
            return
        self.epoch, self.last_seq = read.epoch, read.head
        self.out(protocol.live_frame(read.head))
        self.catching_up = False
        self._flush()

    async def _replay(self, read: CatchUpRead) -> bool:
        """Send the replay's rows, reading the rest of it chunk by chunk. False when the client
        was cut loose, or the log started over meanwhile (a snapshot catch-up follows)."""
        after, rows = read.after, read.rows
        while True:
            for seq, frame in rows:
                if not await self._paced(frame):
                    return False
                after = seq
            if after >= read.head:
                return True
            upto = min(read.head, after + REPLAY_CHUNK)
            rows = await in_db_thread(selectors.desk_events_range, self.member.stream_id,
                                      read.epoch, after, upto)
            if len(rows) != upto - after:  # the log started over: start over too
                self._start_task(self._snapshot_later())
                return False

    async def _snapshot_later(self) -> None:
        # After the catch-up that found the new epoch has let go of the lock.
        await self._catch_up(since=None, epoch=None, hello=False)

    async def _paced(self, text: str) -> bool:
        """Send one catch-up frame once the socket has room for it (see consumers.py)."""
        if self.ended:
            return False
        if self.wire.backlog() > self.low_water and not await wait_for_room(
            self.wire, low_water=self.low_water, stall_seconds=_heartbeat() * STALL_HEARTBEATS
        ):
            self._too_slow()
            return False
        self.out(text)
        return not self.ended

    # --- Live events --------------------------------------------------------------------------

    def _live_event(self, message: dict) -> None:
        """A committed desk event from the layer: kept by seq until it is next in line."""
        if self.ended:
            return
        try:
            seq, epoch, frame = int(message["seq"]), str(message["epoch"]), message["frame"]
        except (KeyError, TypeError, ValueError):
            logger.warning("desk socket: dropped a malformed message %.200r", message)
            return
        if self.epoch is not None and epoch == self.epoch and seq <= self.last_seq:
            return  # already sent
        self.pending[seq] = (epoch, frame)
        if len(self.pending) > settings.LIVEBLOG_REPLAY_WINDOW:
            self._too_slow()  # it comes back with since
            return
        if not self.catching_up:
            self._flush()

    def _flush(self) -> None:
        """Send the pending events that follow the last one sent, in order; drop those covered
        or of another epoch. A gap waits (the heartbeat reads it from the log)."""
        for seq in [seq for seq, (epoch, _) in self.pending.items()
                    if seq <= self.last_seq or epoch != self.epoch]:
            del self.pending[seq]
        while not self.ended and (self.last_seq + 1) in self.pending:
            self.last_seq += 1
            _, frame = self.pending.pop(self.last_seq)
            self.out(frame)

    # --- Heartbeat ----------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while not self.ended:
            await asyncio.sleep(settings.LIVEBLOG_HEARTBEAT_SECONDS)
            try:
                await self._beat()
            except Unavailable as error:
                # A database hiccup costs this heartbeat, not the connection.
                logger.warning("desk heartbeat for %r skipped: %r", self.slug, error.__cause__)
            except Exception as error:  # noqa: BLE001 - NotFound (blog deleted), a bug: end
                self._refuse(error)
                return

    async def _beat(self) -> None:
        """Re-check the role, re-join the groups, fill what the layer lost, then ping."""
        await self._join_groups()
        head, epoch, role, same_person = await in_db_thread(
            _heartbeat_read, self.scope, self.member
        )
        if not same_person or role != self.member.role:
            self._role_changed()
            return
        if self.catching_up or self.ended:
            return  # a heartbeat never lands inside a catch-up
        if epoch != self.epoch:
            self._start_catch_up(since=None, epoch=None, hello=False)
            return
        if head > self.last_seq:
            await self._heal(epoch, head)
        if not self.catching_up:
            self.out(protocol.ping_frame(head))

    async def _heal(self, epoch: str, head: int) -> None:
        """Read from the log what the layer has not delivered up to `head`."""
        after = self.last_seq
        upto = min(head, after + REPLAY_CHUNK)
        rows = await in_db_thread(selectors.desk_events_range, self.member.stream_id, epoch,
                                  after, upto)
        for seq, frame in rows:
            self.pending.setdefault(seq, (epoch, frame))
        if not self.catching_up:
            self._flush()

    def _role_changed(self) -> None:
        """The person's role on this blog changed, or they were removed: this log is no longer
        theirs. The client reconnects without `since` (another log, another epoch)."""
        if self.ended:
            return
        self.out(protocol.error_frame("forbidden", "your role on this blog changed"))
        self._end(CLOSE_ROLE_CHANGED)
