"""Properties of the websocket consumer over arbitrary client frames (DESIGN.md, invariant 4).

Whatever a client sends — any JSON, deep nesting, huge numbers, odd unicode, binary and
invalid UTF-8, near-valid `resync` and `post` frames, frames around the 64 KiB limit — it gets
either a documented `error` frame or the reply the protocol promises (a resync's snapshot or
replay, then `live`; an author's valid post, `ack`), the socket stays open, and nothing is
written unless an author sent a valid post (then exactly one post).

Each example opens its own connection through the full ASGI stack to a blog seeded once per
test, sends one frame, then a sentinel (an unknown type with a unique name, answered with an
error naming it): the frames before the sentinel's answer are the answer to the frame. The
frame-rate limit is set out of reach, so that these properties test parsing; one more property
floods a socket at the default limits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from liveblog.models import Blog, Post
from tests.support.comms import ORIGIN, Reader, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 64 * 1024  # settings.LIVEBLOG_MAX_FRAME_BYTES, as DESIGN.md states it
# The error codes a client frame may be answered with: protocol.parse_client_frame (bad_json,
# invalid, unknown_type), the consumer (too_large), the post services (not_authenticated,
# forbidden, too_long: liveblog/errors.py, services.validate_body) and DESIGN.md's limits
# contract (rate_limited).
FRAME_ERRORS = {
    "bad_json", "invalid", "unknown_type", "too_large", "too_long",
    "not_authenticated", "forbidden", "rate_limited",
}
# Function-scoped fixtures (the blog, its users) are set up once per test; each example opens
# its own connection and checks what it changed against the state it found.
FIXTURES_ONCE = settings(
    suppress_health_check=[*settings.default.suppress_health_check,
                           HealthCheck.function_scoped_fixture],
)


# --- Frames -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """What is sent, and whether it is a post the author's socket must accept."""

    text: str | None = None
    data: bytes | None = None
    valid_post: bool = False

    @property
    def size(self) -> int:
        return len(self.text.encode()) if self.text is not None else len(self.data)


ODD_TEXT = st.sampled_from([
    "", "\x00", "a\x00b", "\u200f\u202e\u2066RTL\u2069", "\U0001f3df\ufe0f\u200d", "\ufeff",
    "\\ud800", "\ud7ff", "\uffff", "\U0010ffff", "e\u0301", "<script>alert(1)</script>",
])
TEXT = st.one_of(st.text(max_size=30), ODD_TEXT)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Number literals that json.dumps never writes, and escapes it would not write either.
RAW_VALUES = st.sampled_from([
    "1e999", "-1e999", "-0", "-0.0", "NaN", "Infinity", "-Infinity", "10" + "0" * 400,
    "9" * 5000, "1.5", "0x10", "01", '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', "[]", "{}",
    "true", "null", '"3"',
])


def json_text(value: Any) -> st.SearchStrategy[str]:
    return st.just(json.dumps(value))


def near_valid_resync() -> st.SearchStrategy[str]:
    since = st.one_of(RAW_VALUES, st.integers(-5, 50).map(str), JSON.map(json.dumps))
    epoch = st.one_of(RAW_VALUES, JSON.map(json.dumps), st.just('"stale-epoch"'))
    return st.builds(
        lambda since, epoch, with_epoch: (
            '{"type":"resync","since":' + since
            + (',"epoch":' + epoch if with_epoch else "") + "}"
        ),
        since, epoch, st.booleans(),
    )


def near_valid_post() -> st.SearchStrategy[str]:
    fields = st.fixed_dictionaries({}, optional={
        "client_id": st.one_of(st.uuids().map(str), TEXT, JSON),
        "body": st.one_of(TEXT, JSON, st.just("x" * 20_001)),
        "key_event": st.one_of(st.booleans(), JSON),
        "pinned": st.one_of(st.booleans(), JSON),
        "photo_alt": JSON,
    })
    return fields.map(lambda data: json.dumps({"type": "post", **data}))


def valid_post() -> st.SearchStrategy[Frame]:
    body = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=200).filter(
        str.strip
    )
    return st.builds(
        lambda client_id, body, flags: Frame(text=json.dumps({
            "type": "post", "client_id": str(client_id), "body": body, **flags
        }), valid_post=True),
        st.uuids(), body,
        st.fixed_dictionaries({}, optional={"key_event": st.booleans(), "pinned": st.booleans()}),
    )


def around_the_limit() -> st.SearchStrategy[Frame]:
    """A resync padded to within a few bytes of 64 KiB, in one- or multi-byte characters."""
    def padded(delta: int, char: str, binary: bool) -> Frame:
        head = '{"type":"resync","since":0,"pad":"'
        room = LIMIT + delta - len(head.encode()) - 2
        pad = char * (room // len(char.encode())) + "x" * (room % len(char.encode()))
        text = head + pad + '"}'
        return Frame(data=text.encode()) if binary else Frame(text=text)

    return st.builds(padded, st.integers(-4, 4), st.sampled_from(["x", "é", "€", "\U0001f3df"]),
                     st.booleans())


FRAMES = st.one_of(
    JSON.map(lambda value: Frame(text=json.dumps(value))),
    st.dictionaries(TEXT, JSON, max_size=3).flatmap(
        lambda extra: st.sampled_from(["resync", "post", "ping", "hello", "RESYNC", "", "x" * 100])
        .map(lambda kind: Frame(text=json.dumps({**extra, "type": kind})))
    ),
    near_valid_resync().map(lambda text: Frame(text=text)),
    near_valid_post().map(lambda text: Frame(text=text)),
    valid_post(),
    RAW_VALUES.map(lambda text: Frame(text=text)),
    st.text(max_size=50).map(lambda text: Frame(text=text)),
    st.sampled_from(["[", "{", '{"a":']).flatmap(
        lambda opener: st.sampled_from([10, 1000, 10_000]).map(lambda n: Frame(text=opener * n))
    ),
    st.sampled_from([b"", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b'{"type":"resync","since":0}',
                     b"\x00" * 10]).map(lambda data: Frame(data=data)),
    st.binary(max_size=100).map(lambda data: Frame(data=data)),
    around_the_limit(),
)


# --- One exchange -----------------------------------------------------------------------------


@database_sync_to_async
def written(blog: Blog) -> tuple[int, int]:
    """The blog's head and how many posts it has (tombstones too)."""
    return Blog.objects.get(pk=blog.pk).head, Post.objects.filter(blog=blog).count()


async def send_frame(reader: Reader, frame: Frame) -> None:
    # Not send_to(), which refuses empty frames.
    key, value = ("text", frame.text) if frame.text is not None else ("bytes", frame.data)
    await reader.communicator.send_input({"type": "websocket.receive", key: value})


async def answer_to(reader: Reader, frame: Frame) -> list[dict]:
    """Send the frame, then a sentinel; the frames that came before the sentinel's error."""
    sentinel = f"sentinel-{uuid.uuid4().hex[:16]}"  # error details quote 40 chars
    await send_frame(reader, frame)
    await reader.send({"type": sentinel})
    frames = await reader.until(
        lambda got: got["type"] == "error" and sentinel in got.get("detail", ""), timeout=10
    )
    assert frames[-1]["code"] == "unknown_type", frames[-1]
    return frames[:-1]


def assert_resync_reply(frames: list[dict], head: int) -> None:
    """A snapshot or a replay (gapless, up to the head), then `live` at the head."""
    kinds = [frame["type"] for frame in frames]
    assert kinds[-1] == "live" and frames[-1]["head"] == head, frames
    if kinds[0] == "snapshot":
        assert kinds == ["snapshot", "live"] and frames[0]["head"] == head, kinds
    else:
        seqs = [frame["seq"] for frame in frames[:-1]]
        assert set(kinds[:-1]) <= {"event"}, kinds
        assert seqs == list(range(head - len(seqs) + 1, head + 1)), seqs


@pytest.fixture
async def cookies(author: Any, stranger: Any) -> dict[str, list[tuple[bytes, bytes]]]:
    return {
        "anonymous": [ORIGIN],
        "stranger": [ORIGIN, await session_cookie(stranger)],
        "author": [ORIGIN, await session_cookie(author)],
    }


@pytest.fixture
def out_of_reach(settings: Any) -> None:
    """The frame-rate limit out of reach, and no heartbeat within a test."""
    settings.LIVEBLOG_FRAME_RATE = 10_000
    settings.LIVEBLOG_FRAME_BURST = 10_000
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 3600


@FIXTURES_ONCE
@given(frame=FRAMES, who=st.sampled_from(["anonymous", "stranger", "author"]))
@example(frame=Frame(text="[" * 10_000), who="anonymous")
@example(frame=Frame(text='{"type":"resync","since":' + "[" * 10_000), who="anonymous")
@example(frame=Frame(text=json.dumps({"type": "post", "client_id": str(uuid.UUID(int=1)),
                                      "body": "\ud800"})), who="author")
@example(frame=Frame(text=json.dumps({"type": "post", "client_id": "\ud800",
                                      "body": "x"})), who="author")
@example(frame=Frame(text='{"type":"resync","since":0,"epoch":"\\udfff"}'), who="stranger")
@example(frame=Frame(text='{"type":"resync","since":1e999}'), who="anonymous")
@example(frame=Frame(text='{"type":"resync","since":-0}'), who="anonymous")
@example(frame=Frame(data=b"\xed\xa0\x80"), who="author")
@example(frame=Frame(text=""), who="anonymous")
@example(frame=Frame(data=b""), who="stranger")
async def test_every_frame_gets_a_documented_answer_and_only_an_author_post_writes(
    blog: Blog, cookies: dict, out_of_reach: None, frame: Frame, who: str
) -> None:
    head, posts = await written(blog)
    reader = Reader(f"/ws/liveblog/{blog.slug}/", headers=cookies[who])
    connected, _ = await reader.communicator.connect(timeout=5)
    assert connected
    try:
        await reader.expect("hello")
        await reader.until(lambda got: got["type"] == "live")
        answer = await answer_to(reader, frame)
        kinds = [got["type"] for got in answer]
        if frame.size > LIMIT:
            assert answer == [{"type": "error", "code": "too_large", "detail": answer[0]["detail"]}]
        elif kinds and kinds[0] == "error":
            assert len(answer) == 1, answer
            assert answer[0]["code"] in FRAME_ERRORS, answer
            assert isinstance(answer[0]["detail"], str) and answer[0]["detail"]
            assert not frame.valid_post or who != "author", answer
            if who != "author" and frame.valid_post:
                assert answer[0]["code"] == {"anonymous": "not_authenticated",
                                             "stranger": "forbidden"}[who]
        elif "ack" in kinds:
            assert who == "author" and frame.valid_post, answer
            ack = answer[kinds.index("ack")]
            wrote = ack["seq"] > head  # else a retry of an earlier example's client_id
            if wrote:
                assert ack["seq"] == head + 1
                assert ack["post"]["body"] == json.loads(frame.text)["body"]
                # Its own event, live: before the sentinel's answer or right after it.
                event = answer[1 - kinds.index("ack")] if len(answer) == 2 else await reader.next()
                assert (event["type"], event["seq"], event["post"]) == (
                    "event", head + 1, ack["post"]
                )
            else:
                assert answer == [ack], answer
        else:
            assert_resync_reply(answer, head)
        after = await written(blog)
        assert after == ((head + 1, posts + 1) if "ack" in kinds and wrote else (head, posts))
        assert await reader.communicator.receive_nothing(timeout=0.05)  # and no close
    finally:
        await reader.close()


@settings(FIXTURES_ONCE, max_examples=3, phases=[Phase.explicit, Phase.generate])
@given(frames=st.lists(st.one_of(
    JSON.map(lambda value: Frame(text=json.dumps(value))),
    RAW_VALUES.map(lambda text: Frame(text=text)),
    st.binary(max_size=100).map(lambda data: Frame(data=data)),
), min_size=1, max_size=5))
async def test_a_flood_is_rate_limited_then_closed_with_1008(
    blog: Blog, cookies: dict, frames: list[Frame]
) -> None:
    """At the default limits, a client that keeps sending bad frames is answered
    `rate_limited` (with `retry_after`), and then closed with 1008. (No shrinking: each try is
    a flood.)"""
    head, posts = await written(blog)
    reader = Reader(f"/ws/liveblog/{blog.slug}/", headers=cookies["stranger"])
    connected, _ = await reader.communicator.connect(timeout=5)
    assert connected
    await reader.expect("hello")
    await reader.until(lambda got: got["type"] == "live")
    for number in range(2000):
        await send_frame(reader, frames[number % len(frames)])
    sentinel = f"sentinel-{uuid.uuid4().hex[:16]}"  # error details quote 40 chars
    await reader.send({"type": sentinel})  # answered only if the socket is still open
    limited, closed = 0, None
    while closed is None:
        message = await reader.communicator.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            closed = message.get("code")
            break
        got = json.loads(message["text"])
        if got["type"] == "error" and got["code"] == "rate_limited":
            limited += 1
            assert got["retry_after"] > 0 and got["detail"]
        elif sentinel in got.get("detail", ""):
            break
    assert limited and closed == 1008, (limited, closed)
    assert await written(blog) == (head, posts)
