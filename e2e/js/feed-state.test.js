// FeedState (static/liveblog/feed-state.js): the feed as data, events applied strictly in order.

import { FeedState } from "/static/liveblog/feed-state.js";
import { assert, test } from "./testing.js";
import { BLOG, blogUpdated, created, deleted, post, snapshot, updated } from "./frames.js";

function stateFrom(first = null) {
  const state = new FeedState();
  if (first) state.applySnapshot(first);
  return state;
}

/** A copy of everything a test looks at, so a later change cannot alter what was taken. */
function view(state) {
  return structuredClone({
    epoch: state.epoch, seq: state.seq, blog: state.blog, nextBefore: state.nextBefore,
    ids: state.sorted().map((p) => p.id),
    posts: Object.fromEntries(state.posts),
    keyEvents: state.keyEvents().map((p) => p.id),
  });
}

function results(state, ...frames) {
  return frames.map((frame) => state.applyEvent(frame).result);
}

test("a snapshot replaces the whole state", () => {
  const fresh = stateFrom();
  assert.equal(view(fresh).seq, null);
  assert.deepEqual(fresh.applyEvent(created(1)), { result: "no-base" }, "an event without a base applied");
  assert.deepEqual(view(fresh).ids, []);

  const state = stateFrom(snapshot("E1", 9, [post(9), post(8), post(7), post(2, { pinned: true })], { nextBefore: 7 }));
  state.applyEvent(created(10, 10));
  state.addOlder({ posts: [post(6), post(5)], next_before: 5 });
  const before = view(state);
  assert.deepEqual([before.epoch, before.seq, before.nextBefore], ["E1", 10, 5]);
  assert.deepEqual(before.ids, [2, 10, 9, 8, 7, 6, 5]);

  const otherBlog = { ...BLOG, title: "Replayed from a backup" };
  state.applySnapshot(snapshot("E2", 3, [post(3), post(1)], { blog: otherBlog }));
  const after = view(state);
  assert.deepEqual([after.epoch, after.seq, after.nextBefore], ["E2", 3, null]);
  assert.deepEqual(after.ids, [3, 1], "posts of the old state survived the snapshot");
  assert.deepEqual(after.blog, otherBlog);

  // A snapshot without `blog` (the posts page shape) keeps the blog; next_before is taken over.
  state.applySnapshot({ epoch: "E2", head: 4, posts: [post(4)], next_before: 4 });
  assert.deepEqual(view(state).blog, otherBlog);
  assert.equal(view(state).nextBefore, 4);
  assert.deepEqual(results(state, created(5)), ["applied"], "events do not continue from the new head");
});

test("the next seq applies and reports its change", () => {
  const state = stateFrom(snapshot("E1", 3, [post(3)]));
  const answer = state.applyEvent(created(4, 4));
  assert.deepEqual(answer, { result: "applied", change: { kind: "upsert", post: post(4), fresh: true } });
  assert.equal(view(state).seq, 4);
  assert.deepEqual(view(state).ids, [4, 3]);

  // A create for a post that is already shown is not fresh (nothing new to announce).
  const again = state.applyEvent(created(5, 4, { html: "<p>edited</p>" }));
  assert.equal(again.change.fresh, false);
  assert.equal(view(state).posts[4].html, "<p>edited</p>");

  // A snapshot at head 0 (a new epoch) is a base: seq 1 applies.
  state.applySnapshot(snapshot("E2", 0, []));
  assert.deepEqual(results(state, created(1)), ["applied"]);
});

test("duplicates are ignored and change nothing", () => {
  const state = stateFrom(snapshot("E1", 0, []));
  assert.deepEqual(
    results(state, created(1, 1), created(2, 2), updated(3, 1, { pinned: true }), created(4, 4), created(5, 5)),
    Array(5).fill("applied"),
  );
  const before = view(state);

  // Replays of what was already applied — a deletion and an edit among them must not act.
  const replay = [deleted(5, 5), updated(4, 4, { html: "<p>stale</p>" }), created(1, 1),
    blogUpdated(2, { title: "stale" }), deleted(3, 1)];
  assert.deepEqual(replay.map((frame) => state.applyEvent(frame)), Array(5).fill({ result: "duplicate" }));
  // A replay overlapping live delivery: 3, 4, 5 came live already, then again in the replay.
  assert.deepEqual(results(state, created(3, 3), created(4, 4), created(5, 5)), Array(3).fill("duplicate"));
  assert.deepEqual(view(state), before);

  assert.deepEqual(results(state, created(6, 6)), ["applied"]);
  assert.equal(view(state).seq, 6);
});

test("a gap is never applied", () => {
  const state = stateFrom(snapshot("E1", 3, [post(3)]));
  const before = view(state);
  assert.deepEqual(state.applyEvent(created(5, 50)), { result: "gap" });
  assert.deepEqual(state.applyEvent(deleted(7, 3)), { result: "gap" });
  assert.deepEqual(state.applyEvent(blogUpdated(9, { title: "later" })), { result: "gap" });
  assert.deepEqual(view(state), before, "a frame beyond last + 1 changed the state");
  assert.deepEqual(results(state, created(4, 40)), ["applied"]);
  assert.deepEqual(view(state).ids, [40, 3]);
});

test("out-of-order frames apply only in order", () => {
  const state = stateFrom(snapshot("E1", 3, []));
  // 5 and 6 arrive around 4: only 4 is next; 6 is a gap once 5 was refused.
  assert.deepEqual(results(state, created(5), created(4), created(6)), ["gap", "applied", "gap"]);
  assert.equal(view(state).seq, 4);
  assert.deepEqual(view(state).ids, [104]);
  // The resent run fills in, in order.
  assert.deepEqual(results(state, created(4), created(5), created(6)), ["duplicate", "applied", "applied"]);
  assert.deepEqual(view(state).ids, [106, 105, 104]);
});

test("updates, deletes and blog changes", () => {
  const state = stateFrom(snapshot("E1", 2, [post(2), post(1)]));

  const edit = state.applyEvent(updated(3, 1, { html: "<p>corrected</p>", key_event: true }));
  assert.equal(edit.result, "applied");
  assert.deepEqual(edit.change, {
    kind: "upsert", fresh: false, post: post(1, { html: "<p>corrected</p>", key_event: true }),
  });
  assert.equal(view(state).posts[1].html, "<p>corrected</p>");

  const pin = state.applyEvent(updated(4, 1, { pinned: true }));
  assert.equal(pin.change.kind, "upsert");
  assert.deepEqual(view(state).ids, [1, 2], "a pinned post is not shown first");

  const gone = state.applyEvent(deleted(5, 2));
  assert.deepEqual(gone, { result: "applied", change: { kind: "remove", id: 2 } });
  assert.deepEqual(view(state).ids, [1]);

  const renamed = { ...BLOG, title: "Final whistle", status: "ended" };
  const change = state.applyEvent(blogUpdated(6, { title: "Final whistle", status: "ended" }));
  assert.deepEqual(change, { result: "applied", change: { kind: "blog", blog: renamed } });
  assert.deepEqual(view(state).blog, renamed);

  // A kind this client does not know still moves the seq on (the log stays gapless).
  assert.deepEqual(state.applyEvent({ type: "event", seq: 7, kind: "poll.created" }),
    { result: "applied", change: { kind: "none" } });
  assert.equal(view(state).seq, 7);
  assert.deepEqual(results(state, created(8)), ["applied"]);
});

test("updates below the loaded range", () => {
  // Posts 20…25 are loaded; older ones (below next_before = 20) are not, except pinned ones.
  const loaded = [25, 24, 23, 22, 21, 20].map((id) => post(id));
  const state = stateFrom(snapshot("E1", 10, loaded, { nextBefore: 20 }));

  const oldEdit = state.applyEvent(updated(11, 5, { html: "<p>edited long ago</p>" }));
  assert.deepEqual(oldEdit, { result: "applied", change: { kind: "none" } });
  assert.ok(!view(state).ids.includes(5), "an edit pulled an unloaded old post into the feed");
  assert.equal(view(state).seq, 11);

  const pinned = state.applyEvent(updated(12, 6, { pinned: true }));
  assert.deepEqual(pinned.change, { kind: "upsert", post: post(6, { pinned: true }), fresh: false });
  assert.equal(view(state).ids[0], 6, "a pinned old post is not shown on top");

  // Unpinned again: it goes back below the loaded range, so it leaves the feed.
  const unpinned = state.applyEvent(updated(13, 6, { pinned: false }));
  assert.deepEqual(unpinned.change, { kind: "remove", id: 6 });
  assert.ok(!view(state).ids.includes(6));

  // The oldest loaded post (id == next_before) is inside the range.
  const edge = state.applyEvent(updated(14, 20, { html: "<p>edge</p>" }));
  assert.equal(edge.change.kind, "upsert");
  assert.equal(view(state).posts[20].html, "<p>edge</p>");
});

test("addOlder ignores posts already present", () => {
  const state = stateFrom(snapshot("E1", 5, [post(22), post(21), post(20), post(3, { pinned: true })], { nextBefore: 20 }));
  state.applyEvent(updated(6, 3, { pinned: true, html: "<p>live edit</p>" }));

  const added = state.addOlder({ posts: [post(19), post(18), post(3, { pinned: true })], next_before: 18 });
  assert.deepEqual(added.map((p) => p.id), [19, 18]);
  const seen = view(state);
  assert.deepEqual(seen.ids, [3, 22, 21, 20, 19, 18]);
  assert.equal(seen.posts[3].html, "<p>live edit</p>", "an older page overwrote a post");
  assert.equal(seen.nextBefore, 18);
  assert.equal(state.inLoadedRange(post(18)), true);
  assert.equal(state.inLoadedRange(post(17)), false);
  assert.equal(state.inLoadedRange(post(1, { pinned: true })), true);

  assert.deepEqual(state.addOlder({ posts: [post(18), post(17)], next_before: null }), [post(17)]);
  assert.equal(view(state).nextBefore, null);
  assert.equal(state.inLoadedRange(post(1)), true);
});

test("sorted puts pinned posts first, then the newest", () => {
  const posts = [post(3, { pinned: true }), post(10), post(1), post(7, { pinned: true }), post(12), post(5)];
  const state = stateFrom(snapshot("E1", 1, posts));
  assert.deepEqual(view(state).ids, [7, 3, 12, 10, 5, 1]);
  state.applyEvent(updated(2, 12, { pinned: true }));
  assert.deepEqual(view(state).ids, [12, 7, 3, 10, 5, 1]);
  state.applyEvent(updated(3, 7, { pinned: false }));
  assert.deepEqual(view(state).ids, [12, 3, 10, 7, 5, 1]);
});

test("key events are the flagged posts, newest first", () => {
  const posts = [post(2, { key_event: true }), post(9), post(4, { key_event: true, pinned: true }),
    post(7, { key_event: true })];
  const state = stateFrom(snapshot("E1", 1, posts));
  assert.deepEqual(view(state).keyEvents, [7, 4, 2]);
  state.applyEvent(updated(2, 9, { key_event: true }));
  state.applyEvent(deleted(3, 4));
  state.applyEvent(updated(4, 2, { key_event: false }));
  assert.deepEqual(view(state).keyEvents, [9, 7]);
});
