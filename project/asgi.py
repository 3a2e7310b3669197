"""ASGI entry point: Django for HTTP, the live feed as an event stream (SSE) beside it, the
live-blog consumers for websockets.

`ServerLoop` hands the server's event loop to the broadcaster when the application starts: at
the lifespan startup under servers that send one (uvicorn, hypercorn), else at the first
connection of any kind (daphne sends no lifespan events). Every broadcast of a committed write
then runs on that loop, never on the writer's thread (liveblog/live/broadcast.py).

Importing this module also starts the process's scheduler (liveblog/scheduler.py), which
publishes scheduled posts when they fall due, with nobody connected: a server imports it at
start, and nothing else does (LIVEBLOG_SCHEDULER turns it off; the pytest process does).
"""

import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from project.handler import get_one_hop_asgi_application  # noqa: E402

# Each request's middleware and view in one call on its worker thread (project/handler.py).
django_asgi_app = get_one_hop_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django first)

from liveblog import scheduler  # noqa: E402
from liveblog.live import broadcast, gcpolicy  # noqa: E402
from liveblog.routing import websocket_urlpatterns  # noqa: E402
from liveblog.sse import EventStreamRouter  # noqa: E402
from project.origins import WebsocketOriginValidator  # noqa: E402
from project.proxies import TrustedProxies  # noqa: E402


class ServerLoop:
    """Captures the loop the application runs on; answers the lifespan protocol itself."""

    def __init__(self, application) -> None:
        self.application = application
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope, receive, send) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # once per loop: a server has one
            self.loop = loop
            broadcast.serve_on(loop)
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.application(scope, receive, send)

    @staticmethod
    async def _lifespan(receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


# TrustedProxies first: Django (REMOTE_ADDR, is_secure) and the consumers see the real client.
application = ServerLoop(TrustedProxies(ProtocolTypeRouter(
    {
        # Event streams (liveblog/sse.py) ahead of Django: hours long, no session, no middleware.
        "http": EventStreamRouter(django_asgi_app),
        # No session or auth middleware: a reader needs neither, and resolving them costs a
        # thread hop per connection (a reconnect storm is thousands of those). The consumer
        # looks the user up from the session cookie when an author posts (liveblog/auth.py),
        # which is why only full origins of the site may open one (project/origins.py).
        "websocket": WebsocketOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)))

# Full garbage collections run between deliveries, never in the middle of one (gcpolicy.py).
gcpolicy.install()

# Scheduled posts go out on time in every server process, whether or not anyone is connected.
scheduler.start_in_server()
