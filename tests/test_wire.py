"""The outgoing side of a websocket: daphne's connection found behind Channels' middleware, and
the bounded queue used under any other ASGI server."""

import asyncio
import functools

from liveblog.wire import DirectWire, QueuedWire, daphne_protocol, wire_for


class Prepared:
    def __init__(self, payload):
        self.payloadHybi = b"framed:" + payload  # noqa: N815 - Autobahn's name


class FakeDaphneProtocol:
    STATE_OPEN = 3
    _perMessageCompress = None  # noqa: N815

    def __init__(self):
        self.state = self.STATE_OPEN
        self.transport = type("Transport", (), {"dataBuffer": b"", "offset": 0,
                                                "_tempDataLen": 0})()
        self.factory = self
        self.send_queue = []
        self.sent = []

    def prepareMessage(self, payload):  # noqa: N802 - Autobahn's names
        return Prepared(payload)

    def sendPreparedMessage(self, prepared):  # noqa: N802
        self.sent.append(prepared.payloadHybi)

    def sendData(self, data):  # noqa: N802
        self.sent.append(data)

    def sendMessage(self, payload, binary):  # noqa: N802
        self.sent.append(("framed", payload))


class SessionWrapper:
    """Like channels.sessions.InstanceSessionWrapper: holds the server's send as real_send."""

    def __init__(self, send):
        self.real_send = send

    async def send(self, message):
        await self.real_send(message)


async def handle_reply(protocol, message):
    pass


def test_daphnes_connection_is_found_behind_the_session_middleware():
    protocol = FakeDaphneProtocol()
    send = SessionWrapper(functools.partial(handle_reply, protocol)).send
    assert daphne_protocol(send) is protocol
    assert isinstance(wire_for(send, max_backlog_bytes=10, max_queued=10), DirectWire)


def test_any_other_send_gets_the_queued_path():
    async def send(message):
        pass

    assert daphne_protocol(send) is None
    assert daphne_protocol(functools.partial(handle_reply, object())) is None
    assert isinstance(wire_for(send, max_backlog_bytes=10, max_queued=10), QueuedWire)


def test_a_direct_wire_frames_once_and_refuses_a_reader_too_far_behind():
    protocol = FakeDaphneProtocol()
    wire = DirectWire(protocol, max_backlog_bytes=100)
    prepared = wire.prepare("{}")
    assert wire.write("{}", prepared, bounded=True)
    assert protocol.sent == [b"framed:{}"]  # the bytes framed once, as they are
    protocol.transport._tempDataLen = 101  # the socket stopped taking data
    assert not wire.write("{}", prepared, bounded=True)
    assert wire.write("{}")  # frames of the reader's own catch-up are not bounded
    protocol.state = 4  # closing
    assert not wire.write("{}")


async def test_a_queued_wire_keeps_order_and_refuses_beyond_its_bound():
    sent, release = [], asyncio.Event()

    async def send(message):
        await release.wait()  # a reader that does not take anything
        sent.append(message)

    wire = QueuedWire(send, max_queued=3)
    for number in range(3):
        assert wire.write(str(number), bounded=True)
    assert not wire.write("3", bounded=True)  # three waiting: the reader is too slow
    assert wire.write("replayed")  # catch-up frames are not bounded
    wire.close(4008)
    assert not wire.write("after the close")
    release.set()
    await asyncio.wait_for(wire.writer, timeout=2)
    assert [message.get("text", message.get("code")) for message in sent] == [
        "0", "1", "2", "replayed", 4008
    ]
