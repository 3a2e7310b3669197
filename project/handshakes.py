"""daphne's server with a deadline on each new connection's first request headers (see
project/serve.py). Twisted builds one HTTP channel per connection; the deadline starts when it
is built and is cancelled when the channel's first request has all its headers."""

from __future__ import annotations

from typing import Any

from daphne.http_protocol import WebRequest
from daphne.server import Server
from django.conf import settings
from twisted.internet import reactor


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
        # `run` makes the HTTP factory, then starts the reactor: wrap it once that is running.
        reactor.callWhenRunning(self._limit_headers)
        super().run()

    def _limit_headers(self) -> None:
        HeadersDeadline(self.http_factory, settings.LIVEBLOG_HANDSHAKE_SECONDS)
