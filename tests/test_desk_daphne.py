"""The desk websocket on a real daphne process, over real sockets: the session cookie of a signed-in
browser opens it, a foreign origin does not, anonymous is refused with 4403; and a post the
server's scheduler publishes reaches the desk (published, with its public seq) and the public
readers (post.created), with nothing of the desk on the public socket before that."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from devstack.daphne import ApiClient, DaphneServer, Site, daphne_processes, feed_url
from devstack.redis import redis_server
from tests.support.ws import expect_frame, expect_quiet, frames_until, next_frame, open_feed
from tests.test_scheduler_servers import schedule

pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path):
    site = Site.create(tmp_path)
    # The post is scheduled from another process (`manage.py shell`), which has no channel
    # layer in common with the server: its desk event is delivered from the log at the next
    # heartbeat, which is what this short heartbeat shows too.
    server = DaphneServer(site, LIVEBLOG_HEARTBEAT_SECONDS="1").start()
    try:
        yield server
    finally:
        server.stop()


def desk_url(server: DaphneServer, query: str = "") -> str:
    return f"{server.ws_url}/ws/desk/{server.site.slug}/{query}"


def open_desk(server: DaphneServer, cookie: str | None, *, origin: str | None = None):
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else None
    return websockets.connect(desk_url(server), origin=origin or server.url,
                              additional_headers=headers, open_timeout=5, max_size=None)


def session_of(server: DaphneServer) -> str:
    api = ApiClient(server.url).login(server.site.username, server.site.password)
    return next(cookie.value for cookie in api.cookies if cookie.name == "sessionid")


async def test_a_scheduled_post_reaches_the_desk_then_the_public_when_published(server):
    cookie = await asyncio.to_thread(session_of, server)
    public, _, _ = await open_feed(feed_url(server.ws_url, server.site.slug), origin=server.url)
    async with open_desk(server, cookie) as desk:
        hello = await expect_frame(desk, lambda f: f.get("type") == "hello", expecting="hello")
        assert hello["role"] == "owner" and hello["head"] == 0, hello
        assert hello["heartbeat"] == 1, hello
        snapshot = await expect_frame(desk, lambda f: f.get("type") == "snapshot",
                                      expecting="a snapshot")
        assert snapshot["submissions"] == []
        await expect_frame(desk, lambda f: f == {"type": "live", "head": 0}, expecting="live")

        due = await asyncio.to_thread(schedule, server.site, count=1, lead=3)
        created = (await frames_until(desk, lambda f: f.get("seq") == 1, expecting="seq 1",
                                      within=3))[-1]
        assert created["kind"] == "submission.created"
        assert created["submission"]["state"] == "scheduled"
        # Nothing public before its time.
        await expect_quiet(public, seconds=max(0.1, due - time.time() - 0.2),
                           what="public frame before the post's time")

        published = (await frames_until(desk, lambda f: f.get("seq") == 2, expecting="seq 2",
                                        within=5))[-1]
        assert published["submission"]["state"] == "published", published
        event = (await frames_until(public, lambda f: f.get("type") == "event",
                                    expecting="post.created"))[-1]
        assert event["kind"] == "post.created" and event["seq"] == 1
        assert published["submission"]["seq"] == 1
        assert published["submission"]["post_id"] == event["post"]["id"]
        assert "state" not in event["post"]
    await public.close()


async def test_anonymous_is_refused_with_4403_and_a_foreign_origin_at_the_handshake(server):
    async with open_desk(server, None) as desk:
        error = await next_frame(desk, expecting="an error")
        assert error["code"] == "not_authenticated", error
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await desk.recv()
        assert closed.value.rcvd.code == 4403
    cookie = await asyncio.to_thread(session_of, server)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with open_desk(server, cookie, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with open_desk(server, cookie) as desk:
        assert (await next_frame(desk, expecting="hello"))["type"] == "hello"


async def test_desk_events_cross_processes_through_redis(tmp_path):
    """With Redis, desk events made in another process (a `manage.py shell`) reach the desk
    sockets on two daphne processes live, in order: the heartbeat is far longer than the
    test, so nothing is healed from the log."""
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as redis:
        site = Site.create(tmp_path, REDIS_URL=redis.url, LIVEBLOG_HEARTBEAT_SECONDS="600")
        with daphne_processes(site) as servers:
            cookie = await asyncio.to_thread(session_of, servers[0])
            desks = []
            try:
                for server in servers:
                    desk = await open_desk(server, cookie)
                    desks.append(desk)
                    await frames_until(desk, lambda f: f.get("type") == "live",
                                       expecting="live")
                await asyncio.to_thread(schedule, site, count=2, lead=60)
                for desk in desks:
                    frames = await frames_until(desk, lambda f: f.get("seq") == 2,
                                                expecting="seq 2 live through Redis")
                    assert [frame["seq"] for frame in frames] == [1, 2], frames
                    assert {frame["submission"]["state"] for frame in frames} == {"scheduled"}
            finally:
                for desk in desks:
                    await desk.close()

