// FeedConnection (static/liveblog/feed-connection.js) over a FeedState, with the fake socket and
// the manual clock of e2e/client_harness.js: backoff, watchdogs and resyncs to the millisecond,
// with no server and no real waiting.

import {
  BACKOFF_FIRST_MS, BACKOFF_MAX_MS, CONNECT_TIMEOUT_MS, SILENT_HEARTBEATS, STABLE_AFTER_MS,
  WS_FAILURES_BEFORE_SSE, WS_RETRY_MS, backoffDelay,
} from "/static/liveblog/feed-connection.js";
import { SseSocket } from "/static/liveblog/sse-socket.js";
import { FakeEventSource } from "../client_harness.js";
import { setup, summary } from "../client_harness.js";
import { assert, test } from "./testing.js";
import { BLOG, created, hello, live, ping, post, snapshot } from "./frames.js";

/** A FeedConnection (see client_harness.js's setup) with the steps a test takes. */
class Client {
  constructor(options = {}) {
    this.t = setup(options);
  }

  connect() {
    this.t.connection.connect();
  }

  /** Frames from the server, on the newest socket. */
  deliver(...frames) {
    for (const frame of frames) this.t.sockets.at(-1).deliver(frame);
  }

  fail(socket = -1) {
    this.t.sockets.at(socket).fail();
  }

  advance(ms) {
    this.t.clock.advance(ms);
  }

  /** Everything a test asserts on, copied at this moment. */
  get now() {
    return structuredClone(summary(this.t));
  }

  sent(socket = -1) {
    return this.now.sockets.at(socket).sent;
  }

  /** Frames from the server, on the newest event stream. */
  stream(...frames) {
    for (const frame of frames) this.t.streams.at(-1).deliver(frame);
  }

  failStream(stream = -1) {
    this.t.streams.at(stream).fail();
  }
}

function base(seq, epoch = "E1") {
  return snapshot(epoch, seq, seq ? [post(seq)] : []);
}

function goLive(client, seq, { heartbeat = 15, epoch = "E1" } = {}) {
  client.connect();
  client.deliver(hello({ heartbeat, head: seq, epoch }), live(seq));
  assert.equal(client.now.status, "live");
}

/** Fail the current socket `count` times; the time before each next socket appears. */
function failAndMeasureWaits(client, count) {
  const waits = [];
  for (let n = 0; n < count; n += 1) {
    client.fail();
    const pending = client.now.waits;
    assert.equal(pending.length, 1, `expected one timer after a failure, not ${pending.length}`);
    const [wait] = pending;
    const sockets = client.now.sockets.length;
    if (wait > 0) {
      client.advance(wait - 1);
      assert.equal(client.now.sockets.length, sockets, `reconnected before ${wait} ms`);
      client.advance(1);
    } else {
      client.advance(0);
    }
    assert.equal(client.now.sockets.length, sockets + 1, `no reconnect after ${wait} ms`);
    waits.push(wait);
  }
  return waits;
}

test("the constants match the design", () => {
  // DESIGN.md: backoff 0.5 s doubling to 30 s; silent for 2.5 heartbeats = dead; 10 s connect.
  assert.deepEqual(
    { first: BACKOFF_FIRST_MS, max: BACKOFF_MAX_MS, connect: CONNECT_TIMEOUT_MS, stable: STABLE_AFTER_MS, silent: SILENT_HEARTBEATS },
    { first: 500, max: 30000, connect: 10000, stable: 10000, silent: 2.5 },
  );
  // README "Transports": SSE after 2 websocket failures before opening; the websocket again
  // every 3 minutes.
  assert.deepEqual([WS_FAILURES_BEFORE_SSE, WS_RETRY_MS], [2, 180000]);
});

test("the connect URL carries since and epoch", () => {
  let client = new Client({ url: null, slug: "match", snapshot: base(7, "a1b2c3") });
  client.connect();
  assert.equal(client.now.sockets[0].url, "ws://client.test/ws/liveblog/match/?since=7&epoch=a1b2c3");

  client = new Client({ url: null, slug: "half time", snapshot: base(0, "e9") });
  client.connect();
  assert.equal(client.now.sockets[0].url, "ws://client.test/ws/liveblog/half%20time/?since=0&epoch=e9");

  // No base yet: no since, and the server answers with a snapshot.
  client = new Client({ url: "ws://client.test/ws/liveblog/match/" });
  client.connect();
  assert.equal(client.now.sockets[0].url, "ws://client.test/ws/liveblog/match/");
  client.deliver(hello({ head: 4 }), snapshot("E1", 4, [post(4)]), live(4));
  assert.equal(client.now.seq, 4);
  client.fail();
  client.advance(500);
  assert.equal(client.now.sockets[1].url, "ws://client.test/ws/liveblog/match/?since=4&epoch=E1");
});

test("the live frame sets status live, and events apply", () => {
  const client = new Client({ snapshot: base(7) });
  client.connect();
  assert.deepEqual(client.now.states, ["connecting"]);
  client.deliver(hello({ head: 9 }), created(8, 8), created(9, 9));
  assert.equal(client.now.status, "connecting", "live before the replay was done");
  assert.equal(client.now.seq, 9);
  client.deliver(live(9));
  let now = client.now;
  assert.deepEqual(now.states, ["connecting", "live"]);
  assert.deepEqual(now.changes.map((c) => c.post.id), [8, 9]);

  // A frame that is not JSON and an error frame are survived; live events keep applying.
  client.deliver("not json{", { type: "error", code: "invalid", detail: "test" }, created(10, 10));
  now = client.now;
  assert.equal(now.seq, 10);
  assert.deepEqual(now.ids, [10, 9, 8, 7]);
  assert.equal(now.status, "live");
  assert.equal(now.resets, 0);
  assert.deepEqual(now.sockets[0].sent, []);
});

test("a gap sends one resync, and the replay heals it", () => {
  const client = new Client({ snapshot: base(3) });
  goLive(client, 3);
  client.deliver(created(5), created(6), created(7));
  let now = client.now;
  assert.deepEqual(now.sockets[0].sent, [{ type: "resync", since: 3, epoch: "E1" }],
    "expected exactly one resync from the last applied seq");
  assert.equal(now.seq, 3);
  assert.deepEqual(now.changes, []);

  // The server answers like a new connection from since=3: replay 4…7, then live.
  client.deliver(created(4), created(5), created(6), created(7), live(7));
  client.deliver(created(8));
  now = client.now;
  assert.equal(now.seq, 8);
  assert.deepEqual(now.changes.map((c) => c.post.id), [104, 105, 106, 107, 108]);
  assert.ok(now.sockets.length === 1 && now.status === "live");

  // A later gap is a new question: one more resync, from the new position.
  client.deliver(created(10), created(11));
  assert.deepEqual(client.sent(), [{ type: "resync", since: 3, epoch: "E1" },
    { type: "resync", since: 8, epoch: "E1" }]);

  // Once a resync is answered (`live`), a gap from that same seq asks again.
  client.deliver(live(8), created(10));
  assert.deepEqual(client.sent().slice(2), [{ type: "resync", since: 8, epoch: "E1" }],
    "an answered resync still suppressed the next one");
});

test("a resync answered with a snapshot replaces the state", () => {
  const client = new Client({ snapshot: snapshot("E1", 3, [post(3), post(2)]) });
  goLive(client, 3);
  client.deliver(created(9), ping(9));
  assert.deepEqual(client.sent(), [{ type: "resync", since: 3, epoch: "E1" }]);
  // Too far behind for a replay: the answer is a snapshot at the head, then live.
  client.deliver(snapshot("E1", 9, [post(109), post(3)], { nextBefore: 3 }), live(9), created(10));
  const now = client.now;
  assert.equal(now.resets, 1);
  assert.deepEqual([now.seq, now.ids, now.nextBefore], [10, [110, 109, 3], 3]);
  assert.deepEqual(now.changes.map((c) => c.post.id), [110]);
  assert.equal(now.sockets[0].sent.length, 1);
});

test("a ping ahead asks for a resync", () => {
  const client = new Client({ snapshot: base(5) });
  goLive(client, 5);
  client.deliver(ping(5), ping(4));
  assert.deepEqual(client.sent(), [], "a ping at (or behind) the last seq asked for a resync");

  client.deliver(ping(7));
  assert.deepEqual(client.sent(), [{ type: "resync", since: 5, epoch: "E1" }]);
  client.deliver(ping(7), ping(8));
  assert.equal(client.sent().length, 1, "asked again while the first resync was unanswered");

  client.deliver(created(6), created(7), created(8), live(8), ping(8));
  const now = client.now;
  assert.equal(now.seq, 8);
  assert.equal(now.sockets[0].sent.length, 1);
});

test("a snapshot of another epoch replaces the state", () => {
  const client = new Client({ snapshot: snapshot("E1", 7, [post(7), post(6)], { nextBefore: 6 }) });
  client.connect();
  assert.ok(client.now.sockets[0].url.endsWith("?since=7&epoch=E1"));
  // The log was reset: the server has epoch E2 at head 2, and answers with its snapshot.
  client.deliver(hello({ head: 2, epoch: "E2" }),
    snapshot("E2", 2, [post(31), post(30)], { blog: { ...BLOG, title: "Reset" } }), live(2));
  const now = client.now;
  assert.deepEqual([now.epoch, now.seq, now.ids, now.nextBefore], ["E2", 2, [31, 30], null]);
  assert.equal(now.blog.title, "Reset");
  assert.equal(now.resets, 1);
  assert.deepEqual(now.changes, []);
  assert.equal(now.status, "live");

  client.deliver(created(3, 32));
  assert.deepEqual(client.now.ids, [32, 31, 30]);
  client.fail();
  client.advance(500);
  assert.ok(client.now.sockets[1].url.endsWith("?since=3&epoch=E2"));
});

test("a silent socket is closed and replaced", () => {
  const heartbeatS = 2;
  const silenceMs = heartbeatS * 1000 * SILENT_HEARTBEATS;
  const client = new Client({ snapshot: base(4) });
  goLive(client, 4, { heartbeat: heartbeatS });

  // Pings every heartbeat keep the socket for as long as they come.
  for (let n = 0; n < 10; n += 1) {
    client.advance(heartbeatS * 1000);
    client.deliver(ping(4));
  }
  assert.equal(client.now.sockets[0].closeCalls, 0);
  assert.equal(client.now.current, 0);

  // Then nothing: alive up to SILENT_HEARTBEATS × heartbeat, dead after.
  client.advance(silenceMs - 1);
  assert.equal(client.now.sockets[0].closeCalls, 0);
  assert.equal(client.now.status, "live");
  client.advance(1);
  let now = client.now;
  assert.equal(now.sockets[0].closeCalls, 1, "the silent socket was not closed");
  assert.equal(now.current, -1);
  assert.equal(now.status, "reconnecting");
  assert.deepEqual(now.waits, [BACKOFF_FIRST_MS], "no reconnect scheduled (attempt was reset: live)");

  client.advance(BACKOFF_FIRST_MS);
  now = client.now;
  assert.equal(now.sockets.length, 2);
  assert.ok(now.sockets[1].url.endsWith("?since=4&epoch=E1"));
  assert.deepEqual(now.overlaps, []);

  // The stalled socket reports its close much later: that must not touch the new one.
  client.t.sockets[0].finishClose(1006);
  now = client.now;
  assert.equal(now.current, 1);
  assert.deepEqual(now.waits, [CONNECT_TIMEOUT_MS], "a second reconnect was scheduled");

  // The new socket answers with hello and stalls: hello alone sets the silence limit.
  client.deliver(hello({ head: 4, heartbeat: heartbeatS }));
  client.advance(silenceMs - 1);
  assert.equal(client.now.sockets[1].closeCalls, 0, "closed before 2.5 heartbeats of silence");
  client.advance(1);
  now = client.now;
  assert.equal(now.sockets[1].closeCalls, 1);
  assert.equal(now.current, -1);
});

test("a connect without an answer is abandoned", () => {
  const client = new Client({ snapshot: base(2) });
  client.connect();
  client.advance(CONNECT_TIMEOUT_MS - 1);
  assert.equal(client.now.sockets[0].closeCalls, 0);
  assert.equal(client.now.current, 0);
  client.advance(1);
  let now = client.now;
  assert.equal(now.sockets[0].closeCalls, 1, "a connect that never answered was kept");
  assert.equal(now.current, -1);
  assert.equal(now.status, "reconnecting");
  assert.deepEqual(now.waits, [BACKOFF_FIRST_MS]);
  client.advance(BACKOFF_FIRST_MS);
  assert.equal(client.now.sockets.length, 2);

  // A connect that answers in time is kept past the connect timeout.
  client.advance(CONNECT_TIMEOUT_MS - 1000);
  client.deliver(hello({ head: 2, heartbeat: 15 }));
  client.advance(1000);
  now = client.now;
  assert.equal(now.sockets[1].closeCalls, 0);
  assert.equal(now.current, 1);
});

test("never two sockets", () => {
  const client = new Client({ snapshot: base(1) });
  client.connect();
  client.t.connection.reconnectNow();
  client.connect();
  assert.equal(client.now.sockets.length, 1, "a second socket while the first was connecting");
  client.deliver(hello({ head: 1 }), live(1));
  client.t.connection.reconnectNow();
  client.connect();
  assert.equal(client.now.sockets.length, 1, "a second socket while the first was live");

  // Dropped: a retry waits; reconnecting now takes its place instead of adding one.
  client.fail();
  assert.deepEqual(client.now.waits, [500]);
  client.t.connection.reconnectNow();
  assert.equal(client.now.sockets.length, 2);
  client.advance(1000); // past the cancelled retry, before the new socket's connect timeout
  const now = client.now;
  assert.equal(now.sockets.length, 2, "the cancelled retry still opened a socket");
  assert.deepEqual(now.overlaps, []);
});

test("a socket that cannot be created is retried with backoff", () => {
  const client = new Client({ snapshot: base(1), random: 1, refuse: 2 });
  client.connect();
  assert.deepEqual(client.now.sockets, []);
  assert.deepEqual(client.now.waits, [500]);
  client.advance(500);
  assert.deepEqual(client.now.waits, [1000]);
  client.advance(1000);
  const now = client.now;
  assert.deepEqual(now.refused, [0, 500]);
  assert.deepEqual(now.sockets.map((s) => s.createdAt), [1500]);
  client.deliver(hello({ head: 1 }), live(1));
  assert.equal(client.now.status, "live");
});

test("the backoff doubles up to the cap with random() = 1", () => {
  const client = new Client({ snapshot: base(1), random: 1 });
  client.connect();
  const waits = failAndMeasureWaits(client, 9);
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  const now = client.now;
  assert.deepEqual(now.overlaps, []);
  assert.deepEqual(now.states, ["connecting", "reconnecting"]);
});

test("the backoff waits nothing with random() = 0", () => {
  const client = new Client({ snapshot: base(1), random: 0 });
  client.connect();
  assert.deepEqual(failAndMeasureWaits(client, 6), Array(6).fill(0));
  assert.equal(client.now.now, 0);
});

test("the backoff delay stays within its ceiling", () => {
  const draws = [0, 1e-9, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999, 1];
  for (let i = 0; i < 200; i += 1) draws.push(Math.random());
  const bad = [];
  const exact = [];
  for (let attempt = 0; attempt <= 60; attempt += 1) {
    const ceiling = Math.min(30000, 500 * 2 ** attempt);
    for (const r of draws) {
      const delay = backoffDelay(attempt, () => r);
      if (!(delay >= 0 && delay <= ceiling)) bad.push({ attempt, r, delay });
    }
    exact.push(backoffDelay(attempt, () => 1));
    const byDefault = backoffDelay(attempt);
    if (!(byDefault >= 0 && byDefault <= ceiling)) bad.push({ attempt, byDefault });
  }
  assert.deepEqual(bad, []);
  assert.deepEqual(exact.slice(0, 8), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.deepEqual(new Set(exact.slice(6)), new Set([30000]));
});

test("attempts reset after a stable live connection, but not before", () => {
  const client = new Client({ snapshot: base(1), random: 1 });
  client.connect();
  assert.deepEqual(failAndMeasureWaits(client, 3), [500, 1000, 2000]);

  // Live, but dropped just before STABLE_AFTER_MS: the backoff goes on growing.
  client.deliver(hello({ head: 1 }), live(1));
  client.advance(STABLE_AFTER_MS - 1);
  assert.equal(client.now.attempt, 3);
  assert.deepEqual(failAndMeasureWaits(client, 1), [4000]);

  // Live for STABLE_AFTER_MS: the next drop starts again from the first wait.
  client.deliver(hello({ head: 1 }), live(1));
  client.advance(STABLE_AFTER_MS);
  assert.equal(client.now.attempt, 0);
  assert.deepEqual(failAndMeasureWaits(client, 2), [500, 1000]);

  // The stability timer of a connection dropped just before it fired is cancelled: it must
  // not reset the backoff while the next wait runs.
  client.deliver(hello({ head: 1 }), live(1));
  client.advance(STABLE_AFTER_MS - 1);
  assert.deepEqual(failAndMeasureWaits(client, 1), [2000]);
  assert.equal(client.now.attempt, 3);
  assert.deepEqual(failAndMeasureWaits(client, 1), [4000]);
});

test("status goes connecting, live, then reconnecting or offline", () => {
  let client = new Client({ snapshot: base(1), online: true });
  goLive(client, 1);
  client.fail();
  assert.deepEqual(client.now.states, ["connecting", "live", "reconnecting"]);
  client.advance(500);
  assert.deepEqual(client.now.states, ["connecting", "live", "reconnecting"]);
  client.deliver(hello({ head: 1 }), live(1));
  assert.deepEqual(client.now.states, ["connecting", "live", "reconnecting", "live"]);

  // The server closes the socket (a deploy): the same path.
  client.t.sockets.at(-1).finishClose(1012);
  assert.equal(client.now.status, "reconnecting");

  client = new Client({ snapshot: base(1), online: false });
  goLive(client, 1);
  client.fail();
  assert.deepEqual(client.now.states, ["connecting", "live", "offline"]);
  client.advance(500); // a retry while still offline stays "offline"
  client.fail();
  assert.deepEqual(client.now.states, ["connecting", "live", "offline"]);
  client.t.online = true;
  client.advance(1000);
  assert.deepEqual(client.now.states, ["connecting", "live", "offline", "reconnecting"]);
  client.deliver(hello({ head: 1 }), live(1));
  assert.equal(client.now.status, "live");
});

test("start follows the network and the tab", () => {
  const client = new Client({ snapshot: base(1), random: 1 });
  assert.equal(document.visibilityState, "visible");
  client.t.connection.start();
  assert.equal(client.now.sockets.length, 1);
  assert.deepEqual(failAndMeasureWaits(client, 3), [500, 1000, 2000]);
  // Shown again while a connect is under way: no second socket, and the backoff stands.
  document.dispatchEvent(new Event("visibilitychange"));
  assert.equal(client.now.sockets.length, 4);
  assert.equal(client.now.attempt, 3);
  client.fail();
  assert.deepEqual(client.now.waits, [4000]);

  client.t.online = false;
  window.dispatchEvent(new Event("offline"));
  assert.equal(client.now.status, "offline");
  // The network is back: reconnect at once, with the backoff started over.
  client.t.online = true;
  window.dispatchEvent(new Event("online"));
  let now = client.now;
  assert.equal(now.sockets.length, 5);
  assert.equal(now.status, "reconnecting");
  assert.deepEqual(failAndMeasureWaits(client, 1), [500]);

  // A tab shown again while a socket is up does not open another.
  client.deliver(hello({ head: 1 }), live(1));
  window.dispatchEvent(new Event("online"));
  document.dispatchEvent(new Event("visibilitychange"));
  assert.equal(client.now.sockets.length, 6);
  // …but while waiting to retry it reconnects at once.
  client.fail();
  document.dispatchEvent(new Event("visibilitychange"));
  now = client.now;
  assert.equal(now.sockets.length, 7);
  assert.deepEqual(now.overlaps, []);
});

// --- Transports: SSE where the websocket upgrade fails ------------------------------------------

const SSE_URL = "http://client.test/sse/liveblog/match/";

/** A reader client that fell back to SSE (two websockets refused before opening), live at `seq`,
 *  the websocket tried again at once refused too (a proxy that blocks it): 3 sockets, 1 stream. */
function onSse(seq, options = {}) {
  const client = new Client({ snapshot: base(seq), fallback: {}, random: 1, ...options });
  client.connect();
  failAndMeasureWaits(client, WS_FAILURES_BEFORE_SSE - 1);
  client.fail();
  client.advance(client.now.waits[0]);
  const now = client.now;
  assert.equal(now.sockets.length, WS_FAILURES_BEFORE_SSE, "a websocket instead of the stream");
  assert.deepEqual(now.streams.map((s) => s.url), [`${SSE_URL}?since=${seq}&epoch=E1`]);
  client.stream(hello({ head: seq, heartbeat: options.heartbeat ?? 15 }), live(seq));
  assert.equal(client.now.status, "live");
  assert.deepEqual(client.now.transports, ["sse"]);
  client.advance(0);
  assert.equal(client.now.sockets.length, WS_FAILURES_BEFORE_SSE + 1, "no websocket tried at once");
  client.fail();
  assert.deepEqual(client.now.transports, ["sse"]);
  return client;
}

test("after two websockets fail before opening, the feed goes over SSE", () => {
  const client = onSse(5);
  client.stream(created(6), created(7));
  const now = client.now;
  assert.deepEqual([now.seq, now.ids], [7, [107, 106, 5]]);
  assert.deepEqual(now.changes.map((c) => c.post.id), [106, 107]);
  assert.equal(now.transport, "sse");
  assert.deepEqual(now.open, [`${SSE_URL}?since=5&epoch=E1`], "more than the stream left open");
  assert.deepEqual(now.sockets.map((s) => s.readyState), [3, 3, 3]);
});

test("a fallback that was only an outage goes back to the websocket at once", () => {
  // Nothing answered for a while (a tunnel): the stream happened to be the attempt that worked.
  const client = new Client({ snapshot: base(5), fallback: {}, random: 1 });
  client.connect();
  client.fail();
  client.advance(500);
  client.fail();
  client.advance(1000);
  client.stream(hello({ head: 6 }), created(6), live(6));
  assert.deepEqual(client.now.transports, ["sse"]);
  client.advance(0);
  assert.equal(client.now.sockets.at(-1).url, "ws://client.test/ws/liveblog/match/?since=6&epoch=E1");
  client.deliver(hello({ head: 6 }), live(6));
  const now = client.now;
  assert.deepEqual(now.transports, ["sse", "ws"]);
  assert.deepEqual(now.open, ["ws://client.test/ws/liveblog/match/?since=6&epoch=E1"]);
  assert.deepEqual(now.changes.map((c) => c.post.id), [106]);
  assert.equal(now.status, "live");
});

test("a websocket that opened and dropped does not count towards SSE", () => {
  const client = new Client({ snapshot: base(1), fallback: {}, random: 1 });
  client.connect();
  client.deliver(hello({ head: 1 }), live(1));
  assert.deepEqual(client.now.transports, ["ws"]);
  // Dropped after opening, then one failure before opening, three times over: never two in a row.
  for (let n = 0; n < 3; n += 1) {
    failAndMeasureWaits(client, 1); // the open one dropped
    failAndMeasureWaits(client, 1); // the next never opened
    client.deliver(hello({ head: 1 }));
  }
  assert.deepEqual(client.now.streams, []);
  assert.equal(client.now.sockets.length, 7);
  // The open one drops, then two in a row fail before opening: the next attempt is the stream.
  failAndMeasureWaits(client, 2);
  assert.deepEqual(client.now.streams, []);
  client.fail();
  client.advance(client.now.waits[0]);
  assert.equal(client.now.streams.length, 1);
  assert.equal(client.now.sockets.length, 9);
});

test("while nothing answers, the stream and the websocket take turns; an open stream stays", () => {
  const client = new Client({ snapshot: base(2), fallback: {}, random: 1 });
  client.connect();
  client.fail();
  client.advance(500);
  client.fail();
  client.advance(1000);
  assert.equal(client.now.streams.length, 1);
  // The stream fails too (no HTTP either): the websocket again, then the stream.
  client.failStream();
  client.advance(2000);
  assert.deepEqual([client.now.sockets.length, client.now.streams.length], [3, 1]);
  client.fail();
  client.advance(4000);
  assert.deepEqual([client.now.sockets.length, client.now.streams.length], [3, 2]);
  assert.deepEqual(client.now.transports, [], "a transport shown before anything opened");
  // This one answers: SSE from now on (the websocket tried at once is refused), through drops
  // of the stream.
  client.stream(hello({ head: 2 }), live(2));
  client.advance(0);
  client.fail();
  for (let n = 0; n < 3; n += 1) {
    client.failStream();
    client.advance(client.now.waits[0]);
    client.stream(hello({ head: 2 }), live(2));
  }
  const now = client.now;
  assert.deepEqual([now.sockets.length, now.streams.length], [4, 5]);
  assert.deepEqual(now.transports, ["sse"]);
  assert.equal(now.open.length, 1);
});

test("the desk's connection (no fallback) stays on websockets", () => {
  const client = new Client({ snapshot: base(1), random: 1 });
  client.connect();
  failAndMeasureWaits(client, 6);
  assert.deepEqual(client.now.streams, []);
  assert.equal(client.now.sockets.length, 7);
  client.deliver(hello({ head: 1 }), live(1));
  assert.equal(client.now.status, "live");
});

test("an SSE error closes the stream, and the backoff reconnects it with since", () => {
  const client = onSse(4);
  client.stream(created(5));
  client.failStream(); // the browser would retry by itself with the first URL: it must not
  let now = client.now;
  assert.equal(now.streams[0].closeCalls, 1, "the EventSource was left to retry on its own");
  assert.equal(now.streams[0].readyState, 2);
  assert.equal(now.status, "reconnecting");
  // The client's own backoff (attempt 3: the two websockets and this stream), beside the
  // websocket's retry.
  assert.deepEqual(now.waits, [2000, WS_RETRY_MS], "not the client's own backoff");
  client.advance(2000);
  now = client.now;
  assert.deepEqual(now.streams.map((s) => s.url).at(-1), `${SSE_URL}?since=5&epoch=E1`);
  client.stream(hello({ head: 6 }), created(5), created(6), live(6));
  now = client.now;
  assert.deepEqual(now.changes.map((c) => c.post.id), [105, 106]);
  assert.equal(now.status, "live");
  assert.equal(now.sockets.length, 3, "a websocket was tried instead");
});

test("a resync over SSE is a new request from since, at once", () => {
  const client = onSse(3);
  client.stream(created(5)); // a gap: 4 is missing
  let now = client.now;
  assert.equal(now.streams[0].closeCalls, 1);
  assert.deepEqual(now.streams.map((s) => s.url),
    [`${SSE_URL}?since=3&epoch=E1`, `${SSE_URL}?since=3&epoch=E1`]);
  assert.equal(now.status, "live", "a resync is not a lost connection");
  assert.equal(now.seq, 3);
  // The gap while that request is unanswered: no third one.
  client.stream(hello({ head: 5 }), created(5));
  assert.equal(client.now.streams.length, 2);
  client.stream(created(4), created(5), live(5));
  now = client.now;
  assert.deepEqual([now.seq, now.changes.map((c) => c.post.id)], [5, [104, 105]]);

  // A ping ahead: another request, from 5.
  client.stream(ping(7));
  now = client.now;
  assert.deepEqual(now.streams.map((s) => s.url).at(-1), `${SSE_URL}?since=5&epoch=E1`);
  assert.equal(now.streams.length, 3);
  assert.deepEqual(now.open, [`${SSE_URL}?since=5&epoch=E1`]);
  assert.equal(now.sockets.length, 3, "a websocket was opened for the resync");
  assert.deepEqual(now.waits, [CONNECT_TIMEOUT_MS, WS_RETRY_MS], "no backoff for a resync");
});

test("a silent SSE stream is dead after 2.5 heartbeats", () => {
  const client = onSse(2, { heartbeat: 2 });
  client.advance(2 * 1000 * SILENT_HEARTBEATS - 1);
  assert.equal(client.now.streams[0].closeCalls, 0);
  client.advance(1);
  const now = client.now;
  assert.equal(now.streams[0].closeCalls, 1, "the silent stream was kept");
  assert.equal(now.status, "reconnecting");
  client.advance(now.waits[0]);
  assert.equal(client.now.streams.length, 2);
});

test("from SSE the websocket is tried again later, and takes over only once live", () => {
  const retry = 30000; // below the stream's 37.5 s of allowed silence
  const client = onSse(5, { fallback: { wsRetryMs: retry } });
  client.advance(retry - 1);
  client.stream(ping(5)); // keep the stream alive
  assert.equal(client.now.sockets.length, 3);
  client.advance(1);
  let now = client.now;
  assert.equal(now.sockets.length, 4, "no websocket tried after wsRetryMs");
  assert.equal(now.sockets[3].url, "ws://client.test/ws/liveblog/match/?since=5&epoch=E1");

  // The websocket replays while the stream goes on: nothing switches before its `live`.
  client.stream(created(6));
  client.deliver(hello({ head: 7 }), created(6), created(7));
  now = client.now;
  assert.equal(now.transport, "sse");
  assert.equal(now.streams[0].closeCalls, 0);
  assert.equal(now.held, `${SSE_URL}?since=5&epoch=E1`);
  assert.equal(now.seq, 6);
  client.deliver(live(7));
  now = client.now;
  assert.deepEqual(now.transports, ["sse", "ws"]);
  assert.equal(now.streams[0].closeCalls, 1, "the stream was left open");
  assert.deepEqual(now.open, ["ws://client.test/ws/liveblog/match/?since=5&epoch=E1"]);
  assert.equal(now.seq, 7);
  assert.deepEqual(now.changes.map((c) => c.post.id), [106, 107], "a seq applied twice, or lost");
  assert.equal(now.status, "live");

  // It is the connection now: events apply, and a resync is a frame again.
  client.deliver(created(8), ping(10));
  now = client.now;
  assert.equal(now.seq, 8);
  assert.deepEqual(client.sent(), [{ type: "resync", since: 8, epoch: "E1" }]);
  assert.equal(now.streams.length, 1);
  // A later drop reconnects over the websocket.
  client.fail();
  client.advance(client.now.waits[0]);
  assert.equal(client.now.sockets.length, 5);
  assert.equal(client.now.streams.length, 1);
});

test("a websocket retry that fails leaves SSE in place, and is tried again later", () => {
  const retry = 30000;
  const client = onSse(5, { fallback: { wsRetryMs: retry }, heartbeat: 15 });
  const keepAlive = () => client.stream(ping(5));
  client.advance(retry);
  assert.equal(client.now.sockets.length, 4);
  client.fail(); // refused again
  let now = client.now;
  assert.equal(now.held, `${SSE_URL}?since=5&epoch=E1`);
  assert.deepEqual(now.transports, ["sse"]);
  assert.equal(now.streams[0].closeCalls, 0);
  assert.equal(now.status, "live");

  keepAlive();
  client.advance(retry);
  assert.equal(client.now.sockets.length, 5, "not tried again");
  // This one opens but never goes live: given up after the connect timeout.
  client.deliver(hello({ head: 5 }));
  keepAlive();
  client.advance(CONNECT_TIMEOUT_MS);
  now = client.now;
  assert.equal(now.sockets[4].closeCalls, 1, "a websocket that never went live was kept");
  assert.deepEqual(now.open, [`${SSE_URL}?since=5&epoch=E1`]);
  assert.deepEqual(now.transports, ["sse"]);
  keepAlive();
  client.stream(created(6));
  assert.equal(client.now.seq, 6);

  // The stream drops while a websocket is being tried: the websocket, live, is the connection.
  client.advance(retry);
  assert.equal(client.now.sockets.length, 6);
  client.failStream();
  client.deliver(hello({ head: 7 }), created(7), live(7));
  now = client.now;
  assert.deepEqual(now.transports, ["sse", "ws"]);
  assert.equal(now.status, "live");
  assert.equal(now.seq, 7);
  assert.deepEqual(now.open, ["ws://client.test/ws/liveblog/match/?since=6&epoch=E1"]);
  client.advance(BACKOFF_MAX_MS);
  assert.equal(client.now.streams.length, 1, "the stream's cancelled retry still opened one");
});

test("a reset the stream saw first is not undone by the websocket's replay", () => {
  const client = onSse(5, { fallback: { wsRetryMs: 1000 } });
  client.advance(1000);
  client.deliver(hello({ head: 6 }), created(6)); // the old log, read before the reset
  client.stream(snapshot("E2", 1, [post(301)]));
  client.deliver(live(6));
  let now = client.now;
  assert.deepEqual([now.epoch, now.seq, now.ids], ["E2", 1, [301]]);
  assert.deepEqual(now.transports, ["sse", "ws"]);
  // The reset reaches the websocket too: its snapshot, then the new log's events.
  client.deliver(snapshot("E2", 1, [post(301)]), created(2, 302));
  now = client.now;
  assert.deepEqual([now.epoch, now.seq, now.ids], ["E2", 2, [302, 301]]);
});

test("stop closes the stream and any websocket being tried", () => {
  const client = onSse(1, { fallback: { wsRetryMs: 1000 } });
  client.advance(1000);
  assert.equal(client.now.sockets.length, 4);
  client.t.connection.stop();
  const now = client.now;
  assert.deepEqual(now.open, []);
  assert.equal(now.status, "closed");
  client.advance(WS_RETRY_MS);
  assert.deepEqual([client.now.sockets.length, client.now.streams.length], [4, 1]);
});

test("the SSE adapter looks like a socket that cannot send", () => {
  let source = null;
  const socket = new SseSocket("/sse/x/", (url) => { source = new FakeEventSource(url); return source; });
  const seen = [];
  for (const type of ["open", "message", "error", "close"]) {
    socket.addEventListener(type, (event) => seen.push([type, event.data ?? event.code ?? null]));
  }
  assert.deepEqual([socket.readyState, socket.canSend, source.url], [0, false, "/sse/x/"]);
  source.deliver({ type: "hello" });
  assert.equal(socket.readyState, 1);
  let threw = null;
  try { socket.send("{}"); } catch (error) { threw = error.name; }
  assert.equal(threw, "NotSupportedError");
  source.fail();
  source.dispatch("error"); // closed already: nothing more
  assert.deepEqual(seen, [["open", null], ["message", '{"type":"hello"}'], ["error", null], ["close", 1006]]);
  assert.deepEqual([socket.readyState, source.closeCalls], [3, 1]);

  // Closed by its owner: quietly, and nothing after.
  const quiet = new SseSocket("/sse/y/", (url) => { source = new FakeEventSource(url); return source; });
  const heard = [];
  quiet.addEventListener("close", () => heard.push("close"));
  quiet.addEventListener("message", () => heard.push("message"));
  quiet.close();
  quiet.close();
  source.dispatch("message", { data: "{}" });
  assert.deepEqual([heard, quiet.readyState, source.closeCalls], [[], 3, 1]);
});
