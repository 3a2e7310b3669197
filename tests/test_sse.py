"""The live feed as an event stream (SSE, liveblog/sse.py): the websocket's frames, each an SSE
message with `id: <epoch>:<seq>` where it has a position; `Last-Event-ID` over the query; the same
hub, the same bounds (backlog, sockets per address); refusals as HTTP statuses with JSON.

In process through the full ASGI stack first (the queued wire), then against real daphne
processes, with its fast path and without."""

import asyncio
import json
import socket

import pytest
import websockets
from channels.db import database_sync_to_async

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer, Site, feed_url
from liveblog import services
from liveblog.live.delivery import Delivery
from liveblog.live.hub import get_hub
from liveblog.models import Event
from tests.support.comms import Reader
from tests.support.sse import AsgiStream, SocketStream, StreamClosed
from tests.support.ws import frames_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def publish(make_post):
    return database_sync_to_async(make_post)


async def stream_of(slug, query="", **options) -> AsgiStream:
    return await AsgiStream(f"/sse/liveblog/{slug}/{query}", **options).open()


def stored_frame(seq):
    return Event.objects.get(seq=seq).frame


# --- In process ---------------------------------------------------------------------------------


async def test_a_stream_carries_the_websocket_frames_each_event_with_its_position(blog, publish):
    for number in range(3):
        await publish(f"update {number}")
    stream = await stream_of(blog.slug, f"?since=1&epoch={blog.epoch}")
    assert stream.status == 200
    assert stream.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert stream.headers[b"cache-control"] == b"no-store, no-transform"
    assert stream.headers[b"x-accel-buffering"] == b"no"
    hello = await stream.expect("hello")
    assert hello.id is None and hello.frame["head"] == 3
    replayed = [await stream.expect("event") for _ in range(2)]
    assert [m.id for m in replayed] == [f"{blog.epoch}:2", f"{blog.epoch}:3"]
    assert [m.data for m in replayed] == [
        await database_sync_to_async(stored_frame)(seq) for seq in (2, 3)]
    live = await stream.expect("live")
    assert live.id is None and live.frame == {"type": "live", "head": 3}
    assert stream.parser.retry is not None and 1000 <= stream.parser.retry <= 5000
    assert stream.parser.comments >= 1  # the opening comment, for buffering proxies
    await publish("live one")
    event = await stream.expect("event")
    assert event.id == f"{blog.epoch}:4"
    assert event.data == await database_sync_to_async(stored_frame)(4)
    await stream.close()


async def test_a_new_reader_gets_a_snapshot_named_by_its_head(blog, publish):
    await publish("one")
    stream = await stream_of(blog.slug)
    await stream.expect("hello")
    snapshot = await stream.expect("snapshot")
    assert snapshot.id == f"{blog.epoch}:1" and snapshot.frame["head"] == 1
    await stream.expect("live")
    await stream.close()


async def test_last_event_id_wins_over_the_query(blog, publish):
    for number in range(4):
        await publish(f"update {number}")
    stream = await stream_of(blog.slug, "?since=0&epoch=other",
                             headers=[(b"last-event-id", f"{blog.epoch}:2".encode())])
    await stream.expect("hello")
    events = await stream.until(lambda frame: frame["type"] == "live")
    assert [m.frame.get("seq") for m in events] == [3, 4, None]
    await stream.close()


@pytest.mark.parametrize("last_event_id", [b"garbage", b"abc:x", b":3", b"e" * 80 + b":1"])
async def test_a_malformed_last_event_id_gets_a_snapshot_and_says_why(blog, publish,
                                                                      last_event_id):
    await publish("one")
    stream = await stream_of(blog.slug, headers=[(b"last-event-id", last_event_id)])
    error = await stream.expect("error")
    assert error.frame["code"] == "invalid" and "Last-Event-ID" in error.frame["detail"]
    await stream.expect("hello")
    await stream.expect("snapshot")
    await stream.close()


async def test_stream_and_websocket_readers_share_the_process_subscription(blog, publish):
    stream = await stream_of(blog.slug)
    await stream.until(lambda frame: frame["type"] == "live")
    reader = await Reader.open(blog.slug)
    await reader.until(lambda frame: frame["type"] == "live")
    assert get_hub().reader_count(blog.pk) == 2
    await publish("to both")
    over_stream = (await stream.expect("event")).data
    over_socket = await reader.expect("event")
    assert json.loads(over_stream) == over_socket
    await stream.close()
    wait_until(lambda: get_hub().reader_count(blog.pk) == 1, timeout=5,
               message="the stream reader to leave the hub")
    await reader.close()


async def test_a_log_reset_restarts_a_stream_reader_from_a_snapshot(blog, publish, owner):
    await publish("before")
    stream = await stream_of(blog.slug)
    await stream.until(lambda frame: frame["type"] == "live")
    await database_sync_to_async(services.blog_log_reset)(actor=owner, blog_id=blog.pk)
    snapshot = await stream.expect("snapshot")
    new_epoch = snapshot.frame["epoch"]
    assert new_epoch != blog.epoch and snapshot.id == f"{new_epoch}:{snapshot.frame['head']}"
    await stream.expect("live")
    await stream.close()


async def test_unknown_blogs_and_other_methods_are_refused_with_json(blog):
    missing = await stream_of("no-such-blog")
    assert missing.status == 404 and json.loads(missing.body)["error"] == "not_found"
    posted = await stream_of(blog.slug, method="POST")
    assert posted.status == 405 and posted.headers[b"allow"] == b"GET"
    assert json.loads(posted.body)["error"] == "method_not_allowed"


async def test_streams_count_against_the_sockets_per_address(blog, settings):
    settings.LIVEBLOG_MAX_SOCKETS_PER_ADDRESS = 2
    phone = ("203.0.113.9", 40000)
    first = await stream_of(blog.slug, client=phone)
    websocket = Reader(f"/ws/liveblog/{blog.slug}/")
    websocket.communicator.scope["client"] = phone
    assert (await websocket.communicator.connect(timeout=5))[0]
    refused = await stream_of(blog.slug, client=phone)
    assert refused.status == 429 and refused.headers[b"retry-after"] == b"30"
    assert json.loads(refused.body)["error"] == "rate_limited"
    other = await stream_of(blog.slug, client=("203.0.113.10", 40000))
    assert other.status == 200
    await first.close()
    again = await stream_of(blog.slug, client=phone)  # the slot came back
    assert again.status == 200
    for stream in (other, again):
        await stream.close()
    await websocket.communicator.disconnect()


class RecordingWire:
    def __init__(self):
        self.sent, self.keep_alives = [], 0

    def send(self, frame):
        self.sent.append(frame)
        return True

    def keep_alive(self):
        self.keep_alives += 1


def test_a_heartbeat_during_a_catch_up_keeps_the_stream_alive_without_a_ping():
    delivery = Delivery(RecordingWire(), slug="final")
    delivery.hub_ping(5)  # catching up: no ping inside a replay, a comment instead
    assert delivery.wire.sent == [] and delivery.wire.keep_alives == 1
    delivery.catching_up = False
    delivery.hub_ping(5)
    assert delivery.wire.sent == ['{"type":"ping","head":5}']


# --- Against daphne -----------------------------------------------------------------------------


@pytest.fixture(params=["direct", "asgi"])
def server(request, tmp_path):
    site = Site.create(tmp_path)
    server = DaphneServer(
        site, LIVEBLOG_MAX_BACKLOG_BYTES="65536", LIVEBLOG_HEARTBEAT_SECONDS="0.5",
        LIVEBLOG_DIRECT_WIRE="1" if request.param == "direct" else "0",
    ).start()
    try:
        yield server
    finally:
        server.stop()
    assert "fast path off" not in server.log()


def socket_stream(server, query="", **options) -> SocketStream:
    return SocketStream("127.0.0.1", server.port,
                        f"/sse/liveblog/{server.site.slug}/{query}", **options)


POSTS = 120
BODY = "x" * 15_000  # large posts fill the socket buffers quickly


@pytest.mark.server
async def test_over_daphne_a_stream_replays_goes_live_pings_and_a_slow_reader_is_cut_loose(
        server):
    api = ApiClient(server.url).login(server.site.username, server.site.password)
    await asyncio.to_thread(api.post, server.site.slug, "before")
    stream = await socket_stream(server, "?since=0").open()
    assert stream.status == 200 and stream.headers["transfer-encoding"] == "chunked"
    await stream.expect("hello")
    assert (await stream.expect("event")).frame["seq"] == 1
    await stream.expect("live")
    assert (await stream.expect("ping", timeout=3)).frame == {"type": "ping", "head": 1}

    # A reader that stops reading: a tiny receive buffer, nothing read after its first bytes.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    stalled = await socket_stream(server, "?since=1", sock=sock).open()
    websocket_url = feed_url(server.ws_url, server.site.slug, since=1)
    healthy = await websockets.connect(websocket_url, origin=server.url, max_size=None)

    async def stream_seqs():
        messages = await stream.until(lambda frame: frame.get("seq") == POSTS + 1, timeout=60)
        return [m.frame["seq"] for m in messages if m.frame["type"] == "event"]

    async def socket_seqs():
        frames = await frames_until(healthy, lambda frame: frame.get("seq") == POSTS + 1,
                                    expecting="every event", within=60)
        return [frame["seq"] for frame in frames if frame["type"] == "event"]

    reading = asyncio.gather(stream_seqs(), socket_seqs())
    for number in range(POSTS):
        await asyncio.to_thread(api.post, server.site.slug, f"{number} {BODY}")
    over_stream, over_socket = await reading
    assert over_stream == over_socket == list(range(2, POSTS + 2))
    wait_until(lambda: "fell behind" in server.log_path.read_text(), timeout=10,
               message="the stalled stream reader to be cut loose")
    with pytest.raises(StreamClosed):  # its connection was dropped: it reconnects with its id
        while True:
            await stalled.next(timeout=30)
    for closing in (stream.close(), stalled.close(), healthy.close()):
        await closing
