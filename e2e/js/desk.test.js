// The desk client: DeskState (static/liveblog/desk-state.js) as pure data, and the desk's
// FeedConnection (desk.js's close codes) with the fake socket and manual clock of
// e2e/client_harness.js: replay by seq, duplicates, gaps, 4409 (start over without since),
// 4403 (stop), and the view's small pure helpers.

import { FakeSocket, ManualClock } from "../client_harness.js";
import { assert, test } from "./testing.js";
import { FeedConnection } from "/static/liveblog/feed-connection.js";
import { DECIDED_KEPT, DeskState, actionsFor } from "/static/liveblog/desk-state.js";
import { deskCloseAction, deskRequest } from "/static/liveblog/desk.js";
import {
  countedTitle, deskPhotoUrl, isoFromLocal, localInputValue,
} from "/static/liveblog/desk-view.js";
import { hello, live, ping } from "./frames.js";

const AT = "2026-12-01T10:00:00Z";

function submission(id, state = "submitted", fields = {}) {
  return {
    id, client_id: `s-${id}`, author: { username: "carlos", name: "Carlos" },
    body: `submission ${id}`, html: `<p>submission ${id}</p>`, created_at: AT, updated_at: AT,
    pinned: false, key_event: false, photo: null, state, note: "", publish_at: null,
    post_id: null, seq: null, history: [], ...fields,
  };
}

function deskSnapshot(epoch, head, submissions) {
  return { type: "snapshot", epoch, head, submissions };
}

function event(seq, item, kind = "submission.updated") {
  return { type: "event", seq, kind, at: AT, submission: item };
}

function createdEvent(seq, item) {
  return event(seq, item, "submission.created");
}

// --- DeskState ---------------------------------------------------------------------------------

test("events apply once each, in seq order; a gap is never applied", () => {
  const state = new DeskState();
  assert.equal(state.applyEvent(createdEvent(1, submission(1))).result, "no-base");
  state.applySnapshot(deskSnapshot("D1", 2, [submission(1), submission(2, "returned")]));
  assert.deepEqual([state.epoch, state.seq, state.waiting()], ["D1", 2, 1]);

  const fresh = state.applyEvent(createdEvent(3, submission(3)));
  assert.equal(fresh.result, "applied");
  assert.deepEqual([fresh.change.fresh, fresh.change.previous], [true, null]);
  assert.equal(state.applyEvent(createdEvent(3, submission(3))).result, "duplicate");
  assert.equal(state.applyEvent(createdEvent(2, submission(3))).result, "duplicate");
  assert.equal(state.applyEvent(event(5, submission(1, "published"))).result, "gap");
  assert.equal(state.submissions.get(1).state, "submitted", "a gap was applied");

  const returned = state.applyEvent(event(4, submission(2, "submitted", { body: "revised" })));
  assert.equal(returned.change.previous.state, "returned");
  assert.equal(returned.change.fresh, false);
  assert.deepEqual([state.seq, state.waiting()], [4, 3]);
  assert.deepEqual(state.open().map((item) => item.id), [1, 2, 3], "the queue is oldest first");
});

test("a replayed creation of a known submission is an update, not a new one", () => {
  const state = new DeskState();
  state.applySnapshot(deskSnapshot("D1", 1, [submission(7)]));
  const { change } = state.applyEvent(createdEvent(2, submission(7)));
  assert.equal(change.fresh, false);
  assert.equal(state.submissions.size, 1);
});

test("a snapshot replaces everything, and decided ones are bounded", () => {
  const state = new DeskState();
  state.applySnapshot(deskSnapshot("D1", 1, [submission(1)]));
  state.applySnapshot(deskSnapshot("D2", 0, []));
  assert.deepEqual([state.epoch, state.seq, state.submissions.size], ["D2", 0, 0]);

  for (let id = 1; id <= DECIDED_KEPT + 5; id += 1) {
    state.applyEvent(createdEvent(id, submission(id, "published", { post_id: id, seq: id })));
  }
  state.applyEvent(createdEvent(DECIDED_KEPT + 6, submission(100)));
  const decided = state.decided().map((item) => item.id);
  assert.equal(decided.length, DECIDED_KEPT);
  assert.equal(decided[0], DECIDED_KEPT + 5, "decided ones are newest first");
  assert.deepEqual(state.open().map((item) => item.id), [100], "an open one was dropped");
  assert.deepEqual(state.newestFirst().slice(0, 2).map((item) => item.id), [100, DECIDED_KEPT + 5]);
});

test("who may do what with a submission", () => {
  const editor = (state) => actionsFor("editor", submission(1, state));
  assert.deepEqual(editor("submitted"), ["publish", "edit", "return", "schedule"]);
  assert.deepEqual(editor("scheduled"), ["publish", "edit", "return", "schedule"]);
  assert.deepEqual(editor("returned"), ["publish", "edit", "schedule"]);
  assert.deepEqual(editor("published"), []);
  assert.deepEqual(editor("withdrawn"), []);
  assert.deepEqual(actionsFor("owner", submission(1)), editor("submitted"));
  const author = (state) => actionsFor("contributor", submission(1, state));
  assert.deepEqual(author("submitted"), ["revise", "withdraw"]);
  assert.deepEqual(author("returned"), ["revise", "withdraw"]);
  assert.deepEqual([author("scheduled"), author("published"), author("withdrawn")], [[], [], []]);
});

// --- The desk's connection -------------------------------------------------------------------------

function deskClient(snapshot = null) {
  const clock = new ManualClock();
  const state = new DeskState();
  if (snapshot) state.applySnapshot(snapshot);
  const t = { clock, state, sockets: [], states: [], changes: [], resets: 0, hellos: [] };
  t.connection = new FeedConnection({
    slug: "match",
    state,
    url: "ws://client.test/ws/desk/match/",
    onReset: () => { t.resets += 1; },
    onChange: (change) => { t.changes.push(change); },
    onState: (status) => { t.states.push(status); },
    onHello: (frame) => { t.hellos.push(frame); },
    closeAction: deskCloseAction,
    createSocket: (address) => {
      const socket = new FakeSocket(address);
      t.sockets.push(socket);
      return socket;
    },
    timers: clock,
    random: () => 1,
    isOnline: () => true,
  });
  t.deliver = (...frames) => { for (const frame of frames) t.sockets.at(-1).deliver(frame); };
  return t;
}

function deskHello(head, { epoch = "D1", role = "editor" } = {}) {
  return { ...hello({ head, epoch, heartbeat: 15 }), role };
}

test("a dropped desk reconnects with since and applies the replay once", () => {
  const t = deskClient();
  t.connection.connect();
  assert.equal(t.sockets[0].url, "ws://client.test/ws/desk/match/", "the first connect sent since");
  t.deliver(deskHello(1), deskSnapshot("D1", 1, [submission(1)]), live(1));
  assert.deepEqual([t.resets, t.hellos.length, t.states.at(-1)], [1, 1, "live"]);

  t.sockets[0].fail();
  t.clock.advance(500);
  assert.equal(t.sockets[1].url, "ws://client.test/ws/desk/match/?since=1&epoch=D1");
  // The replay, then the same events again live (a second process's copy): applied once each.
  t.deliver(deskHello(3), createdEvent(2, submission(2)), event(3, submission(2, "returned")),
    live(3), createdEvent(2, submission(2)), event(3, submission(2, "returned")));
  assert.deepEqual(t.changes.map((change) => change.submission.id), [2, 2]);
  assert.deepEqual([t.state.seq, t.state.submissions.size], [3, 2]);

  // Behind the head: ask for the rest.
  t.deliver(ping(5));
  assert.deepEqual(t.sockets[1].sent, [{ type: "resync", since: 3, epoch: "D1" }]);
});

test("4409: the role changed, so the desk starts over without since", () => {
  const t = deskClient();
  t.connection.connect();
  t.deliver(deskHello(4), deskSnapshot("D1", 4, [submission(1), submission(2)]), live(4));
  t.sockets[0].deliver({ type: "error", code: "forbidden", detail: "your role on this blog changed" });
  t.sockets[0].finishClose(4409);
  assert.equal(t.states.at(-1), "reconnecting");
  t.clock.advance(500);
  assert.equal(t.sockets.length, 2);
  assert.equal(t.sockets[1].url, "ws://client.test/ws/desk/match/", "a 4409 reconnected with since");
  t.deliver(deskHello(1, { epoch: "U7", role: "contributor" }),
    deskSnapshot("U7", 1, [submission(2)]), live(1));
  assert.deepEqual([t.state.epoch, t.state.seq, [...t.state.submissions.keys()]], ["U7", 1, [2]]);
  assert.equal(t.hellos.at(-1).role, "contributor");

  // From now on the position is the new log's (the restart counted as one attempt: 1 s).
  t.sockets[1].fail();
  t.clock.advance(1000);
  assert.equal(t.sockets[2].url, "ws://client.test/ws/desk/match/?since=1&epoch=U7");
});

test("4403 and 4404 stop the desk for good; other closes retry", () => {
  for (const code of [4403, 4404]) {
    const t = deskClient();
    t.connection.connect();
    t.deliver(deskHello(0), deskSnapshot("D1", 0, []), live(0));
    t.sockets[0].finishClose(code);
    t.clock.advance(60000);
    t.connection.reconnectNow(); // as the `online` event and a visible tab would
    assert.equal(t.sockets.length, 1, `reconnected after ${code}`);
    assert.equal(t.states.at(-1), "closed");
    assert.deepEqual(t.clock.waits(), [], `timers left after ${code}`);
  }
  assert.deepEqual([1000, 1006, 1011, 4008].map(deskCloseAction), ["retry", "retry", "retry", "retry"]);
  assert.equal(deskCloseAction(4409), "restart");
});

test("the public feed's connection still retries every close", () => {
  const clock = new ManualClock();
  const sockets = [];
  const connection = new FeedConnection({
    slug: "match", state: new DeskState(), url: "ws://client.test/ws/liveblog/match/",
    onReset() {}, onChange() {}, onState() {},
    createSocket: (address) => {
      const socket = new FakeSocket(address);
      sockets.push(socket);
      return socket;
    },
    timers: clock, random: () => 1, isOnline: () => true,
  });
  connection.connect();
  sockets[0].finishClose(4403);
  clock.advance(500);
  assert.equal(sockets.length, 2);
});

// --- Requests and the view's helpers -------------------------------------------------------------

test("each action's request", () => {
  const base = "/api/liveblog/the%20match/submissions/9";
  assert.deepEqual(deskRequest("the match", 9, "publish", { body: "x" }),
    { method: "POST", url: `${base}/publish`, body: { body: "x" } });
  assert.deepEqual(deskRequest("the match", 9, "return", { note: "n" }),
    { method: "POST", url: `${base}/return`, body: { note: "n" } });
  assert.deepEqual(deskRequest("the match", 9, "revise", { body: "y" }),
    { method: "PATCH", url: base, body: { body: "y" } });
  assert.deepEqual(deskRequest("the match", 9, "withdraw", {}),
    { method: "DELETE", url: base, body: null });
});

test("the title count, desk photo URLs and times", () => {
  assert.equal(countedTitle("Write · Cup final", 2), "(2) Write · Cup final");
  assert.equal(countedTitle("(2) Write · Cup final", 3), "(3) Write · Cup final");
  assert.equal(countedTitle("(3) Write · Cup final", 0), "Write · Cup final");
  assert.equal(deskPhotoUrl("/media/a-320.jpg"), "/media/a-320.jpg?desk=1");
  assert.equal(deskPhotoUrl("https://cdn.test/a.jpg?sig=1"), "https://cdn.test/a.jpg?sig=1&desk=1");
  const when = new Date(2026, 11, 1, 9, 5); // local time
  assert.equal(localInputValue(when), "2026-12-01T09:05");
  assert.equal(isoFromLocal("2026-12-01T09:05"), when.toISOString());
  assert.equal(isoFromLocal(""), null);
  assert.equal(isoFromLocal("not a time"), null);
});
