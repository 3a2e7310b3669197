"""The desk websocket (/ws/desk/<slug>/) through the full ASGI stack: who may open it, which log
each role follows, replay by seq, the replay/live seam, role changes, bad frames; and that desk
traffic never reaches the public socket or the public groups."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.utils import timezone

from liveblog import selectors, services
from liveblog.live import broadcast
from liveblog.models import DeskStream, Membership
from tests.support.comms import ORIGIN, Reader, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


# --- Helpers ----------------------------------------------------------------------------------


async def open_desk(slug: str, query: str = "", *, user=None, headers=None) -> Reader:
    if headers is None:
        headers = [ORIGIN] + ([await session_cookie(user)] if user is not None else [])
    desk = Reader(f"/ws/desk/{slug}/{query}", headers=headers)
    connected, _ = await desk.communicator.connect(timeout=5)
    assert connected, "the websocket handshake was refused"
    return desk


async def open_live(slug: str, query: str = "", *, user) -> tuple[Reader, dict, list[dict]]:
    """A desk socket past its catch-up: (socket, hello, frames up to and including live)."""
    desk = await open_desk(slug, query, user=user)
    hello = await desk.expect("hello")
    frames = await desk.until(lambda frame: frame["type"] == "live")
    return desk, hello, frames


async def closed_with(desk: Reader, code: int) -> None:
    message = await desk.communicator.receive_output(timeout=3)
    assert message == {"type": "websocket.close", "code": code}, message


def seqs(frames: list[dict]) -> list[int]:
    return [frame["seq"] for frame in frames if frame["type"] == "event"]


@pytest.fixture
def contributor(blog, owner, django_user_model):
    user = django_user_model.objects.create_user("carl", password="carl-password")
    services.member_set(actor=owner, blog_id=blog.pk, user=user, role="contributor")
    return user


@pytest.fixture
def other_contributor(blog, owner, django_user_model):
    user = django_user_model.objects.create_user("cora", password="cora-password")
    services.member_set(actor=owner, blog_id=blog.pk, user=user, role="contributor")
    return user


@pytest.fixture
def submit(blog):
    """Submit to the desk from the database thread, as a view or another process would."""

    @database_sync_to_async
    def submit(user, body: str = "From the touchline"):
        return services.post_create(actor=user, blog_id=blog.pk, client_id=uuid.uuid4(),
                                    body=body)

    return submit


@database_sync_to_async
def stream_of(blog, audience: str) -> DeskStream:
    return selectors.desk_stream(blog.pk, audience)


# --- Opening: who may, and what they get ------------------------------------------------------


async def test_an_editor_gets_hello_snapshot_live_then_live_events(
    blog, author, contributor, submit
):
    for number in range(2):
        await submit(contributor, f"waiting {number}")
    desk = await open_desk(blog.slug, user=author)
    hello = await desk.expect("hello")
    editors = await stream_of(blog, "editors")
    assert hello == {"type": "hello", "blog": "final", "epoch": editors.epoch, "head": 2,
                     "heartbeat": 15, "role": "editor"}
    snapshot = await desk.expect("snapshot")
    assert set(snapshot) == {"type", "epoch", "head", "submissions"}
    assert (snapshot["epoch"], snapshot["head"]) == (editors.epoch, 2)
    assert [item["body"] for item in snapshot["submissions"]] == ["waiting 0", "waiting 1"]
    assert {item["state"] for item in snapshot["submissions"]} == {"submitted"}
    assert await desk.expect("live") == {"type": "live", "head": 2}
    written = await submit(contributor, "live one")
    event = await desk.expect("event")
    assert (event["seq"], event["kind"]) == (3, "submission.created")
    assert event["submission"] == written.data
    assert await desk.silent()
    await desk.close()


async def test_the_owner_follows_the_editors_log_and_says_so(blog, owner, contributor, submit):
    await submit(contributor)
    desk, hello, frames = await open_live(blog.slug, user=owner)
    assert hello["role"] == "owner" and hello["head"] == 1
    assert len(frames[0]["submissions"]) == 1
    await desk.close()


async def test_a_contributor_follows_their_own_log(
    blog, contributor, other_contributor, submit
):
    await submit(contributor, "mine")
    await submit(other_contributor, "not mine")
    desk, hello, frames = await open_live(blog.slug, user=contributor)
    own = await stream_of(blog, f"user:{contributor.pk}")
    assert (hello["role"], hello["epoch"], hello["head"]) == ("contributor", own.epoch, 1)
    assert [item["body"] for item in frames[0]["submissions"]] == ["mine"]
    await desk.close()


@pytest.mark.parametrize("who, code, close", [
    ("anonymous", "not_authenticated", 4403),
    ("stranger", "forbidden", 4403),
])
async def test_anonymous_and_non_members_are_refused_with_4403(blog, stranger, who, code, close):
    desk = await open_desk(blog.slug, user=stranger if who == "stranger" else None)
    error = await desk.expect("error")
    assert error["code"] == code and error["detail"]
    await closed_with(desk, close)


async def test_an_unknown_blog_gets_not_found_then_4404(author):
    desk = await open_desk("no-such-blog", user=author)
    assert (await desk.expect("error"))["code"] == "not_found"
    await closed_with(desk, 4404)


async def test_a_foreign_origin_or_none_is_refused_at_the_handshake(blog, author):
    cookie = await session_cookie(author)
    for headers in ([(b"origin", b"https://evil.example"), cookie], [cookie]):
        desk = Reader(f"/ws/desk/{blog.slug}/", headers=headers)
        connected, _ = await desk.communicator.connect(timeout=3)
        assert not connected


# --- Replay and snapshots ---------------------------------------------------------------------


async def test_replay_since_n_gives_exactly_n_plus_1_to_head(blog, author, contributor, submit):
    for number in range(5):
        await submit(contributor, f"update {number}")
    editors = await stream_of(blog, "editors")
    desk, hello, frames = await open_live(blog.slug, f"?since=2&epoch={editors.epoch}",
                                          user=author)
    assert hello["head"] == 5
    assert seqs(frames) == [3, 4, 5]
    assert [frame["submission"]["body"] for frame in frames[:-1]] == [
        "update 2", "update 3", "update 4"]
    stored = await database_sync_to_async(lambda: [
        json.loads(frame) for _, frame in selectors.desk_events_range(editors.pk, editors.epoch,
                                                                      2, 5)
    ])()
    assert frames[:-1] == stored
    assert frames[-1] == {"type": "live", "head": 5}
    await submit(contributor, "after")
    assert (await desk.expect("event"))["seq"] == 6
    await desk.close()


async def test_since_without_epoch_is_the_current_epoch_and_zero_the_whole_log(
    blog, author, contributor, submit
):
    await submit(contributor, "one")
    await submit(contributor, "two")
    for query, expected in (("?since=1", [2]), ("?since=0", [1, 2])):
        desk, _, frames = await open_live(blog.slug, query, user=author)
        assert seqs(frames) == expected
        await desk.close()


@pytest.mark.parametrize("query", [
    "?since=1&epoch=another-epoch",
    "?since=9",  # ahead of head
    "?since=0&epoch={epoch}",  # with a replay window of 2, older than the window
])
async def test_a_client_that_must_start_over_gets_a_snapshot(
    blog, author, contributor, submit, settings, query
):
    settings.LIVEBLOG_REPLAY_WINDOW = 2
    for number in range(3):
        await submit(contributor, f"update {number}")
    editors = await stream_of(blog, "editors")
    desk, _, frames = await open_live(blog.slug, query.format(epoch=editors.epoch), user=author)
    assert [frame["type"] for frame in frames] == ["snapshot", "live"]
    assert frames[0]["head"] == 3 and len(frames[0]["submissions"]) == 3
    await desk.close()


async def test_a_bad_since_is_reported_and_answered_with_a_snapshot(blog, author):
    desk = await open_desk(blog.slug, "?since=abc", user=author)
    assert (await desk.expect("error"))["code"] == "invalid"
    await desk.expect("hello")
    await desk.expect("snapshot")
    await desk.expect("live")
    await desk.close()


async def test_a_long_replay_is_read_in_chunks_and_complete(
    blog, author, contributor, monkeypatch
):
    monkeypatch.setattr("liveblog.desk_consumer.REPLAY_CHUNK", 3)

    @database_sync_to_async
    def many():
        for number in range(10):
            services.post_create(actor=contributor, blog_id=blog.pk, client_id=uuid.uuid4(),
                                 body=f"update {number}")

    await many()
    desk, _, frames = await open_live(blog.slug, "?since=1", user=author)
    assert seqs(frames) == list(range(2, 11))
    await desk.close()


async def test_resync_replays_or_snapshots_then_goes_live_again(
    blog, author, contributor, submit
):
    for number in range(4):
        await submit(contributor, f"update {number}")
    desk, _, _ = await open_live(blog.slug, "?since=4", user=author)
    await desk.send({"type": "resync", "since": 1})
    frames = await desk.until(lambda frame: frame["type"] == "live")
    assert seqs(frames) == [2, 3, 4] and frames[-1]["head"] == 4
    await desk.send({"type": "resync", "since": 1, "epoch": "stale"})
    assert (await desk.expect("snapshot"))["head"] == 4
    await desk.expect("live")
    await submit(contributor, "live again")
    assert (await desk.expect("event"))["seq"] == 5
    await desk.close()


# --- Who sees what, live ----------------------------------------------------------------------


async def test_a_submission_reaches_the_editors_and_its_author_but_no_other_contributor(
    blog, author, owner, contributor, other_contributor, submit
):
    editor_desk, _, _ = await open_live(blog.slug, user=author)
    owner_desk, _, _ = await open_live(blog.slug, user=owner)
    own_desk, _, _ = await open_live(blog.slug, user=contributor)
    other_desk, _, _ = await open_live(blog.slug, user=other_contributor)
    written = await submit(contributor, "for the desk")
    for desk in (editor_desk, owner_desk, own_desk):
        event = await desk.expect("event")
        assert (event["seq"], event["submission"]) == (1, written.data)
    assert await other_desk.silent()

    # An editor returns it: both logs number the change; still nothing for the other one.
    await database_sync_to_async(services.submission_return)(
        actor=author, blog_id=blog.pk, submission_id=written.data["id"], note="Source?"
    )
    for desk in (editor_desk, own_desk):
        event = await desk.expect("event")
        assert event["kind"] == "submission.updated" and event["submission"]["note"] == "Source?"
    assert await other_desk.silent()
    for desk in (editor_desk, owner_desk, own_desk, other_desk):
        await desk.close()


async def test_a_contributor_never_sees_anothers_submission_in_snapshot_or_replay(
    blog, author, contributor, other_contributor, submit
):
    theirs = await submit(contributor, "carl's scoop")
    await submit(other_contributor, "cora's own")
    await database_sync_to_async(services.submission_publish)(
        actor=author, blog_id=blog.pk, submission_id=theirs.data["id"]
    )
    for query in ("", "?since=0"):
        desk, _, frames = await open_live(blog.slug, query, user=other_contributor)
        text = json.dumps(frames)
        assert "carl's scoop" not in text and "cora's own" in text
        await desk.close()


# --- Roles change -----------------------------------------------------------------------------


async def test_a_role_change_ends_the_socket_with_4409_and_a_reconnect_gets_the_new_log(
    blog, owner, contributor, other_contributor, submit
):
    await submit(other_contributor, "cora's")
    desk, hello, frames = await open_live(blog.slug, user=contributor)
    assert hello["role"] == "contributor" and frames[0]["submissions"] == []
    await database_sync_to_async(services.member_set)(
        actor=owner, blog_id=blog.pk, user=contributor, role="editor"
    )
    error = await desk.expect("error")
    assert error == {"type": "error", "code": "forbidden",
                     "detail": "your role on this blog changed"}
    await closed_with(desk, 4409)

    again, hello, frames = await open_live(blog.slug, user=contributor)
    editors = await stream_of(blog, "editors")
    assert (hello["role"], hello["epoch"]) == ("editor", editors.epoch)
    assert [item["body"] for item in frames[0]["submissions"]] == ["cora's"]
    await again.close()


async def test_someone_removed_gets_4409_then_4403(blog, owner, contributor):
    desk, _, _ = await open_live(blog.slug, user=contributor)
    await database_sync_to_async(services.member_remove)(
        actor=owner, blog_id=blog.pk, user=contributor
    )
    assert (await desk.expect("error"))["code"] == "forbidden"
    await closed_with(desk, 4409)
    again = await open_desk(blog.slug, user=contributor)
    assert (await again.expect("error"))["code"] == "forbidden"
    await closed_with(again, 4403)


async def test_the_heartbeat_rechecks_the_role_when_no_message_said_so(
    blog, author, contributor, submit, settings
):
    """A role changed behind the services' back (the admin, a lost desk.access message): the
    next heartbeat finds it in the database."""
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    await submit(contributor)
    desk, hello, _ = await open_live(blog.slug, user=author)
    assert hello["heartbeat"] == 0.2
    assert await desk.expect("ping", timeout=2) == {"type": "ping", "head": 1}
    await database_sync_to_async(
        lambda: Membership.objects.filter(user=author).update(role="contributor")
    )()
    frames = await desk.until(lambda frame: frame["type"] == "error", timeout=3)
    assert frames[-1]["code"] == "forbidden"
    await closed_with(desk, 4409)


async def test_a_lost_layer_message_is_delivered_at_the_next_heartbeat(
    blog, author, contributor, submit, settings, monkeypatch
):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.3
    desk, _, _ = await open_live(blog.slug, user=author)
    real_publish = broadcast.desk_publish
    lost = []

    def lossy(*, stream_id, epoch, seq, frame):
        if seq == 2 and not lost:
            lost.append(seq)  # the channel layer dropped it
            return
        real_publish(stream_id=stream_id, epoch=epoch, seq=seq, frame=frame)

    monkeypatch.setattr(broadcast, "desk_publish", lossy)
    for number in range(3):
        await submit(contributor, f"update {number}")
    frames = await desk.until(lambda frame: frame.get("seq") == 3, timeout=3)
    assert seqs(frames) == [1, 2, 3] and lost == [2]
    await desk.close()


# --- Bad frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("frame, code", [
    ("not json at all", "bad_json"),
    ("[" * 100_000 + "]" * 100_000, "too_large"),
    ("[" * 5000 + "]" * 5000, "bad_json"),
    ("[1, 2]", "invalid"),
    ('{"type": "subscribe"}', "unknown_type"),
    ('{"type": "post", "client_id": "9b2f2c1e-7d0a-4f6e-9d43-1d0c4c1f0e11", "body": "x"}',
     "unknown_type"),
    ('{"no": "type"}', "invalid"),
    ('{"type": "resync"}', "invalid"),
    ('{"type": "resync", "since": "3"}', "invalid"),
    ('{"type": "resync", "since": -1}', "invalid"),
    ('{"type": "resync", "since": true}', "invalid"),
    ('{"type": "resync", "since": 0, "epoch": 5}', "invalid"),
])
async def test_bad_frames_get_an_error_and_the_socket_stays(blog, author, frame, code):
    desk, _, _ = await open_live(blog.slug, "?since=0", user=author)
    await desk.send(frame)
    error = await desk.expect("error")
    assert error["code"] == code and error["detail"]
    await desk.send({"type": "resync", "since": 0})
    await desk.until(lambda frame: frame["type"] == "live")
    await desk.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await desk.expect("error"))["code"] == "invalid"
    await desk.close()


async def test_a_client_over_its_frame_budget_is_told_then_closed(blog, author, settings):
    settings.LIVEBLOG_FRAME_BURST = 3
    settings.LIVEBLOG_FRAME_RATE = 0.001
    desk, _, _ = await open_live(blog.slug, "?since=0", user=author)
    for _ in range(3):
        await desk.send("nonsense")
        assert (await desk.expect("error"))["code"] == "bad_json"
    await desk.send("nonsense")
    limited = await desk.expect("error")
    assert limited["code"] == "rate_limited" and limited["retry_after"] >= 1
    for _ in range(3):
        await desk.send("nonsense")
    frames = []
    while True:
        message = await desk.communicator.receive_output(timeout=3)
        if message["type"] == "websocket.close":
            break
        frames.append(json.loads(message["text"]))
    assert message["code"] == 1008
    assert {frame["code"] for frame in frames} <= {"rate_limited"}


# --- The seam between replay and live ---------------------------------------------------------


async def test_replay_racing_live_submissions_loses_and_duplicates_nothing(
    blog, author, contributor, submit, monkeypatch
):
    """Submissions committed after the socket joined its groups but before the log is read,
    and after the read while the replay goes out: each seq arrives once, in order."""
    for number in range(3):
        await submit(contributor, f"before {number}")
    real_position, real_range = selectors.desk_position, selectors.desk_events_range

    def racing_position(stream_id):
        # These commit (and are broadcast) after the socket joined its groups, before the
        # catch-up reads the log...
        monkeypatch.setattr(selectors, "desk_position", real_position)
        for number in range(3):
            services.post_create(actor=contributor, blog_id=blog.pk, client_id=uuid.uuid4(),
                                 body=f"during {number}")
        return real_position(stream_id)

    def racing_read(stream_id, epoch, after, upto):
        rows = real_range(stream_id, epoch, after, upto)
        monkeypatch.setattr(selectors, "desk_events_range", real_range)
        # ...and these after the read, while the replay is still to be sent.
        for number in range(3):
            services.post_create(actor=contributor, blog_id=blog.pk, client_id=uuid.uuid4(),
                                 body=f"after {number}")
        return rows

    monkeypatch.setattr(selectors, "desk_position", racing_position)
    monkeypatch.setattr(selectors, "desk_events_range", racing_read)
    desk = await open_desk(blog.slug, "?since=1", user=author)
    await desk.expect("hello")
    frames = await desk.until(lambda frame: frame.get("seq") == 9)
    assert seqs(frames) == list(range(2, 10))
    assert [frame["type"] for frame in frames].count("live") == 1
    assert [frame["submission"]["body"] for frame in frames if frame["type"] == "event"] == [
        "before 1", "before 2", "during 0", "during 1", "during 2",
        "after 0", "after 1", "after 2",
    ]
    assert await desk.silent()
    await desk.close()


async def test_desks_joining_during_a_stream_of_submissions_see_every_seq_once(
    blog, author, owner, contributor
):
    """A writer thread submits 40 times while editors' and the author's own desk sockets
    connect from different positions: each gets every seq of its log once, in order."""
    total = 40
    started = threading.Event()

    def writer():
        try:
            for number in range(total):
                services.post_create(actor=contributor, blog_id=blog.pk,
                                     client_id=uuid.uuid4(), body=f"post {number}")
                if number == 5:
                    started.set()
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    desks = []
    for user, since in [(author, 0), (owner, None), (contributor, 2), (author, 4),
                        (contributor, None)]:
        query = "" if since is None else f"?since={since}"
        desks.append((since, await open_desk(blog.slug, query, user=user)))
        await asyncio.sleep(0)
    await asyncio.get_running_loop().run_in_executor(None, thread.join, 60)
    for since, desk in desks:
        frames = await desk.until(lambda frame: frame.get("type") == "live", timeout=10)
        if seqs(frames)[-1:] != [total] and frames[-1]["head"] != total:
            frames += await desk.until(lambda frame: frame.get("seq") == total, timeout=10)
        start = since if since is not None else next(
            frame["head"] for frame in frames if frame["type"] == "snapshot")
        got = seqs(frames)
        assert got == list(range(start + 1, total + 1)), got
        assert await desk.silent()
        await desk.close()


# --- The public runtime is untouched ----------------------------------------------------------


async def test_desk_traffic_never_reaches_the_public_socket_or_groups(
    blog, author, contributor, submit, monkeypatch
):
    layer = get_channel_layer()
    sent_to = []
    real_group_send = layer.group_send

    async def recording(group, message):
        sent_to.append((group, message["type"]))
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", recording)
    reader = await Reader.open(blog.slug, "?since=0")
    await reader.expect("hello")
    await reader.events_until_live()
    desk, _, _ = await open_live(blog.slug, user=author)

    written = await submit(contributor, "embargoed scoop")
    await desk.expect("event")
    ident = written.data["id"]
    later = timezone.now() + timedelta(hours=1)
    await database_sync_to_async(services.submission_publish)(
        actor=author, blog_id=blog.pk, submission_id=ident, publish_at=later
    )
    await desk.expect("event")
    assert await reader.silent()
    public = broadcast.blog_group(blog.pk)
    assert (public, broadcast.EVENT_MESSAGE_TYPE) not in sent_to
    assert all(kind.startswith("desk.") for _, kind in sent_to), sent_to

    # Published: the public socket gets post.created, with nothing of the desk in it.
    await database_sync_to_async(services.submission_publish)(
        actor=author, blog_id=blog.pk, submission_id=ident
    )
    event = await reader.expect("event")
    assert event["kind"] == "post.created" and event["seq"] == 1
    assert not {"state", "history", "note", "publish_at"} & set(event["post"])
    assert (await desk.expect("event"))["submission"]["state"] == "published"
    assert await reader.silent()
    await reader.close()
    await desk.close()


# --- Ends ---------------------------------------------------------------------------------------


async def test_a_sign_out_elsewhere_ends_the_socket_at_the_next_heartbeat(
    blog, author, settings
):
    """The session the socket opened with is gone (signed out on another tab, password
    changed): the heartbeat finds it, 4409, and the reconnect is refused as anonymous."""
    from django.contrib.sessions.models import Session

    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    cookie = await session_cookie(author)
    desk = Reader(f"/ws/desk/{blog.slug}/", headers=[ORIGIN, cookie])
    assert (await desk.communicator.connect(timeout=5))[0]
    await desk.until(lambda frame: frame["type"] == "live")
    await database_sync_to_async(lambda: Session.objects.all().delete())()
    frames = await desk.until(lambda frame: frame["type"] == "error", timeout=3)
    assert frames[-1]["code"] == "forbidden"
    await closed_with(desk, 4409)
    again = Reader(f"/ws/desk/{blog.slug}/", headers=[ORIGIN, cookie])
    assert (await again.communicator.connect(timeout=5))[0]
    assert (await again.expect("error"))["code"] == "not_authenticated"
    await closed_with(again, 4403)


async def test_a_deleted_blog_ends_the_socket_with_4404(blog, author, settings):
    settings.LIVEBLOG_HEARTBEAT_SECONDS = 0.2
    desk, _, _ = await open_live(blog.slug, user=author)
    await database_sync_to_async(lambda: type(blog).objects.filter(pk=blog.pk).delete())()
    frames = await desk.until(lambda frame: frame["type"] == "error", timeout=3)
    assert frames[-1]["code"] == "not_found"
    await closed_with(desk, 4404)


async def test_a_database_failure_at_connect_is_unavailable_then_1011(blog, author, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("database is gone")

    cookie = await session_cookie(author)
    monkeypatch.setattr(selectors, "desk_stream", broken)
    desk = await open_desk(blog.slug, headers=[ORIGIN, cookie])
    assert (await desk.expect("error"))["code"] == "unavailable"
    await closed_with(desk, 1011)
