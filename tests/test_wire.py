"""The outgoing side of a websocket: daphne's connection found from its send callable, the fast
path behind its probe, and the bounded queue used anywhere else."""

import asyncio
import functools
import logging

import pytest

from liveblog.live import wire as wire_module
from liveblog.live.feed import Frame
from liveblog.live.wire import (
    DirectWire,
    QueuedWire,
    daphne_protocol,
    wait_for_room,
    wire_for,
)


class Prepared:
    def __init__(self, payload):
        self.payloadHybi = b"framed:" + payload  # noqa: N815 - Autobahn's name


class FakeTransport:
    def __init__(self):
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0  # noqa: N815
        self.connected, self.disconnecting = True, False
        self.producer, self.producerPaused = None, False  # noqa: N815
        self.reading = True

    def pauseProducing(self):  # noqa: N802 - Twisted's names
        self.reading = False

    def resumeProducing(self):  # noqa: N802
        self.reading = True

    def registerProducer(self, producer, streaming):  # noqa: N802 - Twisted's names
        assert self.producer is None and streaming
        self.producer = producer

    def unregisterProducer(self):  # noqa: N802
        self.producer = None


class FakeDaphneProtocol:
    """Autobahn's protocol as daphne runs it: the public API and the internals the fast path
    reads (a class per test, so that the per-process probe sees a new kind each time)."""

    STATE_OPEN = 3
    _perMessageCompress = None  # noqa: N815

    def __init__(self):
        self.state = self.STATE_OPEN
        self.transport = FakeTransport()
        self.factory = self
        self.send_queue = []
        self.application_queue = asyncio.Queue()
        self.sent = []
        self.closed_with = None

    def prepareMessage(self, payload):  # noqa: N802 - Autobahn's names
        return Prepared(payload)

    def sendPreparedMessage(self, prepared):  # noqa: N802
        self.sent.append(prepared.payloadHybi)

    def sendData(self, data):  # noqa: N802
        self.sent.append(data)

    def sendMessage(self, payload, binary):  # noqa: N802
        self.sent.append(("framed", payload))

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):  # noqa: N802, N803
        self.closed_with = code
        self.state = 4  # closing



def a_kind_of_protocol(**overrides):
    """A new protocol class (the probe remembers its verdict per class)."""
    return type("DaphneProtocol", (FakeDaphneProtocol,), overrides)()


class Server:
    """Stands in for daphne's Server: the application gets partial(server.handle_reply, proto)."""

    async def handle_reply(self, protocol, message):
        protocol.sent.append(("asgi", message))


def daphne_send(protocol):
    return functools.partial(Server().handle_reply, protocol)


def test_daphnes_connection_is_found_from_its_send_callable():
    protocol = a_kind_of_protocol()
    assert daphne_protocol(daphne_send(protocol)) is protocol


def test_any_other_send_is_not_daphne():
    async def send(message):
        pass

    assert daphne_protocol(send) is None
    assert daphne_protocol(functools.partial(Server().handle_reply, object())) is None
    assert daphne_protocol(functools.partial(send, a_kind_of_protocol())) is None


def test_the_fast_path_is_used_when_everything_it_needs_is_there(settings):
    settings.LIVEBLOG_DIRECT_WIRE = True
    assert isinstance(wire_for(daphne_send(a_kind_of_protocol())), DirectWire)


async def test_a_missing_internal_falls_back_with_one_warning(settings, caplog):
    settings.LIVEBLOG_DIRECT_WIRE = True
    kind = type("RenamedInternals", (FakeDaphneProtocol,), {})
    first, second = kind(), kind()
    for protocol in (first, second):
        del protocol.transport._tempDataLen  # a Twisted upgrade renamed it
    with caplog.at_level(logging.WARNING, logger=wire_module.__name__):
        wires = [wire_for(daphne_send(first)), wire_for(daphne_send(second))]
    assert all(isinstance(wire, QueuedWire) for wire in wires)
    warnings = [record for record in caplog.records if "fast path off" in record.message]
    assert len(warnings) == 1 and "transport._tempDataLen" in warnings[0].message
    assert wires[0].send("{}")
    await wires[0].idle()
    assert first.sent == [("asgi", {"type": "websocket.send", "text": "{}"})]


def test_a_setting_turns_the_fast_path_off(settings):
    settings.LIVEBLOG_DIRECT_WIRE = False
    assert isinstance(wire_for(daphne_send(a_kind_of_protocol())), QueuedWire)


def test_any_other_server_gets_the_queued_path(settings):
    async def send(message):
        pass

    assert isinstance(wire_for(send), QueuedWire)


def test_a_direct_wire_frames_once_and_refuses_a_reader_too_far_behind():
    protocol = a_kind_of_protocol()
    wire = DirectWire(protocol, max_backlog_bytes=100)
    frame = Frame(1, "{}")
    assert wire.send(frame)
    assert protocol.sent == [b"framed:{}"]  # the bytes framed once, as they are
    assert wire.send(frame)
    assert protocol.sent == [b"framed:{}", b"framed:{}"]
    protocol.transport._tempDataLen = 101  # the socket stopped taking data
    assert wire.backlog() == 101
    assert not wire.send(frame)
    assert not wire.send("{}")  # every frame counts: a catch-up's, an error's too
    protocol.transport._tempDataLen = 0
    assert wire.send("{}")
    assert protocol.sent[-1] == ("framed", b"{}")
    wire.abandon(4008)
    assert protocol.closed_with == 4008
    protocol.state = 4  # closing
    assert not wire.send("{}")


def test_a_direct_wire_closes_after_what_it_sent():
    protocol = a_kind_of_protocol()
    wire = DirectWire(protocol, max_backlog_bytes=100)
    wire.send('{"type":"error"}')
    wire.close(4404)
    assert protocol.sent == [("framed", b'{"type":"error"}')] and protocol.closed_with == 4404


async def test_a_queued_wire_keeps_order_and_refuses_beyond_its_bound():
    sent, release = [], asyncio.Event()

    async def send(message):
        await release.wait()  # a reader that does not take anything
        sent.append(message)

    wire = QueuedWire(send, max_queued=3, max_backlog_bytes=10**6)
    for number in range(3):
        assert wire.send(Frame(number, str(number)))
    assert not wire.send("3")  # three waiting: the reader is too slow
    assert not wire.send("replayed")  # catch-up frames count too
    wire.close(4008)
    assert not wire.send("after the close")
    release.set()
    await asyncio.wait_for(wire.idle(), timeout=2)
    assert [message.get("text", message.get("code")) for message in sent] == [
        "0", "1", "2", 4008
    ]


async def test_a_queued_wire_counts_the_bytes_it_holds():
    release = asyncio.Event()

    async def send(message):
        await release.wait()

    wire = QueuedWire(send, max_queued=100, max_backlog_bytes=10)
    assert wire.send("x" * 8) and wire.send("x" * 8)  # 8 bytes waited before the second
    assert wire.backlog() == 16
    assert not wire.send("x")
    release.set()
    await asyncio.wait_for(wire.idle(), timeout=2)
    assert wire.backlog() == 0 and wire.send("x")


class Backlog:
    """A wire whose backlog follows a script, one value per look."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def backlog(self) -> int:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


async def test_a_paced_sender_waits_while_the_socket_takes_bytes():
    wire = Backlog(900, 800, 700, 600, 500, 400, 100)
    assert await wait_for_room(wire, low_water=200, stall_seconds=0.05)
    assert wire.values == [100]


async def test_a_paced_sender_gives_up_on_a_socket_that_takes_nothing():
    wire = Backlog(900, 800, 800)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await wait_for_room(wire, low_water=200, stall_seconds=0.1)
    assert loop.time() - started >= 0.1


@pytest.mark.parametrize("http_channel_registered", [True, False])
async def test_a_queued_wire_under_daphne_is_bounded_by_what_the_socket_did_not_take(
    settings, http_channel_registered
):
    """Fast path off under daphne: ASGI send never waits there, so the bound is the bytes
    written while Twisted reports the socket full (a streaming producer's `producerPaused`:
    daphne's HTTP channel stays registered after the upgrade; else the wire registers)."""
    settings.LIVEBLOG_DIRECT_WIRE = False
    settings.LIVEBLOG_MAX_BACKLOG_BYTES = 10
    protocol = a_kind_of_protocol()
    transport = protocol.transport
    http_channel = object()
    if http_channel_registered:
        transport.registerProducer(http_channel, True)
    wire = wire_for(daphne_send(protocol))
    assert isinstance(wire, QueuedWire) and transport.producer is not None
    assert wire.send("x" * 8)
    await wire.idle()
    transport.producerPaused = True  # Twisted: more than its buffer size waits
    for _ in range(2):
        assert wire.send("x" * 8)
        await wire.idle()
    assert wire.backlog() == 16  # handed over since it filled up
    assert not wire.send("x" * 8)
    transport.producerPaused = False  # drained
    assert wire.send("x" * 8)
    wire.abandon(4008)
    # Released if it was ours (Twisted can close the connection); daphne's left alone.
    assert transport.producer is (http_channel if http_channel_registered else None)
    await wire.idle()
    # Closed beneath daphne's ASGI close, which would refuse a code like 1008 or 1011.
    assert protocol.closed_with == 4008


@pytest.mark.parametrize("code", [1008, 1011, 1013, 4404])
def test_a_direct_wire_closes_with_any_code_of_the_protocol(code):
    protocol = a_kind_of_protocol()
    DirectWire(protocol, max_backlog_bytes=100).close(code)
    assert protocol.closed_with == code


def test_a_direct_wire_shut_on_an_abusive_client_reads_nothing_more():
    protocol = a_kind_of_protocol()
    DirectWire(protocol, max_backlog_bytes=100).shut(1008)
    assert protocol.closed_with == 1008 and not protocol.transport.reading


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    monkeypatch.setattr(wire_module, "_probed", {})


def test_a_direct_wire_stops_reading_a_client_far_ahead_of_the_consumer():
    protocol = a_kind_of_protocol()
    wire = DirectWire(protocol, max_backlog_bytes=100)
    queue, transport = protocol.application_queue, protocol.transport
    for _ in range(wire_module.INPUT_HIGH_WATER + 1):
        queue.put_nowait({"type": "websocket.receive", "text": "{}"})
    wire.pace_input()
    assert not transport.reading
    while queue.qsize() > wire_module.INPUT_LOW_WATER + 1:
        queue.get_nowait()
        wire.pace_input()
        assert not transport.reading  # not before the consumer has caught up
    queue.get_nowait()
    wire.pace_input()
    assert transport.reading
    wire.shut(1008)
    assert not transport.reading
    queue.get_nowait()
    wire.pace_input()
    assert not transport.reading  # never again once shut
