from django.urls import path

from .consumers import LiveblogConsumer
from .desk_consumer import DeskConsumer

websocket_urlpatterns = [
    path("ws/liveblog/<slug:slug>/", LiveblogConsumer.as_asgi()),
    # The desk: signed-in members only (liveblog/desk_consumer.py), behind the same origin
    # check as every websocket (project/asgi.py).
    path("ws/desk/<slug:slug>/", DeskConsumer.as_asgi()),
]
