"""A hostile websocket client, for the tests and the benchmark's `abuse` scenario.

`NeverReads` opens a websocket with a tiny receive buffer and never reads what the server sends,
so the server's frames pile up on the server's side; it only writes. `flood` sends resyncs and
junk through such sockets as fast as the server takes them, opening a new one whenever the
server closes the last (as a script would), and says what happened.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import urlsplit

OP_TEXT, OP_BINARY, OP_CLOSE = 0x1, 0x2, 0x8
HANDSHAKE_TIMEOUT = 10.0


def frame_bytes(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked client frame (RFC 6455 §5.2)."""
    header = bytearray([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header.append(0x80 | length)
    elif length < 1 << 16:
        header.append(0x80 | 126)
        header += struct.pack("!H", length)
    else:
        header.append(0x80 | 127)
        header += struct.pack("!Q", length)
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload)) \
        if length < 4096 else _mask_large(payload, mask)
    return bytes(header) + mask + masked


def _mask_large(payload: bytes, mask: bytes) -> bytes:
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


class NeverReads:
    """A websocket client that writes and never reads (after the handshake)."""

    def __init__(self, url: str, *, origin: str, receive_buffer: int = 4096) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting, so the window the server sees stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(HANDSHAKE_TIMEOUT)
        self.sock.connect((parts.hostname, parts.port))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(1)  # byte by byte: nothing after the headers is read
            if not chunk:
                raise ConnectionError("closed during the handshake")
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(answer.split(b"\r\n", 1)[0].decode(errors="replace"))

    def send(self, payload: bytes, opcode: int = OP_TEXT) -> bool:
        """Write one frame; False once the server has dropped the connection."""
        try:
            self.sock.sendall(frame_bytes(payload, opcode))
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()

    def dropped(self, within: float) -> bool:
        return dropped(self.sock, within)

    def close_code(self, timeout: float = 30) -> int | None:
        """Read, at last, everything the server sent, up to its close frame: that frame's code
        (None if the connection ended without one)."""
        self.sock.settimeout(timeout)
        buffer = b""
        while True:
            code = _close_code_in(buffer)
            if code is not None:
                return code
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return None
            if not chunk:
                return _close_code_in(buffer)
            buffer += chunk


def dropped(sock: socket.socket, within: float) -> bool:
    """Wait up to `within` seconds for the server to drop the connection (a reset, or its end of
    the stream), reading nothing: what arrives meanwhile stays unread."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)  # POLLERR and POLLHUP are always reported
    return bool(poller.poll(within * 1000))


def _close_code_in(data: bytes) -> int | None:
    """The code of the first close frame in a run of (unmasked) server frames, if complete."""
    offset = 0
    while offset + 2 <= len(data):
        opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
        start = offset + 2
        if start + (2 if length == 126 else 8 if length == 127 else 0) > len(data):
            return None
        if length == 126:
            length, start = struct.unpack("!H", data[start:start + 2])[0], start + 2
        elif length == 127:
            length, start = struct.unpack("!Q", data[start:start + 8])[0], start + 8
        if start + length > len(data):
            return None
        if opcode == OP_CLOSE:
            return struct.unpack("!H", data[start:start + 2])[0] if length >= 2 else 1005
        offset = start + length
    return None


def junk_frames() -> list[tuple[bytes, int]]:
    """What a careless or hostile client sends: not JSON, not text, unknown, too deep, too big."""
    return [
        (b"{not json", OP_TEXT),
        (os.urandom(64), OP_BINARY),
        (json.dumps({"type": "nonsense", "x": 1}).encode(), OP_TEXT),
        (b"[" * 5000 + b"]" * 5000, OP_TEXT),
        (json.dumps({"type": "resync", "since": "soon"}).encode(), OP_TEXT),
        (b"x" * (80 * 1024), OP_TEXT),  # over the frame limit, under daphne's
    ]


@dataclass
class FloodReport:
    frames_written: int = 0
    connections: int = 0
    refused: list[str] = field(default_factory=list)


def flood(url: str, *, origin: str, resyncs: int, junk: int,
          max_connections: int = 1000) -> FloodReport:
    """Write `resyncs` resyncs (since=0: the most expensive answer) and `junk` junk frames,
    alternating, through never-reading sockets; a new one each time the server drops one."""
    resync = (json.dumps({"type": "resync", "since": 0}).encode(), OP_TEXT)
    kinds = junk_frames()
    plan = []
    for number in range(max(resyncs, junk)):
        plan += [resync] if number < resyncs else []
        plan += [kinds[number % len(kinds)]] if number < junk else []
    report = FloodReport()
    client: NeverReads | None = None
    index = 0
    while index < len(plan) and report.connections <= max_connections:
        if client is None:
            try:
                client = NeverReads(url, origin=origin)
            except OSError as error:
                report.refused.append(str(error))
                report.connections += 1
                continue
            report.connections += 1
        payload, opcode = plan[index]
        if client.send(payload, opcode):
            report.frames_written += 1
            index += 1
        else:
            client.close()
            client = None
    if client is not None:
        client.close()
    return report
