"""The bench's Socket.IO reader (bench.streams): Engine.IO 4 / Socket.IO 5 packets decoded, the
connect and recovery packets it sends, the stream it gives the load generator (pings answered,
the connect acknowledgement as `live`, events as frames); and once for real, the load generator's
readers on bench/socketio's Node server: live, two broadcasts, a storm that recovers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect as sync_connect

from bench.processes import loadgen, socketio_missing, socketio_server
from bench.reference import event_frame
from bench.report import comparisons, format_comparisons
from bench.streams import (
    Packet,
    SocketIOSession,
    SocketIOStream,
    StreamEnded,
    connect_packet,
    decode_packet,
    socketio_url,
)

OPEN = '0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


@pytest.mark.parametrize(("message", "packet"), [
    (OPEN, Packet("open", {"sid": "e1", "upgrades": [], "pingInterval": 25000,
                           "pingTimeout": 20000, "maxPayload": 1000000})),
    ("2", Packet("ping")),
    ("3", Packet("pong")),
    ("6", Packet("noop")),
    ("1", Packet("close")),
    ('40{"sid":"s1","pid":"p1"}', Packet("connect", {"sid": "s1", "pid": "p1"})),
    ("40", Packet("connect")),
    ("41", Packet("disconnect")),
    ('42["event",{"seq":3},"Q8o5wPu"]', Packet("event", ["event", {"seq": 3}, "Q8o5wPu"])),
    ('42/admin,12["event",{"seq":3}]', Packet("event", ["event", {"seq": 3}], "/admin")),
    ('44{"message":"Invalid namespace"}', Packet("connect_error",
                                                 {"message": "Invalid namespace"})),
])
def test_decode_packet(message: str, packet: Packet) -> None:
    assert decode_packet(message) == packet


@pytest.mark.parametrize("message", ["", "x", "9", "4", "47[]"])
def test_decode_packet_refuses_what_is_not_engine_io(message: str) -> None:
    with pytest.raises(ValueError, match="not an? "):
        decode_packet(message)


def test_connect_packet_asks_for_recovery_only_with_a_pid_and_an_offset() -> None:
    assert connect_packet() == "40"
    assert connect_packet("p1", None) == "40"
    assert connect_packet("p1", "Q8o5wPt") == '40{"pid":"p1","offset":"Q8o5wPt"}'


@pytest.mark.parametrize(("url", "expected"), [
    ("ws://127.0.0.1:3000/", ("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket", None)),
    ("ws://127.0.0.1:3000", ("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket", None)),
    ("ws://h:1/socket.io/?since=1", ("ws://h:1/socket.io/?EIO=4&transport=websocket", 1)),
    ("ws://h:1/socket.io/?EIO=3&a=b&since=20",
     ("ws://h:1/socket.io/?EIO=4&a=b&transport=websocket", 20)),
])
def test_socketio_url(url: str, expected: tuple[str, int | None]) -> None:
    assert socketio_url(url) == expected


def test_session_keeps_the_offsets_of_the_events_it_saw() -> None:
    session = SocketIOSession()
    session.seen(["event", {"seq": 1}, "o1"])
    session.seen(["event", {"seq": 2}, "o2"])
    session.seen(["event", {"seq": 3}])  # no offset: a server without recovery
    session.seen(["other", "text", "o9"])
    assert session.offsets == {1: "o1", 2: "o2"}
    assert session.last_offset == "o9"
    assert (session.offset(None), session.offset(1), session.offset(7)) == ("o9", "o1", None)


class FakeSocket:
    """A websocket that gives the messages it was made with, then is closed."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.sent: list[str] = []

    async def recv(self) -> str:
        if not self.messages:
            raise ConnectionClosedOK(None, None)
        return self.messages.pop(0)

    async def send(self, message: str) -> None:
        self.sent.append(message)


def test_stream_answers_pings_and_gives_replayed_events_then_live_then_events() -> None:
    session = SocketIOSession(pid="p1")
    replayed = '42["event",{"type":"event","seq":2,"pad":"x"},"o2"]'
    ack = '40{"sid":"s2","pid":"p1"}'
    event = '42["event",{"type":"event","seq":3},"o3"]'
    ws = FakeSocket(["2", replayed, "6", '42["other",1]', ack, "2", event, "41"])
    stream = SocketIOStream(ws, session)

    async def read_all() -> list[tuple[dict, int]]:
        frames = []
        with pytest.raises(StreamEnded, match="disconnect"):
            while True:
                frames.append((await stream.frame())[:2])
        return frames

    frames = asyncio.run(read_all())
    assert frames == [({"type": "event", "seq": 2, "pad": "x"}, len(replayed)),
                      ({"type": "live", "sid": "s2", "pid": "p1"}, len(ack)),
                      ({"type": "event", "seq": 3}, len(event))]
    assert ws.sent == ["3", "3"]
    assert session.recovered
    assert session.offsets == {2: "o2", 3: "o3"}


# --- The real server ------------------------------------------------------------------------------

READERS = 10
TIMEOUT = 60.0


@pytest.fixture
def server(tmp_path: Path):
    if missing := socketio_missing():
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with socketio_server(tmp_path / "socketio.log") as running:
        yield running


def test_loadgen_readers_go_live_get_broadcasts_and_recover_after_a_storm(
        server, tmp_path: Path) -> None:
    url = server.readers_url
    with (sync_connect(f"{server.ws_url}/control") as control,
          loadgen(url, origin=None, readers=READERS, procs=2, out=tmp_path / "out.json",
                  extra=("--transport", "socketio")) as load):
        assert load.wait_ready(TIMEOUT)["live"] == READERS
        for seq in (1, 2):
            control.send(event_frame(seq, 1200))
        assert load.wait_for(2, timeout=TIMEOUT) == {"readers": READERS, "complete": READERS}
        stormed = load.storm(f"{url}?since=1", timeout=TIMEOUT)
        assert (stormed["live"], stormed["catch_up"]) == (READERS, {"2..2": READERS}), stormed
        control.send(event_frame(3, 1200))
        result = load.finish(events=3, timeout=TIMEOUT)
    assert result["live"] == READERS
    assert {seq: len(times) for seq, times in result["arrivals"].items()} == {
        "1": READERS, "2": READERS, "3": READERS}
    assert (result["duplicates"], result["out_of_order"], result["errors"]) == (0, 0, {})
    # On the wire: 42["event",<the 1200-byte frame>,"<offset>"]
    assert all(1200 + 14 < int(size) < 1200 + 30 for size in result["frame_bytes"]), result


def test_comparisons_put_liveblog_beside_both_references_of_the_run() -> None:
    def row(scenario: str, server: str, readers: int, **numbers: float) -> dict:
        return {"scenario": scenario, "server": server, "readers": readers,
                "latency_ms": {"p99": numbers.get("p99")}, **numbers}

    rows = [row("fan-out", "liveblog", 1000, p99=74.0), row("fan-out", "reference", 1000, p99=50.0),
            row("fan-out", "socketio", 1000, p99=80.0), row("fan-out", "liveblog", 2000, p99=9.0),
            row("idle", "liveblog", 1000, kb_per_connection=28.0),
            row("idle", "socketio", 1000, kb_per_connection=35.0),
            {"scenario": "burst", "server": "-", "readers": None, "failed": True}]
    assert comparisons(rows) == [
        {"scenario": "fan-out", "readers": 1000, "measure": "p99 ms", "liveblog": 74.0,
         "reference": 50.0, "socketio": 80.0, "reference_ratio": 1.48, "socketio_ratio": 0.93},
        {"scenario": "idle", "readers": 1000, "measure": "KB/conn", "liveblog": 28.0,
         "socketio": 35.0, "reference_ratio": None, "socketio_ratio": 0.8},
    ]
    assert format_comparisons(rows).splitlines() == [
        "  fan-out 1000, p99 ms: liveblog 74.0, reference 50.0 (1.48×), socketio 80.0 (0.93×)",
        "  idle 1000, KB/conn: liveblog 28.0, socketio 35.0 (0.80×)",
    ]


@pytest.mark.parametrize("message", ["42[\"event\",{\"seq\":", "9", "42"])
def test_stream_ends_on_a_malformed_packet_or_skips_an_empty_event(message: str) -> None:
    stream = SocketIOStream(FakeSocket([message]), SocketIOSession())
    with pytest.raises(StreamEnded, match="malformed" if message != "42" else "ConnectionClosed"):
        asyncio.run(stream.frame())
