"""The benchmark's SSE reader (bench.streams): the event-stream parser and the chunked decoder,
fed in pieces of every size, as a socket may deliver them. Pure functions, no server."""

import pytest

from bench.streams import ChunkedDecoder, EventStreamParser, StreamEnded

STREAM = (
    "\ufeffretry: 3000\r\n"
    ": liveblog stream\r\n"
    "\n"
    'data: {"type":"hello"}\n'
    "\n"
    "id: e1:5\r"
    'data: {"type":"snapshot",\r'
    'data: "head":5}\r'
    "\r"
    ": keep-alive\n"
    "\n"
    "id: e1:6\n"
    "event: message\n"
    'data:{"type":"event","seq":6,"text":"Ölü ⚽"}\n'
    "unknown: field\n"
    "\n"
    "data: no blank line yet"
).encode()
MESSAGES = ['{"type":"hello"}', '{"type":"snapshot",\n"head":5}',
            '{"type":"event","seq":6,"text":"Ölü ⚽"}']


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_event_stream_parser_gives_each_message_once_whatever_the_pieces(size: int) -> None:
    parser = EventStreamParser()
    messages = [message for piece in pieces(STREAM, size) for message in parser.feed(piece)]
    assert messages == MESSAGES
    assert parser.last_event_id == "e1:6"
    assert parser.retry_ms == 3000
    assert parser.comments == 2


def chunked(body: bytes, size: int) -> bytes:
    return b"".join(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
                    for part in pieces(body, size)) + b"0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize(("chunk", "piece"), [(5, 1), (5, 3), (100, 7), (1000, 10_000)])
def test_chunked_decoder_gives_the_body_back(chunk: int, piece: int) -> None:
    decoder = ChunkedDecoder()
    body = b"".join(decoder.feed(part) for part in pieces(chunked(STREAM, chunk), piece))
    assert body == STREAM
    assert decoder.done


def test_chunked_decoder_refuses_a_malformed_size() -> None:
    with pytest.raises(StreamEnded, match="malformed chunk size"):
        ChunkedDecoder().feed(b"zz\r\nabc\r\n")
