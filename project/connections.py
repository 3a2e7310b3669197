"""What daphne keeps for each open connection, trimmed (project/handshakes.py's server uses these).

An idle websocket reader is held for hours, thousands to a process, so what daphne, Autobahn and
Twisted keep per connection is most of what a reader costs (README, "Performance"). Nothing here
changes what goes over the wire or when; only what stays in memory while nothing happens:

- `InputQueue` stands in for the asyncio.Queue daphne makes per connection for what the client
  sends (its `receive`): the same get / put_nowait / qsize for one connection, but nothing
  allocated while it is empty (an asyncio.Queue holds four deques of 760 bytes each from the
  start, and its join/task_done bookkeeping, which neither daphne nor Channels uses).
- `lean_protocol(factory)`: Autobahn copies about thirty options from its factory onto every
  protocol instance unless the class already has them, which takes the instance's __dict__ past
  85 keys into the next size (3.3 KB instead of 1.6 KB). The subclass carries them as class
  attributes with the factory's values, read once the server is configured. That includes
  `tcpNoDelay` (true by default), which Autobahn reads before its copy: under stock daphne the
  read failed silently and every websocket ran with Nagle's algorithm on, holding the second of
  two quick frames to a reader until the first was acknowledged (a burst); here it reaches the
  socket, as asyncio's transports set it. Its send queue is a list (a deque costs 760 bytes
  empty; Autobahn queues only chopped or synchronous sends, which nothing here makes), and once
  the connection is open the handshake's request and response texts are let go.
- `release_upgrade(request)`: the HTTP request that asked for the websocket upgrade stays in its
  channel's list of requests for as long as the socket is open (the channel stays registered as
  the transport's producer), with its headers, body buffer and response headers; once daphne has
  handed the connection to the websocket protocol nothing reads it again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class InputQueue:
    """An unbounded FIFO of ASGI messages with asyncio.Queue's get, put and size calls."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: deque | None = None
        self._getters: list[asyncio.Future] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        # As asyncio.Queue.get: a getter cancelled after it was woken passes the wake-up on.
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()
                raise
        return self.get_nowait()

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None


class SendQueue(list):
    """Autobahn's queue of chopped or synchronous sends, as a list: empty, it costs 56 bytes."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def lean_protocol(factory: Any) -> type:
    """A subclass of the factory's protocol class holding the factory's options as class
    attributes. Make it once the factory is configured, and set it as the factory's protocol."""
    base = factory.protocol
    options = {name: _as_class_attribute(getattr(factory, name)) for name in base.CONFIG_ATTRS}
    return type(f"Lean{base.__name__}", (LeanProtocolMixin, base), options)


def _as_class_attribute(value: Any) -> Any:
    """A function option (perMessageCompressionAccept) read through an instance must stay the
    function, not become a method of the protocol."""
    return staticmethod(value) if hasattr(type(value), "__get__") else value


class LeanProtocolMixin:
    """What an open websocket no longer needs, let go (see the module docstring)."""

    def _connectionMade(self) -> None:  # noqa: N802 - Autobahn's name
        super()._connectionMade()
        self.send_queue = SendQueue()

    def _onOpen(self) -> None:  # noqa: N802
        # The raw request and the response as sent: read only while the handshake is processed.
        self.http_request_data = self.http_response_data = None
        super()._onOpen()


def release_upgrade(request: Any) -> None:
    """Forget an HTTP request whose connection became a websocket (see the module docstring)."""
    requests = getattr(request.channel, "requests", None)
    if requests is not None and request in requests:
        requests.remove(request)
