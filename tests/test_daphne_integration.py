"""A real daphne process on loopback, spoken to over real sockets: the wire protocol end to end.

Two readers see the same event frame for an HTTP post; a reader that went away and comes back with
`since`/`epoch` gets exactly the events it missed, in order, then `live`; a `since` from another
epoch gets a snapshot; a websocket from a foreign Origin is refused at the handshake.
"""

import asyncio

import pytest
import websockets

from devstack.daphne import ApiClient, DaphneServer, Site, feed_url
from tests.support.ws import (
    connect,
    expect_frame,
    expect_quiet,
    next_frame,
    open_feed,
)

pytestmark = pytest.mark.server


# The whole suite runs twice: with daphne's fast path (frames written straight to the
# connection) and with it off (frames through ASGI send), the fallback a Twisted or Autobahn
# upgrade would land on (liveblog/live/wire.py).
WIRES = {"direct": "1", "asgi": "0"}


@pytest.fixture(params=WIRES)
def server(request, tmp_path):
    site = Site.create(tmp_path)
    server = DaphneServer(site, LIVEBLOG_DIRECT_WIRE=WIRES[request.param]).start()
    try:
        yield server
    finally:
        server.stop()
    # The probe found everything the fast path needs in this Twisted and Autobahn.
    assert "fast path off" not in server.log()


@pytest.fixture
def api(server):
    return ApiClient(server.url).login(server.site.username, server.site.password)


async def post(api: ApiClient, slug: str, body: str) -> dict:
    """Publish over HTTP without blocking the event loop the sockets live on."""
    return await asyncio.to_thread(api.post, slug, body)


def is_event(seq: int):
    return lambda frame: frame.get("type") == "event" and frame.get("seq") == seq


async def test_two_readers_share_live_events_and_a_reconnect_replays_exactly_the_gap(server, api):
    slug = server.site.slug
    url = feed_url(server.ws_url, slug)
    first, hello_a, catch_up_a = await open_feed(url, origin=server.url)
    second, hello_b, catch_up_b = await open_feed(url, origin=server.url)
    try:
        for hello, catch_up in ((hello_a, catch_up_a), (hello_b, catch_up_b)):
            assert hello["blog"] == slug and hello["head"] == 0, hello
            assert hello["heartbeat"] == 15, hello
            assert [frame["type"] for frame in catch_up] == ["snapshot", "live"], catch_up
            snapshot, live = catch_up
            assert snapshot["epoch"] == hello["epoch"] and snapshot["head"] == 0, snapshot
            assert snapshot["posts"] == [], snapshot
            assert live == {"type": "live", "head": 0}, live
        epoch = hello_a["epoch"]
        assert hello_b["epoch"] == epoch

        created = await post(api, slug, "Kick-off at Wembley")
        seq = created["seq"]
        assert seq == 1, created
        frame_a = await expect_frame(first, is_event(seq),
                                     expecting=f"event seq {seq} on reader A")
        frame_b = await expect_frame(second, is_event(seq),
                                     expecting=f"event seq {seq} on reader B")
        assert frame_a == frame_b, "both readers must get the very same frame"
        assert frame_a["kind"] == "post.created", frame_a
        assert frame_a["post"]["body"] == "Kick-off at Wembley", frame_a
        assert frame_a["post"]["id"] == created["post"]["id"], frame_a
        assert "Kick-off at Wembley" in frame_a["post"]["html"], frame_a
        last_seen = frame_b["seq"]
    finally:
        await second.close()

    try:
        missed = [await post(api, slug, f"Update {n}") for n in range(1, 6)]
        assert [answer["seq"] for answer in missed] == list(range(last_seen + 1, last_seen + 6))
        # The reader that stayed sees all five live, in order.
        for answer in missed:
            frame = await expect_frame(first, is_event(answer["seq"]),
                                       expecting=f"live event seq {answer['seq']} on reader A")
            assert frame["post"]["body"] == answer["post"]["body"], frame

        back = await connect(feed_url(server.ws_url, slug, since=last_seen, epoch=epoch),
                             origin=server.url)
        try:
            hello = await expect_frame(back, lambda f: f.get("type") == "hello",
                                       expecting="hello first on the reconnect")
            assert hello["epoch"] == epoch and hello["head"] == last_seen + 5, hello
            for answer in missed:
                frame = await next_frame(
                    back, expecting=f"replayed event seq {answer['seq']} (no snapshot)"
                )
                assert frame.get("type") == "event", \
                    f"expected replayed event seq {answer['seq']}, got {frame}"
                assert frame["seq"] == answer["seq"], \
                    f"expected seq {answer['seq']} next in the replay, got {frame}"
                assert frame["kind"] == "post.created", frame
                assert frame["post"]["body"] == answer["post"]["body"], frame
            live = await next_frame(back, expecting="live right after the replay")
            assert live == {"type": "live", "head": last_seen + 5}, \
                f"expected live after the 5 replayed events, got {live}"

            # Live delivery continues on the reconnected socket with the next seq, once.
            newest = await post(api, slug, "Back live")
            assert newest["seq"] == last_seen + 6
            frame = await expect_frame(back, is_event(newest["seq"]),
                                       expecting=f"live event seq {newest['seq']} after replay")
            assert frame["post"]["body"] == "Back live"
            await expect_quiet(back, seconds=0.5, what="frame after the newest event")
        finally:
            await back.close()
    finally:
        await first.close()


async def test_since_from_another_epoch_gets_a_snapshot(server, api):
    slug = server.site.slug
    written = [await post(api, slug, f"Line-up {n}") for n in range(1, 4)]
    head = written[-1]["seq"]
    assert head == 3
    fresh, hello, _ = await open_feed(feed_url(server.ws_url, slug), origin=server.url)
    await fresh.close()
    epoch = hello["epoch"]
    stale_epoch = "0" * len(epoch) if epoch != "0" * len(epoch) else "1" * len(epoch)

    ws = await connect(feed_url(server.ws_url, slug, since=1, epoch=stale_epoch),
                       origin=server.url)
    try:
        hello = await expect_frame(ws, lambda f: f.get("type") == "hello",
                                   expecting="hello first")
        assert hello["epoch"] == epoch and hello["head"] == head, hello
        snapshot = await next_frame(ws, expecting="a snapshot for a since from another epoch")
        assert snapshot.get("type") == "snapshot", (
            f"expected a snapshot (not a replay) for since=1 from epoch {stale_epoch}, "
            f"got {snapshot}"
        )
        assert snapshot["epoch"] == epoch and snapshot["head"] == head, snapshot
        assert [p["body"] for p in snapshot["posts"]] == ["Line-up 3", "Line-up 2", "Line-up 1"]
        live = await next_frame(ws, expecting="live after the snapshot")
        assert live == {"type": "live", "head": head}, live
    finally:
        await ws.close()


async def test_websocket_from_a_foreign_origin_is_refused(server):
    url = feed_url(server.ws_url, server.site.slug)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(url, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403, refused.value

    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(url, origin=None):
            pass
    assert refused.value.response.status_code == 403, refused.value

    # The same server still accepts its own origin.
    ws, hello, _ = await open_feed(url, origin=server.url)
    await ws.close()
    assert hello["type"] == "hello"
