"""Scale-out on PostgreSQL + Redis, proven with real processes (DESIGN.md, "Running").

1. Two daphne processes share one PostgreSQL database and one Redis behind nginx (the README's
   configuration, devstack/nginx.py): 50 websocket readers connect through nginx, which puts half
   on each, and 100 posts are made alternately through each process; every reader applies seqs
   1…100 exactly once, in order, delivered live through Redis (the heartbeat is far longer than
   the test, so nothing is healed from the log).
2. Four writer processes post 50 times each to one blog at the same moment: the blog's seqs are
   exactly 1…200, each writer's posts in its own order (the row lock on the blog, not luck).

The servers are started here on loopback and stopped afterwards; a missing PostgreSQL, Redis or
nginx is a failure (`make test` installs them), never a skip. The timings are printed and
merged into var/scale-out.json.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time

import psycopg
import pytest

from devstack.common import REPO
from devstack.daphne import ApiClient, Site, daphne_processes
from devstack.nginx import nginx_server, upstream_connections
from devstack.postgres import postgres_server
from devstack.redis import redis_server
from tests.support.live_reader import LiveReader, all_reach
from tests.support.results import record

pytestmark = pytest.mark.server

READERS = 50
POSTS = 100
WRITERS = 4
POSTS_PER_WRITER = 50


# --- Servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


# --- Proof 2: concurrent writer processes -------------------------------------------------------


def blog_log(database_url: str, slug: str) -> tuple[int, list[tuple[int, str, str]]]:
    """The blog's head and its events (seq, kind, frame), read straight from PostgreSQL."""
    with psycopg.connect(database_url, connect_timeout=10) as db:
        (head,) = db.execute("SELECT head FROM liveblog_blog WHERE slug = %s", [slug]).fetchone()
        events = db.execute(
            "SELECT e.seq, e.kind, e.frame FROM liveblog_event e"
            " JOIN liveblog_blog b ON b.id = e.blog_id WHERE b.slug = %s ORDER BY e.seq",
            [slug],
        ).fetchall()
    return head, events


def test_four_writer_processes_take_gapless_unique_seqs(postgres, tmp_path):
    site = Site.create(tmp_path, DATABASE_URL=postgres.create_database("writers"))
    with socket.create_server(("127.0.0.1", 0)) as barrier:
        barrier.settimeout(60)  # every wait below has a deadline
        port = barrier.getsockname()[1]
        writers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.seq_writer", "--barrier", str(port),
                 "--slug", site.slug, "--username", site.username, "--writer", str(writer),
                 "--count", str(POSTS_PER_WRITER)],
                cwd=REPO, env=site.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )
            for writer in range(WRITERS)
        ]
        gates: list[socket.socket] = []
        try:
            for _ in writers:  # all of them set up and waiting…
                gate, _address = barrier.accept()
                gate.settimeout(60)
                assert gate.recv(16).startswith(b"ready")
                gates.append(gate)
            started = time.monotonic()
            for gate in gates:  # …then all of them at once
                gate.sendall(b"go\n")
            outputs = [writer.communicate(timeout=120) for writer in writers]
            elapsed = time.monotonic() - started
        finally:
            for gate in gates:
                gate.close()
            for writer in writers:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait(timeout=10)

    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, f"writer exited {writer.returncode}:\n{err}"
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert {report["vendor"] for report in reports} == {"postgresql"}

    total = WRITERS * POSTS_PER_WRITER
    head, events = blog_log(site.env["DATABASE_URL"], site.slug)
    assert [seq for seq, _, _ in events] == list(range(1, total + 1))
    assert head == total
    assert {kind for _, kind, _ in events} == {"post.created"}
    # Each writer was answered with the seqs that numbered its own posts, in increasing order.
    bodies = [json.loads(frame)["post"]["body"] for _, _, frame in events]
    for report in reports:
        writer = report["writer"]
        mine = [body for body in bodies if body.startswith(f"{writer}-")]
        assert mine == [f"{writer}-{number}" for number in range(POSTS_PER_WRITER)]
        assert report["seqs"] == [
            seq for seq, body in enumerate(bodies, start=1) if body.startswith(f"{writer}-")
        ]
    # The writers really ran at the same time: their posts interleave in the log.
    owners = [body.split("-")[0] for body in bodies]
    switches = sum(
        1 for before, after in zip(owners[:-1], owners[1:], strict=True) if before != after
    )
    assert switches > 0, "the writers ran one after another: the proof proved nothing"

    label = f"postgresql: {WRITERS} writer processes x {POSTS_PER_WRITER} posts"
    record({
        f"{label}, seqs 1..{total} gapless and unique, all written (s)": round(elapsed, 3),
        f"{label}, posts per second": round(total / elapsed, 1),
        f"{label}, times consecutive seqs went to different writers": switches,
    })
    print(f"\n{WRITERS} writer processes x {POSTS_PER_WRITER} posts on PostgreSQL: seqs 1..{total}"
          f" in {elapsed:.2f}s ({total / elapsed:.0f} posts/s), {switches} interleavings")


# --- Proof 1: two daphne processes, shared PostgreSQL + Redis -----------------------------------


class TimedReader(LiveReader):
    """A LiveReader that also notes when it applied each seq (time.monotonic(), the clock the
    posting thread uses too)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.applied_at: dict[int, float] = {}

    async def _apply(self, socket, frame: dict) -> None:
        before = len(self.applied)
        await super()._apply(socket, frame)
        if len(self.applied) > before:
            self.applied_at[self.applied[-1]] = time.monotonic()


@pytest.fixture
def two_daphnes(postgres, redis, tmp_path):
    site = Site.create(
        tmp_path, DATABASE_URL=postgres.create_database("two_daphnes"), REDIS_URL=redis.url,
        # Far longer than the test: every event must arrive live through Redis, none healed
        # from the log by a heartbeat.
        LIVEBLOG_HEARTBEAT_SECONDS="600",
        # Behind nginx, as in production: the processes believe its X-Forwarded-For.
        LIVEBLOG_TRUSTED_PROXIES="127.0.0.1",
    )
    with daphne_processes(site) as servers, nginx_server(
            [server.port for server in servers], port=site.front_port) as nginx:
        yield servers, nginx


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def test_two_daphne_processes_deliver_every_post_to_every_reader_once_in_order(two_daphnes):
    two_daphnes, nginx = two_daphnes
    slug = two_daphnes[0].site.slug
    site = two_daphnes[0].site
    readers = [TimedReader(nginx.ws_url, slug, origin=nginx.url, name=str(number))
               for number in range(READERS)]
    try:
        for reader in readers:
            reader.start()
        await asyncio.gather(*[
            reader.wait_for(lambda r: r.live.is_set(), timeout=30, what="live")
            for reader in readers
        ])
        # nginx's round robin put half of them on each process (each reader's socket is one of
        # nginx's to a process).
        assert [upstream_connections(server.port) for server in two_daphnes] == [
            READERS // 2, READERS // 2]

        clients = [ApiClient(server.url).login(site.username, site.password)
                   for server in two_daphnes]
        sent: dict[int, float] = {}
        answered: dict[int, float] = {}

        def post_all() -> None:
            for number in range(1, POSTS + 1):
                started = time.monotonic()
                answer = clients[number % 2].post(slug, f"update {number}")
                sent[answer["seq"]], answered[answer["seq"]] = started, time.monotonic()

        first_post = time.monotonic()
        await asyncio.to_thread(post_all)
        posting = time.monotonic() - first_post
        tail = await all_reach(readers, POSTS, timeout=30)
        everyone = time.monotonic() - first_post
    finally:
        await asyncio.gather(*[reader.stop() for reader in readers])

    assert sorted(sent) == list(range(1, POSTS + 1)), "each post was answered with its own seq"
    for reader in readers:
        assert reader.applied == list(range(1, POSTS + 1)), reader.name
        assert (reader.duplicates, reader.gaps) == (0, 0), reader.name
        # Nobody dropped off and came back: this is live delivery, not recovery.
        assert reader.connections == 1, reader.name

    # Post to screen: from the moment a post was sent to each reader applying it.
    latencies = [reader.applied_at[seq] - sent[seq] for reader in readers for seq in sent]
    label = f"pubsub: two processes behind nginx, {READERS} readers, {POSTS} posts alternately"
    numbers = {
        f"{label}, posting took (s)": round(posting, 3),
        f"{label}, post answered, median (s)": round(
            statistics.median(answered[seq] - sent[seq] for seq in sent), 4
        ),
        f"{label}, post to reader, median (s)": round(statistics.median(latencies), 4),
        f"{label}, post to reader, p99 (s)": round(percentile(latencies, 0.99), 4),
        f"{label}, post to reader, max (s)": round(max(latencies), 4),
        f"{label}, every reader had seq {POSTS} after the last answer (s)": round(tail, 4),
        f"{label}, first post to every reader done (s)": round(everyone, 3),
    }
    record(numbers)
    print(f"\n2 daphne processes, {READERS} readers, {POSTS} posts: posted in {posting:.2f}s; "
          f"all readers had seq {POSTS} {tail * 1000:.0f} ms after the last answer; post to "
          f"reader median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")


def test_results_file_is_merged_not_replaced(tmp_path):
    """record() keeps the sections other tests wrote (the file is shared)."""
    results = tmp_path / "scale-out.json"
    results.write_text(json.dumps({"redis_restart": {"healed_seconds": 1.5}}))
    record({"mine (s)": 1.0}, results=results)
    assert json.loads(results.read_text()) == {
        "redis_restart": {"healed_seconds": 1.5}, "mine (s)": 1.0,
    }
