"""Small helpers for talking to the live-blog websocket with the `websockets` library.

Every receive has a deadline and fails with a message that says what the test was waiting for and
which frames arrived meanwhile, so a hung or wrong server shows up as a readable assertion.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import websockets

RECEIVE_TIMEOUT = 5.0


def connect(url: str, *, origin: str | None):
    """Open a websocket the way a browser on `origin` would (an Origin header)."""
    return websockets.connect(url, origin=origin, open_timeout=RECEIVE_TIMEOUT, max_size=None)


async def next_frame(ws, *, expecting: str, within: float = RECEIVE_TIMEOUT) -> dict:
    """The next frame as JSON; fails with `expecting` in the message on timeout or close."""
    try:
        raw = await asyncio.wait_for(ws.recv(), within)
    except TimeoutError:
        raise AssertionError(f"no frame within {within}s; expected {expecting}") from None
    except websockets.ConnectionClosed as closed:
        raise AssertionError(f"socket closed ({closed}); expected {expecting}") from None
    assert isinstance(raw, str), f"expected a JSON text frame ({expecting}), got bytes {raw!r}"
    return json.loads(raw)


async def expect_frame(ws, predicate: Callable[[dict], bool], *, expecting: str,
                       within: float = RECEIVE_TIMEOUT) -> dict:
    """The very next frame, which must satisfy `predicate`."""
    frame = await next_frame(ws, expecting=expecting, within=within)
    assert predicate(frame), f"expected {expecting}, got {frame}"
    return frame


async def frames_until(ws, predicate: Callable[[dict], bool], *, expecting: str,
                       within: float = RECEIVE_TIMEOUT, skip_pings: bool = True) -> list[dict]:
    """Frames up to and including the first one satisfying `predicate`, within one deadline.

    Heartbeat pings are left out of the result (and never satisfy the predicate) when
    `skip_pings` is set."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen: list[dict] = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out after {within}s waiting for {expecting}; "
                                 f"frames meanwhile: {seen}")
        try:
            frame = await next_frame(ws, expecting=expecting, within=remaining)
        except AssertionError as error:
            raise AssertionError(f"{error}; frames meanwhile: {seen}") from None
        if skip_pings and frame.get("type") == "ping":
            continue
        seen.append(frame)
        if predicate(frame):
            return seen


async def expect_quiet(ws, *, seconds: float, what: str) -> None:
    """No frame other than a ping arrives for `seconds` (nothing duplicated or unexpected)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            return
        frame = json.loads(raw)
        assert frame.get("type") == "ping", f"expected no {what}, got {frame}"


async def open_feed(url: str, *, origin: str) -> tuple[object, dict, list[dict]]:
    """Connect, read `hello` and everything up to `live`; returns (socket, hello, catch-up)."""
    ws = await connect(url, origin=origin)
    try:
        hello = await expect_frame(ws, lambda f: f.get("type") == "hello",
                                   expecting=f"a hello frame first on {url}")
        catch_up = await frames_until(ws, lambda f: f.get("type") == "live",
                                      expecting=f"catch-up then a live frame on {url}",
                                      skip_pings=False)
    except BaseException:
        await ws.close()
        raise
    return ws, hello, catch_up
