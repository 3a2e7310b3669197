"""What an open connection keeps (project/connections.py) and how a catch-up is written: daphne's
per-connection input queue replaced by a lighter one with the same behaviour, Autobahn's options
on the protocol class with the factory's values, the upgrade request let go; a catch-up written
in runs, no more pinned by a client that does not read than frame by frame."""

import asyncio

import pytest
from daphne.ws_protocol import WebSocketFactory
from django.conf import settings as django_settings

from liveblog.live.delivery import Delivery
from liveblog.live.feed import Frame
from liveblog.live.wire import DirectWire
from project.connections import InputQueue, SendQueue, lean_protocol, release_upgrade
from tests.test_wire import a_kind_of_protocol

# --- The input queue --------------------------------------------------------------------------


async def test_the_input_queue_hands_messages_over_in_order():
    queue = InputQueue()
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait("connect")
    queue.put_nowait("receive")
    assert queue.qsize() == 2
    assert [await queue.get(), await queue.get()] == ["connect", "receive"]
    assert queue.empty() and queue._items is None  # nothing held while empty
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_waiting_get_is_woken_by_a_put():
    queue = InputQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("disconnect")
    assert await asyncio.wait_for(getter, 1) == "disconnect"
    assert queue._getters is None


async def test_a_get_cancelled_after_its_wake_up_passes_it_on():
    queue = InputQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("message")  # wakes the first getter
    first.cancel()  # which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "message"
    assert first.cancelled()


async def test_a_cancelled_get_leaves_no_waiter_behind():
    queue = InputQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.sleep(0)
    assert queue._getters == [] or queue._getters is None
    queue.put_nowait("later")
    assert await queue.get() == "later"


# --- Autobahn's protocol ---------------------------------------------------------------------


def configured_factory():
    factory = WebSocketFactory(object(), server="daphne")
    factory.setProtocolOptions(autoPingTimeout=30, allowNullOrigin=True, openHandshakeTimeout=5,
                               maxMessagePayloadSize=4096, maxFramePayloadSize=4096)
    return factory


def test_the_lean_protocol_has_the_factorys_options_without_copying_them():
    factory = configured_factory()
    protocol = lean_protocol(factory)()
    for name in protocol.CONFIG_ATTRS:
        assert getattr(protocol, name) == getattr(factory, name), name
    # A function option stays the function (not a method of the protocol).
    assert protocol.perMessageCompressionAccept is factory.perMessageCompressionAccept
    assert protocol.maxMessagePayloadSize == 4096
    # Autobahn copies an option only where the protocol lacks it: none is missing, not even
    # tcpNoDelay, which it reads before the copy (stock daphne's sockets never got it).
    assert all(hasattr(type(protocol), name) for name in protocol.CONFIG_ATTRS)
    assert type(protocol).tcpNoDelay is True


def test_the_send_queue_is_a_fifo():
    queue = SendQueue()
    assert not queue and len(queue) == 0
    queue.append((b"a", True))
    queue.append((b"b", False))
    assert queue.popleft() == (b"a", True) and len(queue) == 1


def test_an_upgraded_request_is_let_go_by_its_channel():
    class Channel:
        requests: list

    channel = Channel()
    request = type("Request", (), {"channel": channel})()
    channel.requests = [request]
    release_upgrade(request)
    assert channel.requests == []
    release_upgrade(request)  # once is enough; again changes nothing


# --- A catch-up in runs -----------------------------------------------------------------------


def test_a_direct_wire_writes_a_run_of_frames_at_once():
    protocol = a_kind_of_protocol()
    wire = DirectWire(protocol, max_backlog_bytes=100)
    frames = [Frame(seq, f'{{"seq":{seq}}}') for seq in (1, 2, 3)]
    assert wire.send_many(frames)
    assert protocol.sent == [b'framed:{"seq":1}framed:{"seq":2}framed:{"seq":3}']
    protocol.transport._tempDataLen = 101  # the socket stopped taking data
    assert not wire.send_many(frames)
    assert len(protocol.sent) == 1


class SlowSocketWire:
    """Takes nothing: every byte written stays in the backlog, and each write is recorded."""

    def __init__(self):
        self.runs, self.held = [], 0

    def backlog(self):
        return self.held

    def send(self, frame):
        return self.send_many([frame])

    def send_many(self, frames):
        self.runs.append([frame.seq for frame in frames])
        self.held += sum(len(frame.text) for frame in frames)
        return True

    def abandon(self, code):
        self.abandoned = code


async def test_a_catch_up_fills_the_room_below_the_low_water_in_one_write(settings):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.02  # gives up on the socket after 50 ms
    delivery = Delivery(SlowSocketWire(), slug="final")
    delivery.low_water = 1000
    frames = [Frame(seq, "x" * 300) for seq in range(1, 11)]
    assert not await delivery._paced(frames)
    # 300 + 300 + 300 leave 100 bytes of room: the fourth frame crosses the low water and
    # is the last written, as frame by frame it would be; then the socket takes nothing.
    assert delivery.wire.runs == [[1, 2, 3, 4]]
    assert delivery.wire.held <= delivery.low_water + 300
    assert delivery.cut_loose


def test_the_default_low_water_is_a_quarter_of_the_backlog_bound_at_most():
    delivery = Delivery(SlowSocketWire(), slug="final")
    assert delivery.low_water == min(django_settings.LIVEBLOG_MAX_BACKLOG_BYTES // 4, 64 * 1024)


def test_websockets_are_written_without_nagles_delay():
    """Autobahn sets TCP_NODELAY from an option it reads before copying its options: under stock
    daphne the read failed silently; the lean protocol class has it."""
    import contextlib

    from twisted.internet.address import IPv4Address

    class Transport:
        nodelay = None

        def setTcpNoDelay(self, enabled):  # noqa: N802 - Twisted's name
            self.nodelay = enabled

        def getPeer(self):  # noqa: N802
            return IPv4Address("TCP", "127.0.0.1", 40000)

        def getHost(self):  # noqa: N802
            return IPv4Address("TCP", "127.0.0.1", 8000)

    factory = configured_factory()
    for protocol_class, expected in ((factory.protocol, None), (lean_protocol(factory), True)):
        protocol = protocol_class()
        protocol.factory = factory
        protocol.transport = transport = Transport()
        with contextlib.suppress(Exception):  # what follows needs a real connection
            protocol.connectionMade()
        assert transport.nodelay is expected, protocol_class
