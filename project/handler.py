"""Django's ASGI handler, with each request's middleware and view in one worker-thread call.

Django builds an ASGI application's middleware chain for async, then adapts it to every
middleware that is sync only (here WhiteNoise and the viewer middleware) and to the sync views:
a request crosses between the event loop and its worker thread at each such boundary and for
each async middleware's sync hooks, ten round trips for an API request (tests/test_asgi.py).
Each crossing waits for the other side: the loop finishing what it is doing (a fan-out slice
to readers, liveblog/live/stream.py), or the thread getting the GIL back from it. Under a
fan-out those waits made an author's create call several times slower than the create itself
(issue 20).

Every view and every middleware of this project is sync, so this handler builds the chain
sync, as under WSGI, and runs it in one call on the request's thread (the same
thread-sensitive thread Django would use): one crossing there and one back. Reading the body,
sending the response and watching for a disconnect stay Django's own async code.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_one_hop_asgi_application() -> OneHopASGIHandler:
    """As `django.core.asgi.get_asgi_application`, with the one-hop handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
