from django.urls import path

from .consumers import LiveblogConsumer

websocket_urlpatterns = [
    path("ws/liveblog/<slug:slug>/", LiveblogConsumer.as_asgi()),
]
