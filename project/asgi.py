"""ASGI entry point: Django for HTTP, the live-blog consumer for websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django first)
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from liveblog.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No session or auth middleware: a reader needs neither, and resolving them costs a
        # thread hop per connection (a reconnect storm is thousands of those). The consumer
        # looks the user up from the session cookie when an author posts (liveblog/auth.py).
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)


# Full garbage collections run between deliveries, never in the middle of one (gcpolicy.py).
from liveblog import gcpolicy  # noqa: E402

gcpolicy.install()
