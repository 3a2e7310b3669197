"""REDIS_URL switches on channels-redis: a post made through one daphne process reaches a live
reader on another at once (not at the next heartbeat), both sharing one database."""

import asyncio

import pytest

from devstack.daphne import ApiClient, Site, daphne_processes, feed_url
from devstack.redis import redis_server
from tests.support.ws import frames_until, open_feed

pytestmark = pytest.mark.server


@pytest.fixture
def two_processes(tmp_path):
    with redis_server(tmp_path) as redis:
        # A heartbeat far longer than the test: delivery must come through Redis, not healing.
        site = Site.create(tmp_path, REDIS_URL=redis.url, LIVEBLOG_HEARTBEAT_SECONDS="600")
        with daphne_processes(site) as servers:
            yield servers


async def test_a_post_on_one_process_reaches_readers_on_the_other(two_processes):
    writer_side, reader_side = two_processes
    slug = writer_side.site.slug
    readers = [
        await open_feed(feed_url(server.ws_url, slug, since=0), origin=server.url)
        for server in (reader_side, writer_side)
    ]
    api = ApiClient(writer_side.url).login(writer_side.site.username, writer_side.site.password)
    try:
        for number in range(1, 4):
            await asyncio.to_thread(api.post, slug, f"update {number}")
            for ws, _, _ in readers:
                frames = await frames_until(
                    ws, lambda frame: frame.get("type") == "event",
                    expecting=f"event {number} through Redis", within=5,
                )
                assert [frame["seq"] for frame in frames] == [number], frames
                assert frames[-1]["post"]["body"] == f"update {number}"
    finally:
        for ws, _, _ in readers:
            await ws.close()
