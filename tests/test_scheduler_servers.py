"""Scheduled posts with real daphne processes (liveblog/scheduler.py): a server publishes a post
within about a second of its time with nobody connected; a post that fell due while no server
ran goes out as soon as one starts; two processes on one database (SQLite, PostgreSQL) publish
each post exactly once; LIVEBLOG_SCHEDULER=0 turns it off, and `manage.py liveblog_publish_due`
then does the job.

Posts are scheduled and the log is read straight from the site's database (a `manage.py
shell` in the site's environment, sqlite3/psycopg), so no reader or browser is connected.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import datetime
from urllib.parse import urlsplit

import psycopg
import pytest

from devstack.common import wait_until
from devstack.daphne import DaphneServer, Site, daphne_processes
from devstack.postgres import postgres_server

pytestmark = pytest.mark.server

# The scheduler looks every 0.5 s: a post is out within that plus one run of the service.
ON_TIME_SECONDS = 1.0

SCHEDULE = """
import time
import uuid
from datetime import UTC, datetime
from django.contrib.auth import get_user_model
from liveblog import selectors, services
author = get_user_model().objects.get_by_natural_key({username!r})
due = datetime.fromtimestamp(time.time() + {lead!r}, UTC)
for number in range({count!r}):
    written = services.post_create(
        actor=author, blog_id=selectors.blog_id({slug!r}), client_id=uuid.uuid4(),
        body=f"embargoed {{number}}", publish_at=due,
    )
    assert written.desk and written.data["state"] == "scheduled", written
print(f"due={{due.timestamp()!r}}")
"""


def schedule(site: Site, *, count: int, lead: float) -> float:
    """`count` posts scheduled by the site's author for `lead` seconds after the script has
    started (not after this call: on a loaded machine starting manage.py can take seconds);
    returns that moment as a Unix time."""
    output = site.manage("shell", "-c", SCHEDULE.format(
        username=site.username, lead=lead, count=count, slug=site.slug,
    ))
    return float(re.search(r"^due=(\S+)$", output, re.MULTILINE).group(1))


def published(site: Site) -> list[dict]:
    """The blog's post.created frames, read from its database."""
    query = ("SELECT e.frame FROM liveblog_event e JOIN liveblog_blog b ON b.id = e.blog_id"
             " WHERE b.slug = {p} AND e.kind = 'post.created' ORDER BY e.seq")
    url = site.env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(urlsplit(url).path, timeout=20) as db:
            rows = db.execute(query.format(p="?"), [site.slug]).fetchall()
    else:
        with psycopg.connect(url, connect_timeout=10) as db:
            rows = db.execute(query.format(p="%s"), [site.slug]).fetchall()
    return [json.loads(frame) for (frame,) in rows]


def published_counts(server: DaphneServer) -> list[int]:
    """What the server's scheduler said it published, run by run (its log lines)."""
    return [int(count) for count in re.findall(
        r"liveblog\.scheduler: published (\d+) scheduled", server.log_path.read_text()
    )]


def at(frame: dict) -> float:
    return datetime.fromisoformat(frame["at"].replace("Z", "+00:00")).timestamp()


def wait_for_posts(site: Site, count: int, timeout: float) -> list[dict]:
    wait_until(lambda: len(published(site)) >= count, timeout=timeout,
               message=f"{count} scheduled post(s) published")
    return published(site)


def assert_once_each(frames: list[dict], count: int) -> None:
    assert [frame["seq"] for frame in frames] == list(range(1, count + 1))
    assert sorted(frame["post"]["body"] for frame in frames) == sorted(
        f"embargoed {number}" for number in range(count))
    assert len({frame["post"]["id"] for frame in frames}) == count


def test_a_server_publishes_a_scheduled_post_on_time_with_nobody_connected(tmp_path):
    site = Site.create(tmp_path)
    server = DaphneServer(site).start()
    try:
        due = schedule(site, count=1, lead=3)
        assert published(site) == [], "published before its time"
        (frame,) = wait_for_posts(site, 1, timeout=10)
    finally:
        server.stop()
    assert due <= at(frame) <= due + ON_TIME_SECONDS, (at(frame) - due, server.log())
    assert frame["post"]["body"] == "embargoed 0"
    assert published_counts(server) == [1]


def test_a_post_that_fell_due_while_no_server_ran_goes_out_when_one_starts(tmp_path):
    site = Site.create(tmp_path)
    due = schedule(site, count=1, lead=2)
    wait_until(lambda: time.time() > due + 0.5, timeout=10, message="the post to fall due")
    assert published(site) == []
    server = DaphneServer(site)
    started = time.time()
    server.start()
    try:
        (frame,) = wait_for_posts(site, 1, timeout=10)
    finally:
        server.stop()
    # Its first run is at start, before the server even answers.
    assert at(frame) - started <= 5, (at(frame) - started, server.log())


def test_with_the_scheduler_off_only_the_command_publishes(tmp_path):
    site = Site.create(tmp_path)
    server = DaphneServer(site, LIVEBLOG_SCHEDULER="0").start()
    try:
        due = schedule(site, count=1, lead=2)
        wait_until(lambda: time.time() > due + 1.5, timeout=10, message="time to pass")
        assert published(site) == [], "published with LIVEBLOG_SCHEDULER=0"
        assert "published 1 scheduled post(s)" in site.manage("liveblog_publish_due")
        assert len(published(site)) == 1
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_site(request, tmp_path):
    if request.param == "sqlite":
        return Site.create(tmp_path)
    database = request.getfixturevalue("postgres").create_database("scheduler")
    return Site.create(tmp_path, DATABASE_URL=database)


def test_two_processes_on_one_database_publish_each_post_exactly_once(shared_site):
    """Both look every 50 ms, so both find the same posts due and race for them."""
    count = 20
    with daphne_processes(shared_site, LIVEBLOG_SCHEDULER_SECONDS="0.05") as servers:
        due = schedule(shared_site, count=count, lead=3)
        frames = wait_for_posts(shared_site, count, timeout=20)
        # Time for a duplicate to appear, if either process were to make one.
        wait_until(lambda: time.time() > due + 3, timeout=10, message="more runs")
        frames = published(shared_site)
        counts = [published_counts(server) for server in servers]
    assert_once_each(frames, count)
    assert all(due <= at(frame) <= due + 2 for frame in frames), [at(f) - due for f in frames]
    # What the processes say they published adds up to the posts: none published twice.
    assert sum(sum(mine) for mine in counts) == count, counts
