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

The desk (issue 17) joins in: contributors submit, editors return (with a note), edit, schedule
and publish, authors revise and withdraw, the scheduler publishes what is due
(`services.submissions_publish_due(now=…)`), and strangers or the wrong people try the same.
Every version of a submission's body and every note carries a unique token (`zs12z`, `zn13z`), so
that after every step:

- no public read (the stored log, a replay from any position through either transport, the
  snapshot and every older page) holds a token that was not published;
- the public log mirrors exactly the published posts (the model above, publications included),
  and each published submission is one post, appended (top of the feed) when it was published;
- each desk log (the editors', and each author's own) is gapless, numbers exactly one event per
  change of one of its submissions, holds only its author's submissions, and a replay from any
  of its positions, applied to the state a desk reader had there, ends in the desk's snapshot.

Each example runs inside a savepoint that is rolled back at its end, so every example starts
from an empty database (the test's own transaction, pytest-django's `django_db`). The runtime's
catch-up is async; its reads are plain functions here (`in_db_thread` runs them in this
thread, inside the savepoint), so it is driven without an event loop.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone
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
from liveblog.errors import (
    Conflict,
    Invalid,
    LiveblogError,
    NotAllowed,
    NotAuthenticated,
    NotFound,
)
from liveblog.live import catchup, log
from liveblog.live.catchup import CatchUp
from liveblog.live.feed import Feed
from liveblog.models import Blog, DeskEvent, DeskStream, Event, Membership, Post, Submission
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
    return [frame.text async for frame in catch_up]


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


# --- The desk's model ----------------------------------------------------------------------------

# A token in a submission's body (one per version) or an editor's note: what the public reads are
# searched for. The closing "z" keeps one from being a prefix of another (zs1z, zs12z).
TOKEN = re.compile(r"z[sn]\d+z")
OPEN = {"submitted", "returned", "scheduled"}
CONTRIBUTORS = ["carol", "dave"]
PUBLISHERS = ["olivia", "alice"]
# Who acts on a submission: mostly whoever may (its author, an editor), now and then someone who
# may not (another contributor, a stranger). "author" stands for the submission's own.
DESK_ACTORS = st.sampled_from(["author", "author", "alice", "olivia", "carol", "sam"])
DECIDERS = st.sampled_from(["alice", "alice", "olivia", "carol", "sam"])
# Hours ahead of the machine's start a post is scheduled at (None: now).
SCHEDULE = st.none() | st.integers(1, 4)


@dataclass
class ModelSubmission:
    id: int
    client_id: uuid.UUID
    author: str
    body: str
    token: str  # of the current body
    pinned: bool
    key_event: bool
    state: str
    note: str = ""
    publish_at: datetime | None = None
    # The first answer to its publication: (epoch, seq, post).
    published: tuple[str, int, dict] | None = None


@dataclass
class DeskReader:
    """A desk client following one desk log: the submissions by id, built only from events."""

    seq: int = 0
    state: dict[int, dict] = field(default_factory=dict)

    def apply(self, seq: int, frame: str) -> None:
        event = json.loads(frame)
        assert (event["type"], event["seq"]) == ("event", seq), event
        assert event["kind"] in ("submission.created", "submission.updated"), event
        submission = event["submission"]
        assert (event["kind"] == "submission.created") == (submission["id"] not in self.state)
        self.state[submission["id"]] = submission
        self.seq = seq


def desk_view(state: dict[int, dict]) -> dict[int, dict]:
    """What a desk shows of the submissions it knows: the open ones and the newest decided."""
    decided = sorted((key for key, row in state.items() if row["state"] not in OPEN),
                     reverse=True)[:selectors.DESK_DECIDED_SHOWN]
    return {key: row for key, row in state.items() if row["state"] in OPEN or key in decided}


class EventLogMachine(RuleBasedStateMachine):
    client_ids = Bundle("client_ids")
    submissions = Bundle("submissions")

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
        # The desk: two contributors, their submissions and every token ever written.
        for name in CONTRIBUTORS:
            user = users.create(username=name)
            Membership.objects.create(blog=blog, user=user, role=Membership.Role.CONTRIBUTOR)
            self.authors[name] = user
        self.start = timezone.now()
        self.subs: dict[uuid.UUID, ModelSubmission] = {}
        self.tokens = 0
        self.hidden: set[str] = set()
        self.public_tokens: set[str] = set()
        # Each desk log's head as the model counts it, and a desk reader following each.
        self.desk_heads: dict[str, int] = {}
        self.desk_readers: dict[str, DeskReader] = {}
        self.desk_history: dict[tuple[str, int], dict[int, dict]] = {}
        self.desk_checked: dict[str, int] = {}
        self.desk_snapshots: dict[tuple[str, int], dict[int, dict]] = {}
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
        older = self.older_posts(page.next_before, page.head)
        self.assert_public(json.dumps([frame, older]), "the snapshot and older pages")
        return ReaderState.from_snapshot(frame, older)

    def assert_public(self, text: str, where: str) -> None:
        """No token of anything unpublished in a public answer."""
        shown = set(TOKEN.findall(text))
        assert shown <= self.public_tokens, (
            f"{where} shows unpublished {sorted(shown - self.public_tokens)}"
        )

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

    # --- The desk -----------------------------------------------------------------------------

    def token(self, kind: str) -> str:
        """A new token ("s" a body version, "n" a note); hidden until published."""
        self.tokens += 1
        token = f"z{kind}{self.tokens}z"
        self.hidden.add(token)
        return token

    def desk_body(self, body: str) -> tuple[str, str]:
        token = self.token("s")
        return f"{acceptable(body)} {token}", token

    def at(self, hours: int | None) -> datetime | None:
        return None if hours is None else self.start + timedelta(hours=hours)

    def numbered(self, sub: ModelSubmission) -> None:
        """A change of `sub`: one event in the editors' log and one in its author's."""
        for audience in ("editors", f"user:{self.authors[sub.author].pk}"):
            self.desk_heads[audience] = self.desk_heads.get(audience, 0) + 1

    def user(self, name: str) -> Any:
        return self.authors.get(name, self.stranger)

    def role(self, name: str) -> str | None:
        if name == "olivia":
            return "owner"
        return {"alice": "editor", "bob": "editor", "carol": "contributor",
                "dave": "contributor"}.get(name)

    def desk_refused(self, error: type[LiveblogError], write: Callable[[], Any]) -> None:
        """Refused: nothing public and nothing on the desk changes (the invariants compare
        every desk log's head with the model's count)."""
        self.expect_refused(error, write)

    def check_submission(self, data: dict, sub: ModelSubmission) -> None:
        assert (data["id"], data["client_id"], data["author"]["username"]) == (
            sub.id, str(sub.client_id), sub.author
        )
        assert (data["state"], data["body"], data["pinned"], data["key_event"]) == (
            sub.state, sub.body, sub.pinned, sub.key_event
        ), (data, sub)
        assert data["note"] == sub.note
        if sub.state == "scheduled":
            assert data["publish_at"] == protocol.iso(sub.publish_at)

    def published_now(self, sub: ModelSubmission, written: services.Written,
                      since: datetime) -> None:
        """The submission became a post: appended at this moment, at the top of the feed."""
        assert written.created and not written.desk, written
        data = written.data
        assert (data["client_id"], data["author"]["username"], data["body"]) == (
            str(sub.client_id), sub.author, sub.body
        )
        # Made now, so above every post before it: the top of the feed.
        assert all(data["id"] > post.id for post in self.posts.values())
        assert since <= datetime.fromisoformat(data["created_at"]) + timedelta(milliseconds=1)
        seq = self.took(written)
        sub.state, sub.note, sub.published = "published", "", (self.epoch, seq, data)
        self.public_tokens.add(sub.token)
        self.hidden.discard(sub.token)
        self.posts[sub.client_id] = ModelPost(
            id=data["id"], client_id=sub.client_id, author=sub.author, body=sub.body,
            pinned=sub.pinned, key_event=sub.key_event, created=(self.epoch, seq, data),
        )
        self.numbered(sub)

    @initialize(target=submissions, plan=st.lists(st.tuples(
        st.sampled_from(CONTRIBUTORS),
        st.sampled_from(["wait", "send_back", "withdraw", "publish", "schedule"]),
    ), max_size=3))
    def some_submissions(self, plan: list[tuple[str, str]]) -> Any:
        """A desk with a few submissions already, each left waiting, returned, withdrawn,
        published or scheduled, so that steps act on a desk in every state."""
        client_ids = []
        for number, (author, fate) in enumerate(plan):
            client_id = self.submit(author, f"draft {number}", key_event=False, pinned=False)
            client_ids.append(client_id)
            if fate == "send_back":
                self.send_back(client_id, "alice")
            elif fate == "withdraw":
                self.withdraw(client_id, "author")
            elif fate in ("publish", "schedule"):
                hours = number % 4 + 1 if fate == "schedule" else None
                self.publish(client_id, "olivia", body=None, key_event=None, hours=hours)
        return multiple(*client_ids)

    @rule(target=submissions, author=st.sampled_from(CONTRIBUTORS), body=BODIES,
          key_event=st.booleans(), pinned=st.booleans())
    def submit(self, author: str, body: str, key_event: bool, pinned: bool) -> uuid.UUID:
        """A contributor submits a post: it waits on the desk, with no public seq."""
        return self.new_submission(author, body, key_event, pinned, hours=None)

    @rule(target=submissions, author=st.sampled_from(PUBLISHERS + ["carol"]), body=BODIES,
          hours=st.integers(1, 4))
    def schedule(self, author: str, body: str, hours: int) -> Any:
        """An editor schedules a post (publish_at); a contributor may not."""
        if author in CONTRIBUTORS:
            client_id = uuid.uuid4()
            self.desk_refused(NotAllowed, lambda: services.post_create(
                actor=self.authors[author], blog_id=self.blog_id, client_id=client_id,
                body=self.desk_body(body)[0], publish_at=self.at(hours),
            ))
            return multiple()
        return self.new_submission(author, body, False, False, hours=hours)

    def new_submission(self, author: str, body: str, key_event: bool, pinned: bool,
                       hours: int | None) -> uuid.UUID:
        client_id, (text, token) = uuid.uuid4(), self.desk_body(body)
        written = services.post_create(
            actor=self.authors[author], blog_id=self.blog_id, client_id=client_id, body=text,
            key_event=key_event, pinned=pinned, publish_at=self.at(hours),
        )
        assert (written.seq, written.created, written.desk) == (None, True, True), written
        sub = ModelSubmission(
            id=written.data["id"], client_id=client_id, author=author, body=text, token=token,
            pinned=pinned, key_event=key_event,
            state="scheduled" if hours else "submitted", publish_at=self.at(hours),
        )
        self.check_submission(written.data, sub)
        self.subs[client_id] = sub
        self.numbered(sub)
        self.sync_feed()
        return client_id

    @rule(client_id=submissions, body=BODIES)
    def retry_submit(self, client_id: uuid.UUID, body: str) -> None:
        """Its author's phone sends it again: the submission as it is now (or the post it
        became), nothing new."""
        sub = self.subs[client_id]
        written = services.post_create(
            actor=self.authors[sub.author], blog_id=self.blog_id, client_id=client_id,
            body=acceptable(body),
        )
        assert not written.created
        if sub.published is None:
            assert (written.seq, written.desk) == (None, True)
            self.check_submission(written.data, sub)
        elif sub.published[0] == self.epoch:
            assert (written.seq, written.data) == sub.published[1:]
        else:
            assert (written.seq, written.data["id"]) == (None, sub.published[2]["id"])
        self.sync_feed()

    @rule(client_id=submissions, actor=DESK_ACTORS, body=st.none() | BODIES,
          key_event=st.none() | st.booleans(), pinned=st.none() | st.booleans())
    def revise(self, client_id: uuid.UUID, actor: str, body: str | None,
               key_event: bool | None, pinned: bool | None) -> None:
        sub = self.subs[client_id]
        actor = sub.author if actor == "author" else actor
        text, token = self.desk_body(body) if body is not None else (None, None)
        write = lambda: services.submission_revise(  # noqa: E731
            actor=self.user(actor), blog_id=self.blog_id,
            submission_id=sub.id, body=text, key_event=key_event, pinned=pinned,
        )
        editing = self.role(actor) in ("owner", "editor")
        if not editing and actor != sub.author:
            return self.desk_refused(NotAllowed, write)
        allowed = OPEN if editing else {"submitted", "returned"}
        if sub.state not in allowed:
            return self.desk_refused(Conflict, write)
        changes = {name: value for name, value in
                   (("body", text), ("key_event", key_event), ("pinned", pinned))
                   if value is not None and getattr(sub, name) != value}
        resubmitted = not editing and sub.state == "returned"
        written = write()
        assert written.seq is None and written.desk
        for name, value in changes.items():
            setattr(sub, name, value)
        if text is not None:
            sub.token = token
        if resubmitted:
            sub.state, sub.note = "submitted", ""
        if changes or resubmitted:
            self.numbered(sub)
        self.check_submission(written.data, sub)
        self.sync_feed()

    @rule(client_id=submissions, actor=DESK_ACTORS)
    def withdraw(self, client_id: uuid.UUID, actor: str) -> None:
        sub = self.subs[client_id]
        actor = sub.author if actor == "author" else actor
        write = lambda: services.submission_withdraw(  # noqa: E731
            actor=self.user(actor), blog_id=self.blog_id,
            submission_id=sub.id,
        )
        editing = self.role(actor) in ("owner", "editor")
        if not editing and actor != sub.author:
            return self.desk_refused(NotAllowed, write)
        if sub.state == "withdrawn":  # again: nothing changes
            self.check_submission(write().data, sub)
            return self.sync_feed()
        if sub.state not in (OPEN if editing else {"submitted", "returned"}):
            return self.desk_refused(Conflict, write)
        written = write()
        sub.state, sub.publish_at = "withdrawn", None
        self.numbered(sub)
        self.check_submission(written.data, sub)
        self.sync_feed()

    @rule(client_id=submissions, actor=DECIDERS)
    def send_back(self, client_id: uuid.UUID, actor: str) -> None:
        """An editor returns it to its author with a note."""
        sub = self.subs[client_id]
        note = f"Check this: {self.token('n')}"
        write = lambda: services.submission_return(  # noqa: E731
            actor=self.user(actor), blog_id=self.blog_id,
            submission_id=sub.id, note=note,
        )
        if self.role(actor) not in ("owner", "editor"):
            return self.desk_refused(NotAllowed, write)
        if sub.state not in ("submitted", "scheduled"):
            return self.desk_refused(Conflict, write)
        written = write()
        sub.state, sub.note, sub.publish_at = "returned", note, None
        self.numbered(sub)
        self.check_submission(written.data, sub)
        self.sync_feed()

    @rule(client_id=submissions, actor=DECIDERS, body=st.none() | BODIES,
          key_event=st.none() | st.booleans(), hours=SCHEDULE)
    def publish(self, client_id: uuid.UUID, actor: str, body: str | None,
                key_event: bool | None, hours: int | None) -> None:
        """An editor publishes it now (editing it first, or not), or schedules it."""
        sub, since = self.subs[client_id], timezone.now()
        text, token = self.desk_body(body) if body is not None else (None, None)
        write = lambda: services.submission_publish(  # noqa: E731
            actor=self.user(actor), blog_id=self.blog_id,
            submission_id=sub.id, body=text, key_event=key_event, publish_at=self.at(hours),
        )
        if self.role(actor) not in ("owner", "editor"):
            return self.desk_refused(NotAllowed, write)
        if sub.state == "published":  # a double tap: the first answer, nothing new
            written = write()
            epoch, seq, first = sub.published
            if epoch == self.epoch:
                assert (written.seq, written.data) == (seq, first)
            else:
                assert (written.seq, written.data["id"]) == (None, first["id"])
            return self.sync_feed()
        if sub.state not in OPEN:
            return self.desk_refused(Conflict, write)
        written = write()
        if text is not None:
            sub.body, sub.token = text, token
        if key_event is not None:
            sub.key_event = key_event
        if hours is None:
            return self.published_now(sub, written, since)
        assert (written.seq, written.desk) == (None, True)
        sub.state, sub.note, sub.publish_at = "scheduled", "", self.at(hours)
        self.numbered(sub)
        self.check_submission(written.data, sub)
        self.sync_feed()

    @rule(hours=st.integers(0, 5))
    def scheduler(self, hours: int) -> None:
        """The scheduler's pass at `start + hours` (and a minute): every scheduled submission
        due by then, oldest time first, each appended at this moment."""
        now, since = self.start + timedelta(hours=hours, minutes=1), timezone.now()
        due = sorted((sub for sub in self.subs.values()
                      if sub.state == "scheduled" and sub.publish_at <= now),
                     key=lambda sub: (sub.publish_at, sub.id))
        published = services.submissions_publish_due(now=now)
        assert len(published) == len(due)
        for sub, written in zip(due, published, strict=True):
            self.published_now(sub, written, since)
        self.sync_feed()

    @rule(data=st.data())
    def reconnect_desk(self, data: st.DataObject) -> None:
        """A desk client reconnecting to one desk log from a position it had: the log's events
        since then, applied to its state there, give the desk's snapshot."""
        self.sync_desk()
        if not self.desk_readers:
            return
        audience = data.draw(st.sampled_from(sorted(self.desk_readers)), label="desk log")
        head = self.desk_readers[audience].seq
        since = data.draw(st.integers(0, head), label="since")
        stream = DeskStream.objects.get(blog_id=self.blog_id, audience=audience)
        reader = DeskReader(since, dict(self.desk_history[(audience, since)]))
        for seq, frame in selectors.desk_events_range(stream.pk, stream.epoch, since, head):
            reader.apply(seq, frame)
        assert reader.seq == head
        assert desk_view(reader.state) == self.desk_snapshot(audience)

    def desk_snapshot(self, audience: str) -> dict[int, dict]:
        """The desk's snapshot of a log, read once per position of that log (a change that was
        not numbered would not show here, but in `the_desk_is_the_model`, after every step)."""
        head = self.desk_heads.get(audience, 0)
        if (audience, head) not in self.desk_snapshots:
            snapshot = selectors.desk_snapshot(self.blog_id, audience)
            assert snapshot.head == head
            self.desk_snapshots[(audience, head)] = {
                row["id"]: row for row in snapshot.submissions
            }
        return self.desk_snapshots[(audience, head)]

    def sync_desk(self) -> bool:
        """Each desk log's new events to the desk reader following it (a log appears with the
        first submission of its audience); True if any log moved."""
        streams = DeskStream.objects.filter(blog_id=self.blog_id).values_list(
            "pk", "audience", "epoch", "head"
        )
        moved = False
        for stream_id, audience, epoch, head in streams:
            assert head == self.desk_heads.get(audience, 0), (audience, head, self.desk_heads)
            reader = self.desk_readers.setdefault(audience, DeskReader())
            self.desk_history.setdefault((audience, 0), {})
            if head == reader.seq:
                continue
            moved = True
            for seq, frame in selectors.desk_events_range(stream_id, epoch, reader.seq, head):
                reader.apply(seq, frame)
                # A shallow copy is enough: an event replaces a submission, never changes one.
                self.desk_history[(audience, seq)] = dict(reader.state)
            assert reader.seq == head
        return moved

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
        self.assert_public(json.dumps(frames), f"a catch-up from {since}")
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
        self.assert_public("".join(frame for _, _, frame in rows), "the stored log")
        created = Counter()
        for seq, kind, frame in rows:
            event = json.loads(frame)
            assert (event["type"], event["seq"], event["kind"]) == ("event", seq, kind)
            if kind == "post.created":
                created[event["post"]["id"]] += 1
        # Each post was created once; a published submission's while its log lasts.
        assert set(created.values()) <= {1}
        for sub in self.subs.values():
            if sub.published:
                published_here = sub.published[0] == self.epoch
                assert created[sub.published[2]["id"]] == (1 if published_here else 0)

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

    @invariant()
    def desk_logs_are_gapless_and_each_holds_its_own(self) -> None:
        """Every desk log numbers 1..head with no gap, its head is the model's count of changes,
        an author's log holds only that author's submissions, the editors' log every one, and
        the state a desk reader built from events is the desk's snapshot."""
        events = DeskEvent.objects.filter(stream__blog_id=self.blog_id)
        if not self.sync_desk():  # no log moved: and no event was added without moving one
            assert events.count() == sum(self.desk_heads.values())
            return
        rows = events.order_by(
            "stream_id", "seq"
        ).values_list("stream__audience", "seq", "submission__author_id")
        seqs: dict[str, list[int]] = {}
        for audience, seq, author_id in rows:
            seqs.setdefault(audience, []).append(seq)
            assert audience in ("editors", f"user:{author_id}"), (audience, author_id)
        assert {audience: len(found) for audience, found in seqs.items()} == self.desk_heads
        for audience, found in seqs.items():
            assert found == list(range(1, len(found) + 1)), (audience, found)
        names = {user.pk: name for name, user in self.authors.items()}
        for audience, reader in self.desk_readers.items():
            # The editors' log (every submission) each time it moved; an author's own log
            # when a desk client reconnects to it (`reconnect_desk`).
            if audience == "editors" and self.desk_checked.get(audience) != reader.seq:
                assert desk_view(reader.state) == self.desk_snapshot(audience), audience
                self.desk_checked[audience] = reader.seq
            if audience != "editors":
                author = names[int(audience.removeprefix("user:"))]
                assert {row["author"]["username"] for row in reader.state.values()} == {author}
        editors = self.desk_readers.get("editors", DeskReader())
        assert set(editors.state) == {sub.id for sub in self.subs.values()}
        for sub in self.subs.values():
            self.check_submission(editors.state[sub.id], sub)

    @invariant()
    def the_desk_is_the_model(self) -> None:
        """Every submission as stored is the model's (after every step, whether a desk log moved
        or not: a change that was not numbered shows here), and a published one is linked to
        its one post; an unpublished one to none."""
        rows = Submission.objects.filter(blog_id=self.blog_id).values_list(
            "client_id", "state", "body", "note", "pinned", "key_event", "post_id"
        )
        stored = {row[0]: row[1:] for row in rows}
        assert stored == {
            sub.client_id: (sub.state, sub.body, sub.note, sub.pinned, sub.key_event,
                            sub.published[2]["id"] if sub.published else None)
            for sub in self.subs.values()
        }

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
