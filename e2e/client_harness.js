// Test doubles for the reader client's unit tests (e2e/js/feed-connection.test.js): a manual
// clock and a fake WebSocket, so that backoff, watchdogs and frame handling run deterministically,
// with no server and no real waiting. Served at http://client.test/e2e/client_harness.js next to
// the real modules under /static/.

import { FeedConnection } from "/static/liveblog/feed-connection.js";
import { FeedState } from "/static/liveblog/feed-state.js";
import { SseSocket } from "/static/liveblog/sse-socket.js";

/** setTimeout/clearTimeout on a clock that only moves when told to (`advance`). */
export class ManualClock {
  constructor() {
    this.now = 0;
    this.nextId = 1; // like a browser's, never 0: the client tests timer ids for truthiness
    this.pending = new Map();
    this.setTimeout = this.setTimeout.bind(this);
    this.clearTimeout = this.clearTimeout.bind(this);
  }

  setTimeout(callback, ms = 0) {
    const id = this.nextId++;
    const delay = Number(ms);
    // A browser runs a negative or NaN delay as 0.
    const wait = Number.isFinite(delay) && delay > 0 ? delay : 0;
    this.pending.set(id, { id, callback, due: this.now + wait, delay: wait });
    return id;
  }

  clearTimeout(id) {
    this.pending.delete(id);
  }

  /** Move time on by `ms`, running every callback that falls due, in order of due time. */
  advance(ms) {
    const end = this.now + ms;
    for (let runs = 0; ; runs += 1) {
      if (runs > 10000) throw new Error("ManualClock: timers keep rescheduling themselves");
      let next = null;
      for (const timer of this.pending.values()) {
        if (timer.due > end) continue;
        if (!next || timer.due < next.due || (timer.due === next.due && timer.id < next.id)) {
          next = timer;
        }
      }
      if (!next) break;
      this.pending.delete(next.id);
      this.now = next.due;
      next.callback();
    }
    this.now = end;
  }

  /** Time left until each pending callback, soonest first. */
  waits() {
    return [...this.pending.values()].map((timer) => timer.due - this.now).sort((a, b) => a - b);
  }
}

/** Listeners by event type; `dispatch` calls them with a plain event object. */
class FakeTarget {
  constructor(url) {
    this.url = url;
    this.readyState = 0; // CONNECTING
    this.closeCalls = 0;
    this.listeners = new Map();
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }

  removeEventListener(type, listener) {
    const listeners = this.listeners.get(type) ?? [];
    const index = listeners.indexOf(listener);
    if (index >= 0) listeners.splice(index, 1);
  }

  dispatch(type, fields = {}) {
    const event = { type, target: this, ...fields };
    for (const listener of [...(this.listeners.get(type) ?? [])]) listener(event);
  }
}

/**
 * A WebSocket double: records what the client sends; the test plays the server (`deliver`) and
 * the network (`fail`, `finishClose`). Like a browser's, `close()` only starts the closing
 * handshake: the `close` event comes when the test says so (`finishClose`), or never (a stalled
 * network).
 */
export class FakeSocket extends FakeTarget {
  constructor(url) {
    super(url);
    this.sent = [];
  }

  send(data) {
    if (this.readyState === 0) throw new DOMException("still connecting", "InvalidStateError");
    if (this.readyState !== 1) return; // a browser drops frames sent while closing
    this.sent.push(JSON.parse(data));
  }

  open() {
    if (this.readyState !== 0) throw new Error(`open() on a socket in state ${this.readyState}`);
    this.readyState = 1;
    this.dispatch("open");
  }

  /** One frame from the server (an object is sent as JSON; a string as it is). */
  deliver(frame) {
    if (this.readyState === 0) this.open();
    if (this.readyState !== 1) throw new Error(`deliver() on a socket in state ${this.readyState}`);
    this.dispatch("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  close() {
    this.closeCalls += 1;
    if (this.readyState < 2) this.readyState = 2; // CLOSING; the event waits for finishClose()
  }

  finishClose(code = 1006) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.dispatch("close", { code, wasClean: code === 1000 });
  }

  /** A refused connect or a broken connection: `error`, then `close`, as browsers report it. */
  fail() {
    this.dispatch("error");
    this.finishClose(1006);
  }
}

/**
 * An EventSource double: the test plays the server (`deliver`) and the network (`fail`: the
 * stream broke, and a browser's EventSource would now retry by itself; `refuse`: an answer that
 * is no event stream, after which it gives up). `close()` counts its calls.
 */
export class FakeEventSource extends FakeTarget {
  open() {
    if (this.readyState !== 0) throw new Error(`open() on a stream in state ${this.readyState}`);
    this.readyState = 1;
    this.dispatch("open");
  }

  deliver(frame) {
    if (this.readyState === 0) this.open();
    if (this.readyState !== 1) throw new Error(`deliver() on a stream in state ${this.readyState}`);
    this.dispatch("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  fail() {
    if (this.readyState === 2) throw new Error("fail() on a closed stream");
    this.readyState = 0; // what a browser does: reconnect on its own, unless closed now
    this.dispatch("error");
  }

  refuse() {
    this.readyState = 2;
    this.dispatch("error");
  }

  close() {
    this.closeCalls += 1;
    this.readyState = 2; // CLOSED
  }
}

/**
 * A FeedConnection over a FeedState, with fake sockets, a manual clock and recorded callbacks.
 * `random`: a number (every draw) or a list (drawn in turn, cycling).
 */
export function setup({
  snapshot = null,
  random = 1,
  online = true,
  slug = "match",
  url = "ws://client.test/ws/liveblog/match/",
  refuse = 0, // the first `refuse` socket constructions throw (as `new WebSocket` can)
  fallback = null, // the reader's SSE fallback options ({} for the defaults); null: websockets only
  sseUrl = "http://client.test/sse/liveblog/match/",
} = {}) {
  const clock = new ManualClock();
  const state = new FeedState();
  if (snapshot) state.applySnapshot(snapshot);
  const draws = Array.isArray(random) ? random : [random];
  let drawn = 0;
  const t = {
    clock, state, online,
    sockets: [], states: [], changes: [], resets: 0,
    overlaps: [], // sockets created while another one was still open or connecting
    randomCalls: 0,
    refused: [],
    streams: [], // the FakeEventSources under the SseSockets
    transports: [], // onTransport's calls
  };
  t.connection = new FeedConnection({
    slug, state, url,
    onReset: () => { t.resets += 1; },
    onChange: (change) => { t.changes.push(change); },
    onState: (status) => { t.states.push(status); },
    createSocket: (address) => {
      if (t.refused.length < refuse) {
        t.refused.push(clock.now);
        throw new DOMException(`refused: ${address}`, "SyntaxError");
      }
      const open = t.sockets.filter((socket) => socket.readyState < 2);
      if (open.length) t.overlaps.push({ created: t.sockets.length, open: open.map((s) => s.url) });
      const socket = new FakeSocket(address);
      socket.createdAt = clock.now;
      t.sockets.push(socket);
      return socket;
    },
    timers: clock,
    random: () => {
      t.randomCalls += 1;
      return draws[drawn++ % draws.length];
    },
    isOnline: () => t.online,
    fallback: fallback && {
      url: sseUrl,
      ...fallback,
      createStream: (address) => new SseSocket(address, (streamUrl) => {
        const stream = new FakeEventSource(streamUrl);
        stream.createdAt = clock.now;
        t.streams.push(stream);
        return stream;
      }),
    },
    onTransport: (transport) => { t.transports.push(transport); },
  });
  return t;
}

/** The sockets and streams not closed yet (connecting or open): never more than one, except a
 *  websocket tried beside a live stream. */
export function openTransports(t) {
  return [
    ...t.sockets.filter((socket) => socket.readyState < 2).map((socket) => socket.url),
    ...t.streams.filter((stream) => stream.readyState < 2).map((stream) => stream.url),
  ];
}

/** Everything a test asserts on, as plain JSON. */
export function summary(t) {
  return {
    now: t.clock.now,
    waits: t.clock.waits(),
    status: t.connection.status,
    attempt: t.connection.attempt,
    current: t.sockets.indexOf(t.connection.socket), // -1: no socket held
    sockets: t.sockets.map((socket) => ({
      url: socket.url,
      readyState: socket.readyState,
      sent: socket.sent,
      closeCalls: socket.closeCalls,
      createdAt: socket.createdAt,
    })),
    states: t.states,
    changes: t.changes,
    resets: t.resets,
    overlaps: t.overlaps,
    refused: t.refused,
    streams: t.streams.map((stream) => ({
      url: stream.url,
      readyState: stream.readyState,
      closeCalls: stream.closeCalls,
      createdAt: stream.createdAt,
    })),
    transports: t.transports,
    transport: t.connection.transport,
    held: t.connection.socket?.url ?? null, // the URL of the socket or stream held
    open: openTransports(t),
    epoch: t.state.epoch,
    seq: t.state.seq,
    blog: t.state.blog,
    nextBefore: t.state.nextBefore,
    ids: t.state.sorted().map((post) => post.id),
    posts: t.state.sorted(),
  };
}
