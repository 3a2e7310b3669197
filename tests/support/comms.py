"""WebsocketCommunicator helpers: every receive has a deadline and says what it waited for."""

from __future__ import annotations

import asyncio
import json

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from project.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1")
# Where the communicator's "server" listens: the origin check compares the Origin's port with it.
SERVER = ("127.0.0.1", 80)


@sync_to_async
def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


class Reader:
    """A websocket client of the full ASGI stack (origin check, session auth, routing)."""

    def __init__(self, path: str, *, headers: list | None = None) -> None:
        self.communicator = WebsocketCommunicator(
            application, path, headers=[ORIGIN] if headers is None else headers
        )
        self.communicator.scope["server"] = SERVER
        self.frames: list[dict] = []

    @classmethod
    async def open(cls, slug: str, query: str = "", *, user=None) -> Reader:
        headers = [ORIGIN] + ([await session_cookie(user)] if user is not None else [])
        reader = cls(f"/ws/liveblog/{slug}/{query}", headers=headers)
        connected, _ = await reader.communicator.connect(timeout=5)
        assert connected, "the websocket handshake was refused"
        return reader

    async def next(self, timeout: float = 3) -> dict:
        try:
            text = await self.communicator.receive_from(timeout=timeout)
        except TimeoutError:
            raise AssertionError(
                f"no frame within {timeout}s; frames so far: {[f['type'] for f in self.frames]}"
            ) from None
        frame = json.loads(text)
        self.frames.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = 3) -> dict:
        frame = await self.next(timeout)
        assert frame["type"] == kind, f"expected a {kind!r} frame, got {frame}"
        return frame

    async def until(self, predicate, timeout: float = 5) -> list[dict]:
        """Frames up to and including the first one for which predicate(frame) holds."""
        seen = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"condition not met in {timeout}s; got {seen}")
            frame = await self.next(remaining)
            seen.append(frame)
            if predicate(frame):
                return seen

    async def events_until_live(self, timeout: float = 5) -> tuple[list[dict], dict]:
        frames = await self.until(lambda frame: frame["type"] == "live", timeout)
        assert all(frame["type"] == "event" for frame in frames[:-1]), frames
        return frames[:-1], frames[-1]

    async def send(self, frame: dict | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def silent(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()
