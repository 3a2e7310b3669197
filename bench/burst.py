"""burst: `burst_posts` posts within `burst_seconds` to `burst_readers` readers of one blog.

Each post's create call starts on its own schedule (post k at k × seconds/posts), in a thread of
its own, whether or not the calls before it have answered: a busy server cannot slow the author
down to its own pace, as a sequential poster would let it. Latency per frame runs from just
before the post's create call to the frame's arrival at each reader, as in fan-out; the row also
says when the last reader had the last post (the highest seq), counted from the first call.
The references (bare and Socket.IO) broadcast as many frames of the same size on the same
schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as sync_connect

from devstack.daphne import Site, feed_url

from . import seed
from .processes import liveblog_server, reference_server, socketio_server
from .reference import event_frame
from .scenarios import Config, Sent, fanout_row, fresh_dir, liveblog_author, paced, run_readers

LEAD_SECONDS = 0.05  # lets every poster thread start before the first one is due


def concurrent_paced(count: int, seconds: float, publish: Callable[[int], int]) -> list[Sent]:
    """`count` calls of `publish(k)` spread evenly over `seconds`, each in its own thread at its
    own time; the posts in seq order."""
    interval = seconds / count
    start = time.monotonic() + LEAD_SECONDS

    def one(number: int) -> Sent:
        time.sleep(max(0.0, start + number * interval - time.monotonic()))
        started = time.monotonic()
        seq = publish(number + 1)
        return Sent(seq, started, (time.monotonic() - started) * 1000)

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="poster") as pool:
        return sorted(pool.map(one, range(count)), key=lambda post: post.seq)


def burst_row(server: str, sent: list[Sent], result: dict[str, Any], config: Config,
              log: Path, queries: dict[str, Any] | None = None,
              transport: str = "ws") -> dict[str, Any]:
    """fan-out's row, plus the time from the first create call to the last reader's receipt of
    the last post, and how long the calls took to go out."""
    row = fanout_row(server, config.burst_readers, sent, result, config, log,
                     scenario="burst", queries=queries, transport=transport)
    first = min(post.started for post in sent)
    last_post = max(sent, key=lambda post: post.seq)
    arrivals = result["arrivals"].get(str(last_post.seq), [])
    complete = len(arrivals) == result["live"]
    row.update({
        "interval_s": config.burst_seconds / config.burst_posts,
        "calls_spread_s": round(max(post.started for post in sent) - first, 3),
        "last_post_seq": last_post.seq,
        "all_have_last_s": round(max(arrivals) - first, 3) if complete and arrivals else None,
        "last_post_readers": len(arrivals),
    })
    return row


def burst_liveblog(site: Site, config: Config) -> dict[str, Any]:
    with liveblog_server(site) as server:
        api = liveblog_author(server, site)

        def publish(number: int) -> int:
            return api.post(site.slug, seed.body(number))["seq"]

        url = feed_url(server.ws_url, site.slug)
        sent, result, queries = run_readers(
            url, server.url, config.burst_readers, config, "burst-liveblog",
            lambda: concurrent_paced(config.burst_posts, config.burst_seconds, publish),
            server.queries,
        )
    return burst_row("liveblog", sent, result, config, server.log_path, queries)


def burst_reference(frame_bytes: int, config: Config, server_name: str = "reference",
                    ) -> dict[str, Any]:
    """The bare reference's burst, or (server_name "socketio") Socket.IO's: frames on the control
    socket, on the burst's schedule."""
    log = config.work / f"{server_name}-burst.log"
    socketio = server_name == "socketio"
    with ((socketio_server if socketio else reference_server)(log) as server,
          sync_connect(f"{server.ws_url}/control") as control):

        def publish(number: int) -> int:
            control.send(event_frame(number, frame_bytes))  # returns at once: no need of threads
            return number

        interval = config.burst_seconds / config.burst_posts
        sent, result, _ = run_readers(
            server.readers_url if socketio else f"{server.ws_url}/", None, config.burst_readers,
            config, f"burst-{server_name}", lambda: paced(config.burst_posts, interval, publish),
            transport="socketio" if socketio else "ws",
        )
    return burst_row(server_name, sent, result, config, server.log_path,
                     transport="socketio" if socketio else "ws")


def burst(config: Config, progress: Callable[[str], None],
          frame_bytes: int | None = None) -> list[dict[str, Any]]:
    """Liveblog first (its frame size is the references' payload size)."""
    rows = []
    frame_bytes = frame_bytes or config.frame_bytes
    label = (f"{config.burst_readers} readers, {config.burst_posts} posts in "
             f"{config.burst_seconds} s")
    if "liveblog" in config.servers:
        progress(f"burst: liveblog, {label}")
        rows.append(burst_liveblog(Site.create(fresh_dir(config.work / "burst")), config))
        frame_bytes = rows[-1]["frame_bytes"] or frame_bytes
    if "reference" in config.servers:
        progress(f"burst: reference, {label}, {frame_bytes}-byte frames")
        rows.append(burst_reference(frame_bytes, config))
    if "socketio" in config.servers:
        progress(f"burst: socketio, {label}, {frame_bytes}-byte frames")
        rows.append(burst_reference(frame_bytes, config, "socketio"))
    return rows
