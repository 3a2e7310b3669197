"""What one websocket client may cost, through the full ASGI stack: a budget of frames, one
catch-up at a time, a bounded hold of live events, and sockets per address. (The same against
a real daphne, with a client that never reads: tests/test_abuse.py.)"""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from liveblog import consumers
from liveblog.live.delivery import Delivery
from liveblog.live.limits import AddressSlots, FrameBudget
from tests.support.comms import ORIGIN, Reader

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def publish(make_post):
    return database_sync_to_async(make_post)


async def close_code(reader: Reader, timeout: float = 3) -> int:
    """Skip frames up to the close; its code."""
    while True:
        output = await reader.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output["code"]


async def open_from(slug: str, address: str) -> Reader:
    reader = Reader(f"/ws/liveblog/{slug}/", headers=[ORIGIN])
    reader.communicator.scope["client"] = (address, 40000)
    connected, _ = await reader.communicator.connect(timeout=5)
    assert connected
    return reader


# --- The frame budget -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_allows_a_burst_then_refills_at_its_rate():
    clock = Clock()
    budget = FrameBudget(rate=2, burst=3, clock=clock)
    assert [budget.take() for _ in range(3)] == [0, 0, 0]
    assert budget.take() == pytest.approx(0.5)  # one frame in debt: half a second at 2/s
    clock.now += 1.5  # three more tokens: the debt, and two frames
    assert [budget.take() for _ in range(2)] == [0, 0]
    assert budget.take() > 0 and not budget.exhausted


def test_a_budget_is_exhausted_by_a_client_that_keeps_going():
    budget = FrameBudget(rate=1, burst=2, clock=Clock())
    waits = [budget.take() for _ in range(4)]
    assert waits[:2] == [0, 0] and waits[2:] == [1, 2]  # retry_after grows with the debt
    assert budget.exhausted


async def test_frames_past_the_budget_get_rate_limited_then_a_close_with_1008(blog, settings):
    settings.LIVEBLOG_FRAME_BURST, settings.LIVEBLOG_FRAME_RATE = 3, 0.001
    reader = await Reader.open(blog.slug)
    await reader.until(lambda frame: frame["type"] == "live")
    for _ in range(3):
        await reader.send("{not json")
        assert (await reader.expect("error"))["code"] == "bad_json"
    for _ in range(2):
        await reader.send(json.dumps({"type": "resync", "since": 0}))
        error = await reader.expect("error")
        assert error["code"] == "rate_limited" and error["retry_after"] >= 1
        assert isinstance(error["retry_after"], int) and error["detail"]
    await reader.send("{not json")
    assert await close_code(reader) == consumers.CLOSE_ABUSIVE == 1008


async def test_a_client_that_waits_as_told_is_served_again(blog, settings):
    settings.LIVEBLOG_FRAME_BURST, settings.LIVEBLOG_FRAME_RATE = 2, 20
    reader = await Reader.open(blog.slug)
    await reader.until(lambda frame: frame["type"] == "live")
    for _ in range(2):
        await reader.send("{not json")
        assert (await reader.expect("error"))["code"] == "bad_json"
    await reader.send("{not json")
    error = await reader.expect("error")
    assert error["code"] == "rate_limited" and error["retry_after"] == 1
    await asyncio.sleep(error["retry_after"])  # the client does as it is told
    await reader.send(json.dumps({"type": "resync", "since": 0}))
    await reader.until(lambda frame: frame["type"] == "live")
    await reader.close()


# --- One catch-up at a time -------------------------------------------------------------------


@pytest.fixture
def gate(monkeypatch):
    """Holds every catch-up frame until opened: a catch-up stays under way meanwhile."""
    opened = asyncio.Event()
    real = Delivery._paced

    async def paced(delivery, frame):
        await opened.wait()
        return await real(delivery, frame)

    monkeypatch.setattr(Delivery, "_paced", paced)
    return opened


async def test_resyncs_during_a_catch_up_are_answered_by_it(blog, publish, gate):
    for number in range(3):
        await publish(f"update {number}")
    reader = await Reader.open(blog.slug, "?since=0")
    for _ in range(5):
        await reader.send(json.dumps({"type": "resync", "since": 0}))
    await reader.send("{not json")  # answered after the resyncs were read
    frames = await reader.until(lambda frame: frame["type"] == "error")
    assert [frame["type"] for frame in frames] == ["hello", "error"]  # no catch-up frame yet
    gate.set()
    frames = await reader.until(lambda frame: frame["type"] == "live")
    assert [frame["seq"] for frame in frames[:-1]] == [1, 2, 3]
    await reader.send("{not json")
    frames = await reader.until(lambda frame: frame["type"] == "error")
    assert [frame["type"] for frame in frames] == ["error"]  # and no second catch-up
    await reader.send(json.dumps({"type": "resync", "since": 2}))  # a resync after it: answered
    frames = await reader.until(lambda frame: frame["type"] == "live")
    assert [frame.get("seq") for frame in frames] == [3, None]
    await reader.close()


async def test_a_reader_whose_catch_up_is_stuck_holds_no_more_than_the_window(
    blog, publish, gate, settings
):
    settings.LIVEBLOG_REPLAY_WINDOW = 3
    reader = await Reader.open(blog.slug)
    await reader.expect("hello")
    for number in range(4):  # live events held while the catch-up waits for room
        await publish(f"update {number}")
    assert await close_code(reader) == consumers.CLOSE_TOO_SLOW


# --- Sockets per address ----------------------------------------------------------------------


def test_address_slots_count_per_address():
    slots = AddressSlots(2)
    assert slots.acquire("203.0.113.5") and slots.acquire("203.0.113.5")
    assert not slots.acquire("203.0.113.5")
    assert slots.acquire("198.51.100.7") and slots.acquire(None)  # others; unknown
    assert all(slots.acquire("127.0.0.1") and slots.acquire("::1") for _ in range(3))  # here
    slots.release("203.0.113.5")
    assert slots.count("203.0.113.5") == 1 and slots.acquire("203.0.113.5")


async def test_an_address_past_its_sockets_is_told_to_come_back_later(blog, settings):
    settings.LIVEBLOG_MAX_SOCKETS_PER_ADDRESS = 2
    first, second = [await open_from(blog.slug, "203.0.113.5") for _ in range(2)]
    for reader in (first, second):
        await reader.until(lambda frame: frame["type"] == "live")
    third = await open_from(blog.slug, "203.0.113.5")
    error = await third.expect("error")
    assert error["code"] == "rate_limited" and error["retry_after"] > 0
    assert await close_code(third) == consumers.CLOSE_TRY_LATER == 1013
    elsewhere = await open_from(blog.slug, "198.51.100.7")
    await elsewhere.until(lambda frame: frame["type"] == "live")
    await first.close()
    again = await open_from(blog.slug, "203.0.113.5")  # a slot was given back
    await again.until(lambda frame: frame["type"] == "live")
    for reader in (second, elsewhere, again):
        await reader.close()
