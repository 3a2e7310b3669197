"""Nothing unpublished ever reaches a reader, on any path (issue 17, point 3).

A desk holds submissions in every state (tests/desk_scenario.py): submitted (one with a photo),
returned with a note, revised, withdrawn (with a photo), scheduled by an editor (with a photo),
edited by an editor and scheduled, and two published: one edited and published by an editor
after another post went out meanwhile, one published by the scheduler. Every text a submission
carried (bodies before and after each revision, notes, alt texts), its photo's storage stem and
its client_id is a unique marker; each test below takes one public read path, searches its whole
answers for every marker, and checks that each published post is there exactly once, made at the
moment it was published: its post.created took the head at that moment (after the post published
meanwhile), its created_at is that moment, and it sits at the top of the feed.

Read paths: the public websocket (live; replay from every `since` and resync; the snapshot), the
event stream (live; replay by Last-Event-ID from every position; the snapshot),
GET /api/liveblog/ and /api/liveblog/<slug>/, /posts (every page), /events (every since), the
reader page (anonymous, a contributor, an editor) and its `?before=` archive pages, the embed
page, the Atom feed, the JSON-LD, /sitemap.xml, oEmbed, the home page, the desk endpoints asked
by readers, and the service worker's caching rules.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from liveblog.models import DeskEvent, DeskStream
from tests.desk_scenario import SLUG, DeskScenario, Published, make_scenario
from tests.support.comms import Reader
from tests.support.sse import AsgiStream

from .test_photos import media_root  # noqa: F401
from .test_structured_data import _LdScripts

READER = f"/liveblog/{SLUG}/"
API = f"/api/liveblog/{SLUG}"
ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
def desk(owner, media_root) -> DeskScenario:  # noqa: F811
    return make_scenario(owner).run_all()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- What every answer is checked for -------------------------------------------------------------


def assert_hidden(text: str, desk: DeskScenario, where: str) -> None:
    """No marker of anything unpublished anywhere in `text`."""
    shown = sorted(label for label, secret in desk.hidden.items() if secret in text)
    assert not shown, f"{where} shows unpublished {shown}"


def assert_feed(posts: list[dict], desk: DeskScenario) -> None:
    """Exactly the published posts, newest first (each publication at the top when it was
    made), each once, with the time it was published."""
    assert [post["id"] for post in posts] == [item.post_id for item in reversed(desk.published)]
    for item in desk.published:
        [post] = [post for post in posts if item.text in post["body"]]
        assert (post["id"], post["created_at"]) == (item.post_id, item.created_at)
        if item.stem:
            assert item.stem in post["photo"]["src"] and post["photo"]["alt"] == item.alt


def assert_created_event(event: dict, item: Published) -> None:
    """The post.created appended when it was published: the head at that moment, its time."""
    assert (event["type"], event["kind"], event["seq"]) == ("event", "post.created", item.seq)
    post = event["post"]
    assert (post["id"], post["created_at"]) == (item.post_id, item.created_at)
    assert item.text in post["body"] and item.text in post["html"]
    at, created = (datetime.fromisoformat(value) for value in (event["at"], post["created_at"]))
    assert 0 <= (at - created).total_seconds() < 5


def assert_replay(events: list[dict], since: int, desk: DeskScenario) -> None:
    """Exactly since+1 … head, and each publication after `since` once, as it was appended."""
    assert [event["seq"] for event in events] == list(range(since + 1, desk.published[-1].seq + 1))
    for item in desk.published:
        mine = [event for event in events if event["post"]["id"] == item.post_id]
        assert len(mine) == (1 if item.seq > since else 0), (item, events)
        if mine:
            assert_created_event(mine[0], item)


def page_text(client: Client, url: str, desk: DeskScenario, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    text = b"".join(response) if response.streaming else response.content
    text = text.decode()
    assert_hidden(text, desk, url)
    return text


def article_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<article [^>]*data-post-id="(\d+)"', html)]


def feed_data(html: str) -> dict:
    found = re.search(r'<script id="feed-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.mark.django_db
def test_every_marker_is_there_to_be_found_on_the_desk(desk):
    """The control: every hidden string is in the editors' desk log (each version of each
    submission as it was numbered there), so the searches below search for real text."""
    stream = DeskStream.objects.get(blog=desk.blog, audience=DeskStream.EDITORS)
    log = "".join(DeskEvent.objects.filter(stream=stream).values_list("frame", flat=True))
    assert len(desk.hidden) >= 20
    assert [label for label, secret in desk.hidden.items() if secret not in log] == []


# --- The public websocket -------------------------------------------------------------------------


async def open_live(query: str = "", **options) -> Reader:
    reader = await Reader.open(SLUG, query, **options)
    await reader.expect("hello")
    await reader.until(lambda frame: frame["type"] == "live")
    return reader


@pytest.mark.django_db(transaction=True)
async def test_public_websocket_live_gets_nothing_from_the_desk_and_each_publication_once(
    owner, media_root  # noqa: F811
):
    """A reader connected before anything happens: after each run of desk-only changes the very
    next frame is the next publication's post.created (nothing arrived for the desk in between),
    with the seq the head took then, and nothing else arrives afterwards. A contributor posting
    over the public socket gets an ack with no seq; no reader gets anything for it."""
    desk = await database_sync_to_async(make_scenario)(owner)
    reader = await open_live()
    steps = await database_sync_to_async(desk.steps)()
    assert [step.public for step in steps].count(False) >= 10
    for step in steps:
        await database_sync_to_async(step.run)()
        if step.public:
            event = await reader.next()
            assert_created_event(event, desk.published[-1])

    writer = await open_live(user=desk.contributor)
    client_id = str(uuid.uuid4())
    await writer.send({"type": "post", "client_id": client_id, "body": "ZqSocketBody"})
    ack = await writer.expect("ack")
    assert (ack["client_id"], ack["seq"], ack["post"]["state"]) == (client_id, None, "submitted")
    desk.hidden.update({"Socket body": "ZqSocketBody", "Socket client_id": client_id})
    await database_sync_to_async(desk.publish_direct)("Sentinel")
    for socket in (reader, writer):
        assert_created_event(await socket.next(), desk.published[-1])
    assert await reader.silent() and await writer.silent()
    assert_hidden(json.dumps(reader.frames), desk, "the live reader's frames")
    assert_hidden(json.dumps(writer.frames[-1]), desk, "the contributor's reader frames")
    await reader.close()
    await writer.close()


@pytest.mark.django_db(transaction=True)
async def test_public_websocket_replay_from_every_since_resync_and_snapshot(
    owner, media_root  # noqa: F811
):
    desk = await database_sync_to_async(lambda: make_scenario(owner).run_all())()
    head, epoch = desk.published[-1].seq, desk.blog.epoch
    for since in range(head + 1):
        for query in (f"?since={since}&epoch={epoch}", f"?since={since}"):
            reader = await Reader.open(SLUG, query)
            assert (await reader.expect("hello"))["head"] == head
            events, live = await reader.events_until_live()
            assert live["head"] == head
            assert_replay(events, since, desk)
            assert_hidden(json.dumps(reader.frames), desk, f"a replay {query}")
            await reader.close()

    reader = await Reader.open(SLUG)  # no position: the snapshot
    await reader.expect("hello")
    snapshot = await reader.expect("snapshot")
    assert snapshot["head"] == head
    assert_feed(snapshot["posts"], desk)
    await reader.expect("live")
    for since in range(head + 1):  # a resync on the same socket, from every position
        await reader.send({"type": "resync", "since": since})
        events, _ = await reader.events_until_live()
        assert_replay(events, since, desk)
    await reader.send({"type": "resync", "since": 0, "epoch": "another-epoch"})
    [snapshot, _] = await reader.until(lambda frame: frame["type"] == "live")
    assert_feed(snapshot["posts"], desk)
    assert_hidden(json.dumps(reader.frames), desk, "the snapshot and resyncs")
    await reader.close()


# --- The event stream (SSE) ----------------------------------------------------------------------


async def stream_until_live(query: str = "", headers: list | None = None) -> AsgiStream:
    stream = await AsgiStream(f"/sse/liveblog/{SLUG}/{query}", headers=headers).open()
    await stream.expect("hello")
    await stream.until(lambda frame: frame["type"] == "live")
    return stream


@pytest.mark.django_db(transaction=True)
async def test_event_stream_live_replay_by_last_event_id_and_snapshot(
    owner, media_root  # noqa: F811
):
    """The SSE transport reads the same public log: live, the next message after desk-only
    changes is the next publication; a reconnect with `Last-Event-ID` from every position
    replays exactly the publications after it; the snapshot holds the published posts only."""
    desk = await database_sync_to_async(make_scenario)(owner)
    stream = await stream_until_live()
    for step in await database_sync_to_async(desk.steps)():
        await database_sync_to_async(step.run)()
        if step.public:
            message = await stream.next()
            assert_created_event(message.frame, desk.published[-1])
            assert message.id == f"{desk.blog.epoch}:{desk.published[-1].seq}"
    await stream.close()
    head, epoch = desk.published[-1].seq, desk.blog.epoch
    for since in range(head + 1):
        replay = await AsgiStream(f"/sse/liveblog/{SLUG}/", headers=[
            (b"last-event-id", f"{epoch}:{since}".encode())]).open()
        await replay.expect("hello")
        messages = await replay.until(lambda frame: frame["type"] == "live")
        assert_replay([message.frame for message in messages[:-1]], since, desk)
        await replay.close()
        stream.messages += replay.messages
    fresh = await AsgiStream(f"/sse/liveblog/{SLUG}/").open()
    await fresh.expect("hello")
    assert_feed((await fresh.expect("snapshot")).frame["posts"], desk)
    await fresh.close()
    everything = "\n".join(message.data for message in stream.messages + fresh.messages)
    assert_hidden(everything, desk, "the event stream")


# --- The JSON API ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_blog_api_and_blog_list(client, desk):
    """The blog's head counts publications only: the desk took no public seq."""
    blog = json.loads(page_text(client, f"{API}/", desk))
    assert blog["head"] == desk.published[-1].seq == len(desk.published)
    page_text(client, "/api/liveblog/", desk)
    page_text(signed_in(desk.editor), f"{API}/", desk)  # embed_origins and all, still no desk


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [1, 2, 20])
def test_posts_api_every_page(client, desk, limit):
    posts, before = [], None
    while True:
        url = f"{API}/posts?limit={limit}" + (f"&before={before}" if before else "")
        page = json.loads(page_text(client, url, desk))
        assert page["head"] == desk.published[-1].seq
        posts += page["posts"]
        if (before := page["next_before"]) is None:
            break
    assert_feed(posts, desk)


@pytest.mark.django_db
def test_events_api_every_since_and_its_snapshot(client, desk):
    head, epoch = desk.published[-1].seq, desk.blog.epoch
    for since in range(head + 1):
        for query in (f"since={since}", f"since={since}&epoch={epoch}"):
            answer = json.loads(page_text(client, f"{API}/events?{query}", desk))
            assert (answer["epoch"], answer["head"]) == (epoch, head)
            assert_replay(answer["events"], since, desk)
        one = json.loads(page_text(client, f"{API}/events?since={since}&limit=1", desk))
        assert [event["seq"] for event in one["events"]] == ([since + 1] if since < head else [])
    for query in ("since=0&epoch=another-epoch", f"since={head + 5}"):
        snapshot = json.loads(page_text(client, f"{API}/events?{query}", desk))
        assert snapshot["type"] == "snapshot"
        assert_feed(snapshot["posts"], desk)


@pytest.mark.django_db
def test_desk_endpoints_tell_readers_and_other_contributors_nothing(client, desk):
    """The desk's own reads answer a reader with 401, and show another contributor only their
    own (empty) desk and a 403 for anyone else's submission; no answer names a submission."""
    other = type(desk.contributor).objects.create_user("cora")
    desk.blog.memberships.create(user=other, role="contributor")
    page_text(client, f"{API}/desk", desk, status=401)
    assert json.loads(page_text(signed_in(other), f"{API}/desk", desk))["submissions"] == []
    for submission_id in desk.submissions.values():
        for reader, status in ((client, 401), (signed_in(other), 403)):
            page_text(reader, f"{API}/submissions/{submission_id}", desk, status=status)


# --- Pages ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "contributor", "editor"])
def test_reader_page(client, desk, who):
    """Whoever reads it, signed in or not, the page (its feed, key events, meta description,
    og:image, snapshot JSON and JSON-LD) shows the published posts only, each once."""
    reader = client if who == "anonymous" else signed_in(getattr(desk, who))
    html = page_text(reader, READER, desk)
    assert article_ids(html) == [item.post_id for item in reversed(desk.published)]
    for item in desk.published:
        assert html.count(f'data-post-id="{item.post_id}"') == 1
    data = feed_data(html)
    assert data["head"] == desk.published[-1].seq
    assert_feed(data["posts"], desk)


@pytest.mark.django_db
def test_reader_archive_pages(client, desk):
    """Every `?before=` page, and the chain of "Older updates" links from the newest."""
    newest = desk.published[-1].post_id
    for before in range(1, newest + 2):
        html = page_text(client, f"{READER}?before={before}", desk)
        assert article_ids(html) == [item.post_id for item in reversed(desk.published)
                                     if item.post_id < before]
    seen, url = [], f"{READER}?before={newest + 1}"
    while url:
        html = page_text(client, url, desk)
        seen += article_ids(html)
        found = re.search(r'<p class="older"><a href="(\?before=\d+)"', html)
        url = f"{READER}{found.group(1)}" if found else None
    assert seen == [item.post_id for item in reversed(desk.published)]


@pytest.mark.django_db
def test_embed_page(client, desk):
    html = page_text(signed_in(desk.contributor), f"{READER}embed/", desk)
    assert article_ids(html) == [item.post_id for item in reversed(desk.published)]
    assert_feed(feed_data(html)["posts"], desk)


@pytest.mark.django_db
def test_atom_feed_and_its_version(client, desk):
    """The feed's entries are the published posts, each once, published when they were; more
    desk activity changes nothing a feed reader sees, not even the feed's version (a poll is
    answered 304)."""
    url = f"{READER}feed/"
    response = client.get(url)
    assert_hidden(response.content.decode(), desk, url)
    entries = ET.fromstring(response.content).findall(f"{ATOM}entry")
    ids = [entry.find(f"{ATOM}id").text.rsplit("/", 1)[1] for entry in entries]
    assert ids == [str(item.post_id) for item in reversed(desk.published)]
    for entry, item in zip(entries, reversed(desk.published), strict=True):
        published = datetime.fromisoformat(entry.find(f"{ATOM}published").text)
        assert published == datetime.fromisoformat(item.created_at)
        assert item.text in entry.find(f"{ATOM}summary").text
    etag, modified = response["ETag"], response["Last-Modified"]
    desk.more_desk_activity()
    again = client.get(url)
    assert (again["ETag"], again["Last-Modified"]) == (etag, modified)
    assert_hidden(again.content.decode(), desk, url)
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.django_db
def test_json_ld(client, desk):
    """The LiveBlogPosting's updates are the published posts, each once, with their publication
    time; its dateModified is the last publication and desk activity does not move it."""
    def structured() -> tuple[str, dict]:
        parser = _LdScripts()
        parser.feed(page_text(client, READER, desk))
        [script] = parser.found
        assert_hidden(script, desk, "the JSON-LD")
        return script, json.loads(script)

    _, data = structured()
    updates = data["liveBlogUpdate"]
    assert [update["url"].rsplit("#post-", 1)[1] for update in updates] == [
        str(item.post_id) for item in reversed(desk.published)
    ]
    for update, item in zip(updates, reversed(desk.published), strict=True):
        assert item.text in update["articleBody"] and update["datePublished"] == item.created_at
    modified = data["dateModified"]
    assert modified >= desk.published[-1].created_at
    desk.more_desk_activity()
    assert structured()[1]["dateModified"] == modified


@pytest.mark.django_db
def test_sitemap(client, desk):
    """Lists the reader page; its lastmod comes from the public log, which the desk never
    moves."""
    def lastmod() -> str:
        root = ET.fromstring(page_text(client, "/sitemap.xml", desk))
        [entry] = [url for url in root.findall(f"{SITEMAP}url")
                   if url.find(f"{SITEMAP}loc").text.endswith(READER)]
        return entry.find(f"{SITEMAP}lastmod").text

    before = lastmod()
    desk.more_desk_activity()
    assert lastmod() == before


@pytest.mark.django_db
def test_oembed(client, desk):
    for page in (READER, f"{READER}embed/"):
        url = quote(f"http://testserver{page}", safe="")
        answer = json.loads(page_text(client, f"/api/oembed?url={url}&format=json", desk))
        assert answer["type"] == "rich"


@pytest.mark.django_db
def test_home_page(client, desk):
    for reader in (client, signed_in(desk.contributor), signed_in(desk.editor)):
        assert READER in page_text(reader, "/", desk)


# --- The service worker ---------------------------------------------------------------------------

SW_ROUTES = Path(__file__).resolve().parent / "support" / "sw_routes.js"
DESK_URLS = [
    f"{API}/desk", f"{API}/submissions/3", f"{API}/submissions/3/publish", f"{API}/members",
    f"{API}/posts/3/return", "/ws/desk/desk/?since=0",
]


def sw_routes(client, tmp_path, requests: list[dict]) -> list[dict]:
    """What the service worker as served does with each request (tests/support/sw_routes.js
    runs it in Node with a fake worker scope and network)."""
    worker = tmp_path / "sw.js"
    worker.write_bytes(client.get("/sw.js").content)
    done = subprocess.run(
        ["node", str(SW_ROUTES), str(worker), json.dumps(requests)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["fetchListeners"] >= 1
    return answer["results"]


@pytest.mark.django_db
def test_the_service_worker_never_caches_the_desk(client, tmp_path):
    """The worker caches no /api/ answer at all: a desk or submission URL fetched by a page is
    left to the network (no listener answers it), and one opened as a page is not kept for
    anyone. The controls: a reader page is kept in the public cache, a console in its user's,
    static files are answered from the cache."""
    requests = [
        {"url": url, "mode": mode, "viewer": viewer}
        for url in [*DESK_URLS, f"{API}/posts", f"{API}/events?since=0", f"{API}/"]
        for mode, viewer in (("cors", "anonymous"), ("navigate", "anonymous"),
                             ("navigate", "7"))
    ] + [
        {"url": READER, "mode": "navigate", "viewer": "anonymous"},
        {"url": f"{READER}write/", "mode": "navigate", "viewer": "7"},
        {"url": "/static/liveblog/app.css", "mode": "no-cors", "viewer": "anonymous"},
    ]
    results = sw_routes(client, tmp_path, requests)
    *api, reader, console, static = results
    for result in api:
        assert result["puts"] == [], result
        assert result["answered"] == (result["mode"] == "navigate"), result  # network first
    assert reader["puts"] == [{"cache": "liveblog-public-pages", "url": f"http://testserver{READER}"}]
    assert console["puts"] == [{"cache": "liveblog-user-7",
                                "url": f"http://testserver{READER}write/"}]
    assert static["answered"] and static["puts"] == []


# --- Web Push -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_web_push_sends_only_published_key_events(owner, media_root, settings):  # noqa: F811
    """A subscriber gets a push for each key event when it becomes public, and for nothing
    on the desk: not a contributor's key-event submission (waiting, or returned), not an
    editor's key event scheduled for tomorrow. Publishing one of them sends its push then.
    Every push is decrypted with the subscription's keys and searched for every marker."""
    from devstack.push import BrowserKeys
    from liveblog.models import PushSubscription
    from liveblog.push import sender
    from liveblog.services import submission_publish
    from tests.test_push import Recorder

    settings.LIVEBLOG_PUSH_SENDER = True
    recorder = Recorder()
    sender.install(sender.Sender(workers=2, post=recorder))
    try:
        desk = make_scenario(owner)
        keys = BrowserKeys()
        PushSubscription.objects.create(blog=desk.blog, endpoint="https://push.example.net/1",
                                        **keys.subscription("")["keys"])
        pushed: list[tuple[str, dict]] = []
        for step in desk.steps():
            step.run()
            pushed += [(step.name, keys.decrypt(body)) for _, body, *_ in recorder.sent]
            recorder.sent.clear()
        published = next(item for item in desk.published if item.label == "Published")
        assert [(name, message["post"], message["text"]) for name, message in pushed] == [
            ("an editor edits the submission and publishes it", published.post_id,
             published.text)]
        assert_hidden(json.dumps([message for _, message in pushed]), desk, "the pushes")

        waiting = submission_publish(actor=desk.editor, blog_id=desk.blog.pk,
                                     submission_id=desk.submissions["Waiting"])
        [(_, body, *_)] = recorder.sent
        assert keys.decrypt(body)["post"] == waiting.data["id"]
    finally:
        sender.install(None)
