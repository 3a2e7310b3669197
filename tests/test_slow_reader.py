"""A reader that stops reading (a phone in a pocket, a stalled cell) is cut loose once its unsent
bytes pass the bound; the other readers keep receiving every event at full speed."""

import asyncio
import json
import socket

import pytest
import websockets

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer, Site, feed_url
from tests.support.ws import frames_until, open_feed

pytestmark = pytest.mark.server

POSTS = 150
BODY = "x" * 15_000  # large posts fill the socket buffers quickly


@pytest.fixture(params=["direct", "asgi"])
def server(request, tmp_path):
    """Both ways out of daphne (see test_daphne_integration.py): each one bounds a reader."""
    site = Site.create(tmp_path)
    server = DaphneServer(
        site, LIVEBLOG_MAX_BACKLOG_BYTES="65536",
        LIVEBLOG_DIRECT_WIRE="1" if request.param == "direct" else "0",
    ).start()
    try:
        yield server
    finally:
        server.stop()


async def open_stalled_reader(server):
    """A websocket that reads its first frames and then nothing: a tiny receive buffer, and
    the client library stops reading once one frame waits."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    url = feed_url(server.ws_url, server.site.slug, since=0)
    stalled = await websockets.connect(url, origin=server.url, sock=sock, max_queue=1,
                                       max_size=None)
    assert json.loads(await stalled.recv())["type"] == "hello"
    assert json.loads(await stalled.recv())["type"] == "live"
    return stalled


async def test_a_reader_that_stops_reading_is_cut_loose_and_nobody_waits(server):
    slug = server.site.slug
    stalled = await open_stalled_reader(server)
    healthy, _, _ = await open_feed(feed_url(server.ws_url, slug, since=0), origin=server.url)
    api = ApiClient(server.url).login(server.site.username, server.site.password)

    async def read_everything():
        frames = await frames_until(healthy, lambda frame: frame.get("seq") == POSTS,
                                    expecting=f"all {POSTS} events", within=60)
        return [frame["seq"] for frame in frames if frame["type"] == "event"]

    reading = asyncio.ensure_future(read_everything())
    for number in range(POSTS):
        await asyncio.to_thread(api.post, slug, f"{number} {BODY}")
    assert await reading == list(range(1, POSTS + 1))
    wait_until(lambda: "fell behind" in server.log_path.read_text(), timeout=10,
               message="the stalled reader to be cut loose")
    # The stalled reader's connection ends (it would reconnect with `since`).
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(stalled.recv(), timeout=30)
    await healthy.close()
