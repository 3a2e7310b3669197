"""Scale-out failures lose nothing: Redis down for 10 s while posts are made, a server process too
slow for the channel layer (stalled past its capacity), and a server process killed behind nginx
(the README's configuration, devstack/nginx.py). Real processes on loopback: PostgreSQL, Redis,
two daphne processes; readers are
tests.support.live_reader clients (the browser client's rules in Python).

Recovery times go to var/scale-out.json (quoted in the README and the closing note).
"""

import asyncio
import itertools
import re
import signal
import time

import pytest
import redis

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer, Site
from devstack.nginx import NginxServer, upstream_connections
from devstack.postgres import postgres_server
from devstack.redis import RedisServer
from tests.support.live_reader import LiveReader, all_reach
from tests.support.results import record as record_results

pytestmark = pytest.mark.server

HEARTBEAT = 2  # seconds; readers recover within a few of these
FILLED = re.compile(r"blog \d+: (\d+) event\(s\) from the log after seq (\d+)")


def record(name: str, seconds: float) -> None:
    record_results({name: round(seconds, 2)})


class Stack:
    def __init__(self, tmp_path, database_url: str, *, layer: str, **env: str) -> None:
        self.redis = RedisServer(tmp_path).start()
        self.layer = layer
        self.site = Site.create(
            tmp_path, DATABASE_URL=database_url, REDIS_URL=self.redis.url,
            LIVEBLOG_REDIS_LAYER=layer, LIVEBLOG_HEARTBEAT_SECONDS=str(HEARTBEAT), **env,
        )
        self.servers = [DaphneServer(self.site), DaphneServer(self.site)]
        for server in self.servers:
            server.start()
        self.apis = [ApiClient(server.url).login(self.site.username, self.site.password)
                     for server in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()

    async def post(self, number: int) -> dict:
        """Post through the servers in turn, from a thread (the readers' loop keeps going)."""
        api = self.apis[number % len(self.apis)]
        return await asyncio.to_thread(api.post, self.site.slug, f"update {number}")

    def members(self) -> int:
        """How many processes Redis delivers the blog's events to."""
        client = redis.Redis(port=self.redis.port, socket_timeout=2)
        try:
            if self.layer == "pubsub":
                return dict(client.pubsub_numsub("asgi__group__liveblog.1")).get(
                    b"asgi__group__liveblog.1", 0)
            return client.zcard("asgi:group:liveblog.1")
        except redis.ConnectionError:
            return 0
        finally:
            client.close()

    def filled_from_log(self, servers: list[DaphneServer] | None = None) -> set[int]:
        """Seqs the hubs (of `servers`, default all) took from the database rather than the
        channel layer."""
        seqs: set[int] = set()
        for server in servers or self.servers:
            for count, after in FILLED.findall(server.log_path.read_text(errors="replace")):
                seqs.update(range(int(after) + 1, int(after) + int(count) + 1))
        return seqs


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


DATABASES = itertools.count(1)


@pytest.fixture
def database_url(postgres):
    """A database of its own on the module's PostgreSQL cluster (the production setup)."""
    return postgres.create_database(f"failures_{next(DATABASES)}")


@pytest.fixture(params=["pubsub", "lists"])
def layer(request) -> str:
    return request.param


@pytest.fixture
def stack(request, tmp_path, database_url, layer):
    env = getattr(request, "param", {})
    stack = Stack(tmp_path, database_url, layer=layer, **env)
    try:
        yield stack
    finally:
        stack.stop()


async def open_readers(urls: list[tuple[str, str]], slug: str, count: int) -> list[LiveReader]:
    readers = [
        LiveReader(ws_url, slug, origin=origin, name=str(number)).start()
        for number, (ws_url, origin) in zip(range(count), urls * count, strict=False)
    ]
    await asyncio.gather(*[
        reader.wait_for(lambda r: r.live.is_set(), timeout=20, what="live") for reader in readers
    ])
    return readers


def assert_every_event_once(readers: list[LiveReader], head: int) -> None:
    for reader in readers:
        assert reader.applied == list(range(1, head + 1)), (reader.name, reader.applied)
        assert (reader.duplicates, reader.gaps) == (0, 0), reader.name


async def test_redis_down_for_10_s_loses_nothing_and_live_delivery_comes_back(stack):
    slug = stack.site.slug
    readers = await open_readers(
        [(server.ws_url, server.url) for server in stack.servers], slug, count=10
    )
    try:
        for number in (1, 2):
            await stack.post(number)
        await all_reach(readers, 2, timeout=10)
        assert stack.members() == 2

        # Redis goes away for 10 s while 20 posts are made.
        stack.redis.stop()
        down = time.monotonic()
        posted_at = {}
        for number in range(3, 23):
            posted_at[number] = time.monotonic()
            answer = await stack.post(number)  # accepted and stored regardless
            assert answer["seq"] == number
            await asyncio.sleep(0.5)  # the outage's pace is the thing under test
        await all_reach(readers, 22, timeout=6 * HEARTBEAT)
        # Each post reached every reader through the hubs' heartbeat, from the log.
        delays = sorted(max(reader.arrived[seq] for reader in readers) - posted_at[seq]
                        for seq in posted_at)
        record(f"{stack.layer}: Redis down, post to every reader, median (s)",
               delays[len(delays) // 2])
        record(f"{stack.layer}: Redis down, post to every reader, max (s)", delays[-1])
        assert delays[-1] < 3 * HEARTBEAT
        remaining = 10 - (time.monotonic() - down)
        if remaining > 0:
            await asyncio.sleep(remaining)  # Redis stays down for the full 10 s

        # Redis is back (empty: it forgot every group membership); the hubs re-join.
        stack.redis = RedisServer(stack.redis.directory, port=stack.redis.port).start()
        back = time.monotonic()
        await asyncio.to_thread(
            wait_until, lambda: stack.members() == 2, timeout=4 * HEARTBEAT,
            message="both processes back in the blog's group",
        )
        record(f"{stack.layer}: both processes receiving through Redis again, after Redis "
               "returned (s)", time.monotonic() - back)
        for number in range(23, 28):
            posted = time.monotonic()
            await stack.post(number)
            latency = await all_reach(readers, number, timeout=HEARTBEAT * 3)
            assert latency < HEARTBEAT, f"seq {number} took {latency:.2f}s: not live"
            del posted
        # Live, not healed: no hub took these from the log.
        assert not stack.filled_from_log() & set(range(23, 28))
        assert_every_event_once(readers, 27)
    finally:
        await asyncio.gather(*[reader.stop() for reader in readers])


# Behind nginx, as in production: the processes believe its X-Forwarded-For.
@pytest.mark.parametrize("stack", [{"LIVEBLOG_TRUSTED_PROXIES": "127.0.0.1"}], indirect=True)
async def test_readers_of_a_killed_process_reconnect_to_the_survivor_and_replay(stack):
    slug = stack.site.slug
    nginx = NginxServer([server.port for server in stack.servers],
                        port=stack.site.front_port).start()
    readers = []
    try:
        readers = await open_readers([(nginx.ws_url, nginx.url)], slug, count=50)
        # nginx's round robin: every reader's socket is one of nginx's to a process, 25 each.
        assert [upstream_connections(server.port) for server in stack.servers] == [25, 25]
        for number in range(1, 6):
            await stack.post(number)
        await all_reach(readers, 5, timeout=10)

        victim, survivor = stack.servers
        victim.kill()  # SIGKILL: its 25 readers lose their sockets at once
        killed = time.monotonic()
        stack.apis = [ApiClient(survivor.url).login(stack.site.username, stack.site.password)]
        for number in range(6, 16):
            await stack.post(number)
        await all_reach(readers, 15, timeout=30)
        record(f"{stack.layer}: all 50 readers had every post after a process was killed (s)",
               time.monotonic() - killed)
        reconnected = [reader for reader in readers if reader.connections > 1]
        assert len(reconnected) == 25  # exactly those of the killed process
        assert_every_event_once(readers, 15)
        assert upstream_connections(survivor.port) == 50  # all of them, through nginx
    finally:
        await asyncio.gather(*[reader.stop() for reader in readers])
        nginx.stop()


async def test_a_process_started_while_redis_is_down_serves_readers_and_goes_live_after(stack):
    """A deploy during a Redis outage: the restarted process serves its readers from the log,
    and attaches to Redis by itself when it returns."""
    slug = stack.site.slug
    restarted, other = stack.servers
    await stack.post(1)
    stack.redis.stop()
    restarted.stop()
    restarted.start()
    readers = await open_readers([(restarted.ws_url, restarted.url)], slug, count=5)
    try:
        await all_reach(readers, 1, timeout=10)
        stack.apis = [ApiClient(other.url).login(stack.site.username, stack.site.password)]
        posted = time.monotonic()
        await stack.post(2)
        await all_reach(readers, 2, timeout=3 * HEARTBEAT)
        record(f"{stack.layer}: Redis down, readers of a process started during the outage had "
               "a new post (s)", time.monotonic() - posted)

        stack.redis = RedisServer(stack.redis.directory, port=stack.redis.port).start()
        back = time.monotonic()
        await asyncio.to_thread(
            wait_until, lambda: stack.members() == 1, timeout=4 * HEARTBEAT,
            message="the restarted process (the only one with readers) in the blog's group",
        )
        record(f"{stack.layer}: a process started during the outage receiving through Redis, "
               "after Redis returned (s)", time.monotonic() - back)
        await stack.post(3)
        assert await all_reach(readers, 3, timeout=3 * HEARTBEAT) < HEARTBEAT
        assert 3 not in stack.filled_from_log([restarted])  # live, not healed
        for reader in readers:  # they joined with a snapshot at seq 1, then had every event
            assert reader.applied == [2, 3], (reader.name, reader.applied)
            assert (reader.duplicates, reader.gaps, reader.connections) == (0, 0, 1)
    finally:
        await asyncio.gather(*[reader.stop() for reader in readers])


# A channel-layer queue of 3 messages per process: a process that stops reading for a moment
# (here SIGSTOP; in life a long GC pause, a starved CPU, a slow event loop) overflows it at once.
@pytest.mark.parametrize("stack", [{"LIVEBLOG_LAYER_CAPACITY": "3"}], indirect=True)
async def test_a_process_too_slow_for_the_channel_layer_still_gives_readers_every_event(stack):
    slug = stack.site.slug
    stalled, running = stack.servers
    readers = await open_readers(
        [(server.ws_url, server.url) for server in stack.servers], slug, count=10
    )
    stalled_readers = [reader for reader in readers if reader.ws_base == stalled.ws_url]
    try:
        await stack.post(1)
        await all_reach(readers, 1, timeout=10)

        stalled.process.send_signal(signal.SIGSTOP)
        try:
            stack.apis = [ApiClient(running.url).login(stack.site.username, stack.site.password)]
            for number in range(2, 22):
                answer = await stack.post(number)
                assert answer["seq"] == number
            # The running process's readers have them live meanwhile.
            await all_reach([r for r in readers if r not in stalled_readers], 21, timeout=5)
        finally:
            stalled.process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        await all_reach(stalled_readers, 21, timeout=4 * HEARTBEAT)
        record(f"{stack.layer}: process stalled past the layer's capacity, its readers had "
               "every event after it resumed (s)", time.monotonic() - resumed)
        if stack.layer == "lists":
            # The layer dropped what did not fit in the queue (3) or the hub's pending BZPOPMIN
            # (1); the stalled hub took the rest from the log.
            assert len(stack.filled_from_log([stalled]) & set(range(2, 22))) >= 20 - 3 - 1
        assert_every_event_once(readers, 21)
        assert all(reader.connections == 1 for reader in readers)  # healed, not reconnected

        await stack.post(22)  # and live again everywhere
        assert await all_reach(readers, 22, timeout=3 * HEARTBEAT) < HEARTBEAT
        assert_every_event_once(readers, 22)
    finally:
        await asyncio.gather(*[reader.stop() for reader in readers])
