"""Properties of the event log, as a Hypothesis state machine over the services and selectors.

Several authors create (and retry client_ids, with the same or another body), edit, pin, flag,
delete, change the blog and reset its log; a stranger and an anonymous user try the same and
must be refused without changing anything. Readers follow the log live (the frames the feed
hands out) and "reconnect" at random positions, through the runtime's real catch-up code
(`CatchUp` over a `Feed`, reading the log in pages or a snapshot through `Log`) and through the
events API's selector. After every step:

- the log of the current epoch is seqs 1..head, each stored frame numbered as its row;
- the state a reader builds (snapshot, then events) equals a fresh snapshot plus older pages,
  and both equal an independent model of what was written;
- a replay from any position of this epoch, applied to the state the reader had there, ends
  in that same state; a position of another epoch, beyond the head or out of the window gets
  a snapshot.

Each example runs inside a savepoint that is rolled back at its end, so every example starts
from an empty database (the test's own transaction, pytest-django's `django_db`). The runtime's
catch-up is async; its reads are plain functions here (`in_db_thread` runs them in this
thread, inside the savepoint), so it is driven without an event loop.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from liveblog import protocol, selectors, services
from liveblog.errors import Invalid, LiveblogError, NotAllowed, NotAuthenticated, NotFound
from liveblog.live import catchup, log
from liveblog.live.catchup import CatchUp
from liveblog.live.feed import Feed
from liveblog.models import Blog, Event, Post
from liveblog.rendering import render_markdown

T = TypeVar("T")

# Small, so that positions fall out of the replay window and replays from the log take pages.
WINDOW = 6
LOG_PAGE = 2
# The snapshot's page of newest posts (20 in the app): small, so that pinned posts older than it
# and paging through older posts happen in short runs.
SNAPSHOT_PAGE = 4

# Mostly bodies the services accept; now and then a blank one, which they refuse.
BODIES = st.one_of(
    st.sampled_from([
        "Goal!", "**Goal!** 1-0", "<script>alert(1)</script>", "[x](javascript:alert(1))",
        "# Half time", "\u200f\u202eRTL\u202c", "emoji \U0001f3df\ufe0f", "a\x00b",
    ]),
    st.text(min_size=1, max_size=40),
    st.text(min_size=1, max_size=40),
    st.sampled_from(["", "   ", "\n\t"]),
)
TITLES = st.one_of(st.sampled_from(["Cup final", "  padded  ", "", " ", "x" * 201]),
                   st.text(max_size=30))


def refused(text: str) -> bool:
    """A body the services refuse: blank, or with a NUL (which PostgreSQL cannot store)."""
    return not text.strip() or "\x00" in text


def acceptable(body: str) -> str:
    """The body, or one the services accept (where validation is not what is tested)."""
    return "x" if refused(body) else body


# --- Running the runtime's async catch-up in this thread ---------------------------------------


def run_now(awaitable: Awaitable[T]) -> T:
    """The result of an awaitable that never suspends (its reads run right here)."""
    steps = awaitable.__await__()
    try:
        suspended = steps.send(None)
    except StopIteration as done:
        return done.value
    steps.close()
    raise AssertionError(f"the catch-up waited for {suspended!r}; it should only read")


async def in_this_thread(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return function(*args, **kwargs)


async def collect(catch_up: CatchUp) -> list[str]:
    return [text async for text in catch_up]


# --- A reader: the state it builds from the frames it is sent ----------------------------------


BLOG_FIELDS = ("slug", "title", "description", "status")


@dataclass
class ReaderState:
    """What a reader shows: the blog and its visible posts by id, built only from frames."""

    blog: dict
    posts: dict[int, dict] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, frame: dict, older: list[dict]) -> ReaderState:
        """A snapshot frame, plus the older posts the reader pages in through the posts API."""
        state = cls(blog={name: frame["blog"][name] for name in BLOG_FIELDS})
        for post in frame["posts"] + older:
            state.posts[post["id"]] = post
        return state

    def apply(self, event: dict) -> None:
        kind, post = event["kind"], event.get("post")
        if kind == "post.created":
            assert post["id"] not in self.posts, f"created twice: {event}"
            self.posts[post["id"]] = post
        elif kind == "post.updated":
            assert post["id"] in self.posts, f"update of a post the reader lacks: {event}"
            self.posts[post["id"]] = post
        elif kind == "post.deleted":
            assert post == {"id": post["id"], "deleted": True}, event
            assert self.posts.pop(post["id"], None) is not None, f"deleted unknown: {event}"
        elif kind == "blog.updated":
            self.blog = {name: event["blog"][name] for name in BLOG_FIELDS}
        else:
            raise AssertionError(f"unknown event kind {kind!r}")


@dataclass
class LiveReader:
    """A reader that stays connected: it gets every event the feed hands out."""

    epoch: str
    seq: int
    state: ReaderState


# --- The model: what was written, kept independently of the app --------------------------------


@dataclass
class ModelPost:
    id: int
    client_id: uuid.UUID
    author: str
    body: str
    pinned: bool
    key_event: bool
    deleted: bool = False
    # The first answer to its create: (epoch, seq, post); and its deletion: (epoch, seq).
    created: tuple[str, int, dict] | None = None
    deletion: tuple[str, int] | None = None


class EventLogMachine(RuleBasedStateMachine):
    client_ids = Bundle("client_ids")

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        users = get_user_model().objects
        # No passwords: hashing one is slower than a whole example.
        self.owner = users.create(username="olivia", is_staff=True)
        self.alice = users.create(username="alice", first_name="Alice")
        self.bob = users.create(username="bob")
        self.stranger = users.create(username="sam")
        self.anonymous = AnonymousUser()
        self.authors = {"olivia": self.owner, "alice": self.alice, "bob": self.bob}
        blog = services.blog_create(actor=self.owner, slug="prop", title="Properties")
        blog.authors.add(self.alice, self.bob)
        self.blog_id = blog.pk
        self.epoch, self.head = blog.epoch, 0
        self.blog = {"slug": "prop", "title": "Properties", "description": "", "status": "live"}
        self.posts: dict[uuid.UUID, ModelPost] = {}
        self.epochs = [blog.epoch]
        # The process's feed (as the hub keeps it) and a reader connected all along.
        self.log = log.Log()
        self.feed = Feed(head=0, epoch=blog.epoch, recent=[], window=WINDOW)
        self.live = LiveReader(blog.epoch, 0, self.fresh_state())
        # The live reader's state at every position it passed: where reconnects start from.
        self.history: dict[tuple[str, int], ReaderState] = {
            (blog.epoch, 0): copy.deepcopy(self.live.state)
        }

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    # --- Reading ------------------------------------------------------------------------------

    def fresh_state(self) -> ReaderState:
        """A new reader's state: the snapshot, then the older posts page by page."""
        page = selectors.blog_snapshot(self.blog_id)
        frame = protocol.snapshot_json(page)
        return ReaderState.from_snapshot(frame, self.older_posts(page.next_before, page.head))

    def older_posts(self, before: int | None, head: int) -> list[dict]:
        older: list[dict] = []
        while before is not None:
            page = selectors.posts_page(self.blog_id, before=before, limit=3)
            assert page.head == head, "the log moved while nothing was written"
            assert all(post["id"] < before for post in page.posts)
            older += page.posts
            before = page.next_before
        return older

    def sync_feed(self) -> None:
        """Hand the feed what was committed (as the hub does from the layer and the log), and
        the live reader what the feed hands out."""
        head, epoch = selectors.blog_position(self.blog_id)
        if epoch != self.feed.epoch:
            self.feed.restart(head=head, epoch=epoch)
            # A reset: connected readers start over from a snapshot (consumer.hub_reset).
            self.live = LiveReader(epoch, head, self.fresh_state())
            self.history[(epoch, head)] = copy.deepcopy(self.live.state)
        for seq, text in selectors.events_range(self.blog_id, epoch, self.feed.head, head):
            for frame in self.feed.accept(seq, text):
                event = json.loads(frame.text)
                assert event["seq"] == frame.seq == self.live.seq + 1, (event, self.live.seq)
                self.live.state.apply(event)
                self.live.seq = frame.seq
                self.history[(epoch, frame.seq)] = copy.deepcopy(self.live.state)
        assert (self.feed.head, self.live.seq) == (head, head)

    def expect_refused(self, error: type[LiveblogError], write: Callable[[], Any]) -> None:
        with pytest.raises(error):
            write()
        self.sync_feed()  # nothing to hand out; checks the head did not move

    def took(self, written: services.Written) -> int:
        """The seq a write that changed something took: the next one."""
        self.head += 1
        assert written.seq == self.head, (written, self.head)
        self.sync_feed()
        return written.seq

    def actor(self, name: str) -> Any:
        return {**self.authors, "sam": self.stranger, "anonymous": self.anonymous}[name]

    # --- Posts --------------------------------------------------------------------------------

    @initialize(target=client_ids, posts=st.lists(
        st.tuples(st.sampled_from(["olivia", "alice", "bob"]), st.booleans()), max_size=8
    ))
    def some_posts(self, posts: list[tuple[str, bool]]) -> Any:
        """A blog with a few posts already (pinned or not), so that steps act on a feed."""
        return multiple(*(
            self.create(author, f"update {number}", key_event=False, pinned=pinned)
            for number, (author, pinned) in enumerate(posts)
        ))

    @rule(target=client_ids, author=st.sampled_from(["olivia", "alice", "bob"]), body=BODIES,
          key_event=st.booleans(), pinned=st.booleans())
    def create(self, author: str, body: str, key_event: bool, pinned: bool) -> uuid.UUID:
        client_id = uuid.uuid4()
        write = lambda: services.post_create(  # noqa: E731
            actor=self.authors[author], blog_id=self.blog_id, client_id=client_id, body=body,
            key_event=key_event, pinned=pinned,
        )
        if refused(body):
            self.expect_refused(Invalid, write)
            return client_id  # never created: later uses of it are plain creates or not found
        written = write()
        assert written.created
        seq = self.took(written)
        assert written.data["body"] == body and written.data["client_id"] == str(client_id)
        self.posts[client_id] = ModelPost(
            id=written.data["id"], client_id=client_id, author=author, body=body,
            pinned=pinned, key_event=key_event, created=(self.epoch, seq, written.data),
        )
        return client_id

    @rule(client_id=client_ids, same_body=st.booleans(), body=BODIES, pinned=st.booleans())
    def retry_create(self, client_id: uuid.UUID, same_body: bool, body: str,
                     pinned: bool) -> None:
        """A phone retrying a create it may or may not have seen answered."""
        post = self.posts.get(client_id)
        if post is None:
            return
        count = Post.objects.count()
        written = services.post_create(
            actor=self.authors[post.author], blog_id=self.blog_id, client_id=client_id,
            body=post.created[2]["body"] if same_body else acceptable(body), pinned=pinned,
        )
        assert not written.created
        epoch, seq, first = post.created
        if epoch == self.epoch:
            assert (written.seq, written.data) == (seq, first)  # the first answer, unchanged
        else:  # the log started over since: the post as it is, without a seq
            assert (written.seq, written.data["id"]) == (None, post.id)
        assert Post.objects.count() == count
        self.sync_feed()

    @rule(client_id=client_ids, editor=st.sampled_from(["olivia", "alice", "bob"]),
          body=st.none() | BODIES, pinned=st.none() | st.booleans(),
          key_event=st.none() | st.booleans())
    def edit(self, client_id: uuid.UUID, editor: str, body: str | None, pinned: bool | None,
             key_event: bool | None) -> None:
        post = self.posts.get(client_id)
        if post is None:
            return
        write = lambda: services.post_update(  # noqa: E731
            actor=self.authors[editor], blog_id=self.blog_id, post_id=post.id, body=body,
            pinned=pinned, key_event=key_event,
        )
        if post.deleted:
            return self.expect_refused(NotFound, write)
        if body is not None and refused(body):
            return self.expect_refused(Invalid, write)
        changes = {
            name: value
            for name, value in (("body", body), ("pinned", pinned), ("key_event", key_event))
            if value is not None and getattr(post, name) != value
        }
        written = write()
        if not changes:
            assert written.seq is None
            return self.sync_feed()
        for name, value in changes.items():
            setattr(post, name, value)
        self.took(written)

    @rule(client_id=client_ids, actor=st.sampled_from(["olivia", "alice", "bob"]))
    def delete(self, client_id: uuid.UUID, actor: str) -> None:
        post = self.posts.get(client_id)
        if post is None:
            return
        write = lambda: services.post_delete(  # noqa: E731
            actor=self.authors[actor], blog_id=self.blog_id, post_id=post.id
        )
        written = write()
        assert written.data == {"id": post.id, "deleted": True}
        if post.deleted:  # again: the first deletion's seq, while its epoch lasts
            epoch, seq = post.deletion
            assert written.seq == (seq if epoch == self.epoch else None)
            return self.sync_feed()
        post.deleted, post.deletion = True, (self.epoch, self.took(written))

    # --- The blog -----------------------------------------------------------------------------

    @rule(actor=st.sampled_from(["olivia", "alice", "sam", "anonymous"]),
          title=st.none() | TITLES, description=st.none() | st.text(max_size=30),
          status=st.none() | st.sampled_from(["live", "ended", "paused"]))
    def update_blog(self, actor: str, title: str | None, description: str | None,
                    status: str | None) -> None:
        write = lambda: services.blog_update(  # noqa: E731
            actor=self.actor(actor), blog_id=self.blog_id, title=title,
            description=description, status=status,
        )
        if actor == "anonymous":
            return self.expect_refused(NotAuthenticated, write)
        if title is not None and (refused(title) or len(title) > 200):
            return self.expect_refused(Invalid, write)
        if description is not None and "\x00" in description:
            return self.expect_refused(Invalid, write)
        if status == "paused":
            return self.expect_refused(Invalid, write)
        if actor != "olivia":  # only the owner (or staff) manages the blog
            return self.expect_refused(NotAllowed, write)
        wanted = {"title": title.strip() if title is not None else None,
                  "description": description, "status": status}
        changes = {name: value for name, value in wanted.items()
                   if value is not None and self.blog[name] != value}
        written = write()
        if not changes:
            assert written.seq is None
            return self.sync_feed()
        self.blog.update(changes)
        self.took(written)
        assert written.data["head"] == self.head  # a blog event carries the head it creates

    @precondition(lambda self: self.head >= 3)  # rarely: a reset forgets everything
    @rule(actor=st.sampled_from(["olivia", "alice", "sam", "anonymous"]))
    def reset_log(self, actor: str) -> None:
        write = lambda: services.blog_log_reset(  # noqa: E731
            actor=self.actor(actor), blog_id=self.blog_id
        )
        if actor != "olivia":
            error = NotAuthenticated if actor == "anonymous" else NotAllowed
            return self.expect_refused(error, write)
        blog = write()
        assert blog.epoch not in self.epochs and blog.head == 0
        self.epoch, self.head = blog.epoch, 0
        self.epochs.append(blog.epoch)
        self.sync_feed()

    # --- Strangers ----------------------------------------------------------------------------

    @rule(actor=st.sampled_from(["sam", "anonymous"]), client_id=st.none() | client_ids,
          action=st.sampled_from(["create", "edit", "delete"]), body=BODIES)
    def stranger_writes(self, actor: str, client_id: uuid.UUID | None, action: str,
                        body: str) -> None:
        """A non-author (or nobody) creating, retrying someone's client_id, editing, deleting:
        refused, and nothing changes (the invariants compare everything to the model)."""
        user = self.actor(actor)
        error = NotAuthenticated if actor == "anonymous" else NotAllowed
        post = self.posts.get(client_id) if client_id is not None else None
        if action == "create" or post is None:
            return self.expect_refused(error, lambda: services.post_create(
                actor=user, blog_id=self.blog_id, client_id=client_id or uuid.uuid4(),
                body=acceptable(body),
            ))
        if action == "edit":
            return self.expect_refused(error, lambda: services.post_update(
                actor=user, blog_id=self.blog_id, post_id=post.id, body=acceptable(body),
                pinned=True,
            ))
        self.expect_refused(error, lambda: services.post_delete(
            actor=user, blog_id=self.blog_id, post_id=post.id
        ))

    # --- Readers reconnecting -----------------------------------------------------------------

    def position(self, data: st.DataObject) -> tuple[int | None, str | None]:
        """Where a reconnecting reader says it is: anywhere it has been, this epoch or an old
        one, with or without the epoch; beyond the head; or nowhere."""
        known = sorted(self.history, key=lambda key: (self.epochs.index(key[0]), key[1]))
        edges = [(since, self.epoch) for since in (self.head - WINDOW, self.head - WINDOW - 1)
                 if since >= 0]
        return data.draw(st.one_of(
            st.sampled_from(edges or [(self.head, self.epoch)]),  # the window's edge
            st.sampled_from(known).flatmap(
                lambda key: st.sampled_from(
                    [(key[1], key[0])] + ([(key[1], None)] if key[0] == self.epoch else [])
                )
            ),
            st.tuples(st.integers(self.head + 1, self.head + 5),
                      st.sampled_from([self.epoch, None])),
            st.just((None, None)),
        ), label="since, epoch")

    def must_start_over(self, since: int | None, epoch: str | None) -> bool:
        return (since is None or (epoch is not None and epoch != self.epoch)
                or since > self.head or self.head - since > WINDOW)

    def check_caught_up(self, since: int | None, epoch: str | None, frames: list[dict]) -> None:
        """A snapshot exactly when the reader must start over, else exactly since+1 … head;
        either way the reader ends where a new reader starts."""
        fresh = self.fresh_state()
        if self.must_start_over(since, epoch):
            assert [frame["type"] for frame in frames] == ["snapshot"], frames
            snapshot = frames[0]
            assert (snapshot["epoch"], snapshot["head"]) == (self.epoch, self.head)
            state = ReaderState.from_snapshot(
                snapshot, self.older_posts(snapshot["next_before"], self.head)
            )
        else:
            assert [frame.get("seq") for frame in frames] == list(range(since + 1, self.head + 1))
            state = copy.deepcopy(self.history[(self.epoch, since)])
            for event in frames:
                state.apply(event)
        assert state == fresh

    @rule(data=st.data(), from_log=st.booleans())
    def reconnect_websocket(self, data: st.DataObject, from_log: bool) -> None:
        """The runtime's catch-up: from the feed's ring, or (as when the ring does not reach
        back) from the log in pages, or a snapshot."""
        since, epoch = self.position(data)
        ring_bypassed = (
            mock.patch.object(self.feed, "replay", return_value=None) if from_log
            else contextlib.nullcontext()
        )
        with ring_bypassed:
            catch_up = CatchUp.plan(
                self.feed, since=since, epoch=epoch, window=WINDOW,
                snapshot=lambda: self.log.snapshot(self.blog_id),
                events=lambda after, upto: self.log.events(
                    self.blog_id, self.feed.epoch, after, upto
                ),
            )
            texts = run_now(collect(catch_up))
        assert (catch_up.epoch, catch_up.head) == (self.epoch, self.head)
        self.check_caught_up(since, epoch, [json.loads(text) for text in texts])

    @rule(data=st.data(), limit=st.integers(1, 4))
    def reconnect_http(self, data: st.DataObject, limit: int) -> None:
        """The events API: pages of at most `limit` events until the head, or a snapshot."""
        since, epoch = self.position(data)
        since = 0 if since is None else since  # the API always takes a since
        frames: list[dict] = []
        at, asked_epoch = since, epoch
        while True:
            page = selectors.events_page(self.blog_id, since=at, epoch=epoch, limit=limit)
            if isinstance(page, selectors.PostsPage):
                assert not frames, "a snapshot after events of this epoch"
                frames.append(protocol.snapshot_json(page))
                break
            assert (page.epoch, page.head) == (self.epoch, self.head)
            events = [json.loads(text) for text in page.frames]
            assert len(events) == min(limit, self.head - at)
            frames += events
            if not events:
                break
            at, epoch = events[-1]["seq"], page.epoch
        self.check_caught_up(since, asked_epoch, frames)

    # --- Invariants ---------------------------------------------------------------------------

    @invariant()
    def log_is_gapless(self) -> None:
        blog = Blog.objects.get(pk=self.blog_id)
        assert (blog.epoch, blog.head) == (self.epoch, self.head)
        rows = list(Event.objects.filter(blog_id=self.blog_id).order_by("seq")
                    .values_list("seq", "kind", "frame"))
        assert [seq for seq, _, _ in rows] == list(range(1, self.head + 1))
        for seq, kind, frame in rows:
            event = json.loads(frame)
            assert (event["type"], event["seq"], event["kind"]) == ("event", seq, kind)

    @invariant()
    def one_post_row_per_client_id(self) -> None:
        assert Post.objects.count() == len(self.posts)

    @invariant()
    def readers_agree_with_each_other_and_the_model(self) -> None:
        page = selectors.blog_snapshot(self.blog_id)
        visible = sorted((p for p in self.posts.values() if not p.deleted), key=lambda p: -p.id)
        # The snapshot: the newest page, then those of the newest pinned posts not on it.
        newest = [post.id for post in visible[:SNAPSHOT_PAGE]]
        pinned = [post.id for post in visible if post.pinned][:selectors.SNAPSHOT_PINNED_MAX]
        pinned = [post_id for post_id in pinned if post_id not in newest]
        assert [post["id"] for post in page.posts] == newest + pinned
        assert page.next_before == (newest[-1] if len(visible) > len(newest) else None)
        # A new reader's state, the live reader's, and the model's.
        fresh = ReaderState.from_snapshot(
            protocol.snapshot_json(page), self.older_posts(page.next_before, page.head)
        )
        assert self.live.state == fresh
        assert fresh.blog == self.blog
        assert list(fresh.posts) == newest + pinned + [post.id for post in visible
                                                       if post.id not in newest + pinned]
        for post in visible:
            shown = fresh.posts[post.id]
            assert (shown["body"], shown["pinned"], shown["key_event"]) == (
                post.body, post.pinned, post.key_event
            )
            assert shown["author"]["username"] == post.author
            assert shown["html"] == render_markdown(post.body)
            assert shown["client_id"] == str(post.client_id)

    @precondition(lambda self: len(self.epochs) > 1)
    @invariant()
    def an_old_epoch_always_gets_a_snapshot(self) -> None:
        old = self.epochs[-2]
        page = selectors.events_page(self.blog_id, since=0, epoch=old, limit=10)
        assert isinstance(page, selectors.PostsPage) and page.epoch == self.epoch


@pytest.mark.django_db
def test_event_log_state_machine(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.LIVEBLOG_REPLAY_WINDOW = WINDOW
    monkeypatch.setattr(catchup, "LOG_PAGE", LOG_PAGE)
    monkeypatch.setattr(log, "in_db_thread", in_this_thread)
    # blog_snapshot asks posts_page for its default page size.
    monkeypatch.setitem(selectors.posts_page.__kwdefaults__, "limit", SNAPSHOT_PAGE)
    run_state_machine_as_test(EventLogMachine)
