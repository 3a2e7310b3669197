"""daphne's server with a deadline on each new connection's first request headers (see
project/serve.py). Twisted builds one HTTP channel per connection; the deadline starts when it
is built and is cancelled when the channel's first request has all its headers.

The same server keeps less per open connection (project/connections.py): a lighter input queue
per connection, Autobahn's options on its protocol class rather than on every instance, and the
upgrade request let go once the connection is a websocket."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from daphne.http_protocol import WebRequest
from daphne.server import Server
from django.conf import settings
from twisted.internet import reactor

from project.connections import InputQueue, lean_protocol, release_upgrade


class TimedRequest(WebRequest):
    """daphne's request, telling its channel when its headers are complete, and leaving the
    body to Django.

    Twisted's `Request` parses every POST form body into `args` by default, before daphne
    hands the body to Django (which parses it again): a second copy of a photo upload in
    memory, parsed on the reactor thread, and a multipart body Twisted cannot parse answered
    with a bare 400 (no JSON) that Django never sees. daphne never reads `args`; Twisted's own
    option turns the parsing off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        deadline = getattr(self.channel, "liveblog_headers_deadline", None)
        if deadline is not None and deadline.active():
            deadline.cancel()
        super().gotLength(length)

    def process(self) -> Any:
        processed = super().process()
        # daphne takes the transport away from a request it upgraded to a websocket.
        if self.transport is None and self.channel is not None:
            release_upgrade(self)
        return processed


class HeadersDeadline:
    """Wraps an HTTP factory: every channel it builds must have its first request's headers
    within `seconds`, or its connection is dropped."""

    def __init__(self, factory: Any, seconds: float) -> None:
        self._build = factory.buildProtocol
        self._seconds = seconds
        factory.buildProtocol = self.build

    def build(self, address: Any) -> Any:
        channel = self._build(address)
        if channel is None:
            return None
        channel.requestFactory = TimedRequest
        # Requests see the HTTP/1.1 channel inside Twisted's protocol-choosing wrapper.
        inner = getattr(channel, "_channel", channel)
        inner.liveblog_headers_deadline = reactor.callLater(self._seconds, _drop, inner)
        return channel


def _drop(channel: Any) -> None:
    if channel.transport is not None:
        channel.transport.abortConnection()


class LimitedServer(Server):
    def run(self) -> None:
        # `run` makes and configures the factories, then starts the reactor: adjust them once
        # that is running (no connection is accepted before).
        reactor.callWhenRunning(self._limit_headers)
        reactor.callWhenRunning(self._lean_websockets)
        super().run()

    def _limit_headers(self) -> None:
        HeadersDeadline(self.http_factory, settings.LIVEBLOG_HANDSHAKE_SECONDS)

    def _lean_websockets(self) -> None:
        self.ws_factory.protocol = lean_protocol(self.ws_factory)

    def create_application(self, protocol: Any, scope: dict) -> InputQueue | None:
        """daphne's own, with an `InputQueue` where it makes an asyncio.Queue."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = InputQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol),
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop(),
        )
        return input_queue
