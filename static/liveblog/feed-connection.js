// One websocket to a blog's feed, kept alive over a bad network.
//
// - Applies frames through a FeedState: duplicates are ignored, a gap is never applied (the
//   connection asks the server to resync from the last applied seq instead).
// - Reconnects with exponential backoff and full jitter (0.5 s doubling to 30 s), reset once a
//   connection has stayed live for a while; at once on the browser's `online` event and when a
//   hidden tab becomes visible. Never holds two sockets.
// - Treats a socket silent for 2.5 heartbeats as dead (a stalled network keeps it "open" for
//   minutes), and a connect that does not answer in 10 s as failed.
// - A `ping` whose head is beyond the last applied seq means something was missed: resync.
// - What a close code means is the caller's (`closeAction`): the reader's feed retries every
//   close; the desk (desk.js) starts over without `since` on 4409 (a role change: another log)
//   and stops on 4403/4404 (refused).
//
// The state is anything with `epoch`, `seq`, `applySnapshot(frame)` and `applyEvent(frame)`:
// the reader's FeedState, or the desk's DeskState (desk-state.js); the URL is the caller's too.
//
// - Transports (the reader's, when given a `fallback`): the websocket first; after
//   `fallback.failures` websocket attempts in a row that failed before opening (a proxy that
//   refuses the upgrade), the next attempt is Server-Sent Events (sse-socket.js, the same frames).
//   An SSE stream that opens proves HTTP answers: the connection stays on SSE, and tries a
//   websocket in the background with its position, once at once (the upgrades may have failed
//   only because nothing answered) then every `fallback.wsRetryMs`; that one takes over only
//   once it is live (and the stream is closed then), else it is dropped and tried again later.
//   Over SSE a resync is a reconnect with `since`: there is no channel to the server. The desk
//   passes no fallback: websockets only.
//
// The WebSocket and event-stream constructors, timers and randomness are injectable, so the
// logic can be tested with fake sockets.

import { APPLIED, GAP } from "./feed-state.js";
import { SseSocket } from "./sse-socket.js";

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30000;
export const CONNECT_TIMEOUT_MS = 10000;
export const STABLE_AFTER_MS = 10000;
export const SILENT_HEARTBEATS = 2.5;
// What a close code means (closeAction's answers).
export const RETRY = "retry";
export const RESTART = "restart";
export const STOP = "stop";
// Transports, as #connection's data-transport says them.
export const WS = "ws";
export const SSE = "sse";
// Websocket attempts in a row that failed before opening, before one attempt over SSE.
export const WS_FAILURES_BEFORE_SSE = 2;
// While on SSE, a websocket is tried again in the background this often.
export const WS_RETRY_MS = 3 * 60 * 1000;

/**
 * Which transport the next connect uses. Websocket first; once `failures` websocket attempts in
 * a row failed before opening (counted only while the browser says it is online: with no
 * network everything fails), every other attempt is SSE, until one stream opens: then SSE, until
 * a websocket is live again (`opened(WS)`). A websocket that opened and dropped later is the
 * network's doing, not a proxy's: it resets the count.
 */
export class TransportChoice {
  constructor({ failures = WS_FAILURES_BEFORE_SSE } = {}) {
    this.failures = failures;
    this.current = WS; // the transport of the last connection that opened
    this.wsFailures = 0;
    this.last = null; // the transport of the last attempt
  }

  next() {
    if (this.current === SSE) return SSE;
    return this.wsFailures >= this.failures && this.last !== SSE ? SSE : WS;
  }

  /** An attempt over `transport` ended; `opened`: it had opened first. */
  ended(transport, { opened, online = true }) {
    this.last = transport;
    if (transport !== WS) return;
    if (opened) this.wsFailures = 0;
    else if (online) this.wsFailures += 1;
  }

  opened(transport) {
    this.current = transport;
    if (transport === WS) this.wsFailures = 0;
  }
}

/** The wait before reconnect attempt `attempt` (0-based): full jitter under a doubling cap. */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return random() * ceiling;
}

function defaultUrl(slug) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/liveblog/${encodeURIComponent(slug)}/`;
}

export class FeedConnection {
  /**
   * @param {object} options
   * @param {string} options.slug
   * @param {import("./feed-state.js").FeedState} options.state
   * @param {() => void} options.onReset      the state was replaced by a snapshot
   * @param {(change: object) => void} options.onChange  one event applied
   * @param {(state: string) => void} options.onState  connecting | live | reconnecting | offline
   *   | closed (stopped for good: `closeAction` said "stop")
   * @param {(frame: object) => void} [options.onHello]  each connection's `hello`
   * @param {(code: number) => string} [options.closeAction]  what the server's close code means:
   *   "retry" (back off and reconnect), "restart" (reconnect without `since`: the position held
   *   belongs to a log this connection no longer follows) or "stop" (never reconnect)
   * @param {object} [options.fallback]  SSE where websockets fail (the reader; null: websockets
   *   only): {url: the event stream's URL without query, failures?, wsRetryMs?, createStream?}
   * @param {(transport: string) => void} [options.onTransport]  "ws" | "sse": the transport of
   *   the connection that opened last
   */
  constructor({
    slug, state, onReset, onChange, onState,
    onHello = () => {},
    closeAction = () => RETRY,
    url = null,
    createSocket = (address) => new WebSocket(address),
    timers = globalThis,
    random = Math.random,
    isOnline = () => navigator.onLine !== false,
    fallback = null,
    onTransport = () => {},
  }) {
    this.baseUrl = url ?? defaultUrl(slug);
    this.state = state;
    this.onReset = onReset;
    this.onChange = onChange;
    this.onState = onState;
    this.onHello = onHello;
    this.closeAction = closeAction;
    this.createSocket = createSocket;
    this.timers = timers;
    this.random = random;
    this.isOnline = isOnline;
    this.socket = null;
    this.status = null;
    this.attempt = 0;
    this.heartbeatMs = 15000;
    this.retryTimer = null;
    this.watchdog = null;
    this.stableTimer = null;
    this.resyncFrom = null; // the since of a resync asked for and not yet answered
    this.fromScratch = false; // the next connect asks for a snapshot, whatever the state holds
    this.stopped = false;
    this.fallback = fallback && {
      failures: WS_FAILURES_BEFORE_SSE,
      wsRetryMs: WS_RETRY_MS,
      createStream: (address) => new SseSocket(address),
      ...fallback,
    };
    this.onTransport = onTransport;
    this.choice = new TransportChoice({ failures: this.fallback?.failures });
    this.transport = null; // the socket's transport
    this.opened = false; // the socket has opened
    this.shownTransport = null;
    // While on SSE: the websocket tried in the background, the frames it got before its `live`,
    // the epoch it asked from, and its timers.
    this.probe = null;
    this.probeFrames = [];
    this.probeEpoch = null;
    this.probeTimer = null;
    this.probeWatchdog = null;
  }

  /** Connect, and follow the browser's network and visibility changes. */
  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => {
      if (this.stopped) return;
      if (!this.socket || this.status !== "live") this.setStatus("offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  url(transport = WS) {
    const base = transport === SSE ? this.fallback.url : this.baseUrl;
    const { seq, epoch } = this.state;
    if (seq === null || this.fromScratch) return base;
    const query = new URLSearchParams({ since: String(seq) });
    if (epoch) query.set("epoch", epoch);
    return `${base}?${query}`;
  }

  /** A new socket over `transport`, at the current position (throws as `new WebSocket` can). */
  open(transport) {
    const address = this.url(transport);
    return transport === SSE ? this.fallback.createStream(address) : this.createSocket(address);
  }

  connect({ quietly = false } = {}) {
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket || this.stopped) return; // never two sockets; never after a stop
    if (!quietly) this.setStatus(this.status === null ? "connecting" : this.idleStatus());
    const transport = this.fallback ? this.choice.next() : WS;
    let socket;
    try {
      socket = this.open(transport);
    } catch {
      this.choice.ended(transport, { opened: false, online: this.isOnline() });
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.transport = transport;
    this.opened = false;
    this.resyncFrom = null;
    this.armWatchdog(CONNECT_TIMEOUT_MS);
    socket.addEventListener("open", () => this.socketOpened(socket));
    this.follow(socket);
  }

  /** Listen to the socket this connection holds. */
  follow(socket) {
    socket.addEventListener("message", (message) => this.receive(socket, message));
    socket.addEventListener("close", (event) => this.dropped(socket, event.code));
    socket.addEventListener("error", () => socket.close());
  }

  socketOpened(socket) {
    if (socket !== this.socket) return;
    const fellBack = this.transport === SSE && this.choice.current !== SSE;
    this.opened = true;
    this.choice.opened(this.transport);
    this.showTransport(this.transport);
    // Just fell back: the upgrades may have failed only because nothing answered (a tunnel, a
    // server restart), so the websocket is tried once at once; a proxy that blocks it refuses
    // that one too, and the next try is wsRetryMs later.
    if (this.transport === SSE) this.scheduleProbe(fellBack ? 0 : this.fallback.wsRetryMs);
  }

  showTransport(transport) {
    if (transport === this.shownTransport) return;
    this.shownTransport = transport;
    this.onTransport(transport);
  }

  /** Skip the backoff wait: the network is back or the tab is visible again. */
  reconnectNow() {
    if (this.socket || this.stopped) return;
    this.attempt = 0;
    this.connect();
  }

  idleStatus() {
    return this.isOnline() ? "reconnecting" : "offline";
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.onState(status);
  }

  /** The socket is gone (closed with `code`, failed, or declared dead: no code): wait, then
   *  try again, unless the close code says otherwise. */
  dropped(socket, code = null) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.choice.ended(this.transport, { opened: this.opened, online: this.isOnline() });
    this.timers.clearTimeout(this.watchdog);
    this.timers.clearTimeout(this.stableTimer);
    const action = code === null ? RETRY : this.closeAction(code);
    if (action === STOP) {
      this.stop();
      return;
    }
    if (action === RESTART) {
      this.fromScratch = true;
      this.attempt = 0; // not a failure: the server moved us on
    }
    this.setStatus(this.idleStatus());
    this.scheduleReconnect();
  }

  /** Close for good: no reconnect, whatever the network or the tab does. */
  stop() {
    this.stopped = true;
    this.timers.clearTimeout(this.retryTimer);
    this.timers.clearTimeout(this.watchdog);
    this.timers.clearTimeout(this.stableTimer);
    this.dropProbe();
    this.timers.clearTimeout(this.probeTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) closeQuietly(socket);
    this.setStatus("closed");
  }

  scheduleReconnect() {
    if (this.retryTimer) return;
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.retryTimer = this.timers.setTimeout(() => this.connect(), delay);
  }

  /** Declare the socket dead if nothing arrives within `ms`. */
  armWatchdog(ms) {
    this.timers.clearTimeout(this.watchdog);
    const socket = this.socket;
    this.watchdog = this.timers.setTimeout(() => {
      if (socket !== this.socket) return;
      // A stalled socket can take minutes to report its close: stop waiting for it.
      closeQuietly(socket);
      this.dropped(socket);
    }, ms);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  resync() {
    if (this.resyncFrom === this.state.seq) return; // asked already, from the same place
    if (this.socket?.canSend === false) {
      this.reopen();
      return;
    }
    this.resyncFrom = this.state.seq;
    const { seq, epoch } = this.state;
    this.send({ type: "resync", since: seq ?? 0, ...(epoch ? { epoch } : {}) });
  }

  /** A resync where the socket cannot send (SSE): a new request from the position held, at
   *  once (not a failure: no backoff), the status unchanged until it answers. */
  reopen() {
    const socket = this.socket;
    const from = this.state.seq;
    this.socket = null;
    this.timers.clearTimeout(this.watchdog);
    this.timers.clearTimeout(this.stableTimer);
    closeQuietly(socket);
    this.connect({ quietly: true });
    this.resyncFrom = from; // answered by that stream's `live`
  }

  // --- Back to the websocket, from SSE --------------------------------------------------------

  scheduleProbe(delay = this.fallback.wsRetryMs) {
    if (this.probeTimer || this.probe || this.stopped) return;
    this.probeTimer = this.timers.setTimeout(() => {
      this.probeTimer = null;
      this.startProbe();
    }, delay);
  }

  /** A websocket beside the stream, from the current position. Its frames wait until its
   *  `live`; then it takes over (promote). */
  startProbe() {
    if (this.stopped || this.choice.current !== SSE) return;
    let probe;
    try {
      probe = this.createSocket(this.url(WS));
    } catch {
      this.scheduleProbe();
      return;
    }
    this.probe = probe;
    this.probeFrames = [];
    this.probeEpoch = this.state.epoch;
    this.armProbeWatchdog();
    probe.addEventListener("message", (message) => this.receiveProbe(probe, message));
    probe.addEventListener("close", () => this.probeFailed(probe));
    probe.addEventListener("error", () => this.probeFailed(probe));
  }

  armProbeWatchdog() {
    const probe = this.probe;
    this.timers.clearTimeout(this.probeWatchdog);
    this.probeWatchdog = this.timers.setTimeout(() => this.probeFailed(probe), CONNECT_TIMEOUT_MS);
  }

  receiveProbe(probe, message) {
    if (probe !== this.probe) return;
    this.armProbeWatchdog();
    this.probeFrames.push(message.data);
    if (frameType(message.data) === "live") this.promote(probe);
  }

  /** The websocket is live: it becomes the connection, its held frames apply in order (each
   *  seq once: what the stream applied meanwhile is a duplicate), and the stream closes. */
  promote(probe) {
    const frames = this.probeFrames;
    const epoch = this.probeEpoch;
    this.probe = null;
    this.probeFrames = [];
    this.timers.clearTimeout(this.probeWatchdog);
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const stream = this.socket;
    if (stream) {
      this.socket = null;
      this.timers.clearTimeout(this.watchdog);
      this.timers.clearTimeout(this.stableTimer);
      closeQuietly(stream);
    }
    this.socket = probe;
    this.transport = WS;
    this.opened = true;
    this.choice.opened(WS);
    this.showTransport(WS);
    this.follow(probe);
    // A reset reached the stream after the websocket read its replay: the replayed events
    // belong to the old log (the websocket's own snapshot of the new one follows them).
    let stale = this.state.epoch !== epoch;
    for (const data of frames) {
      const type = frameType(data);
      if (type === "snapshot") stale = false;
      if (!(stale && type === "event")) this.receive(probe, { data });
    }
  }

  probeFailed(probe) {
    if (probe !== this.probe) return;
    this.dropProbe();
    this.scheduleProbe();
  }

  dropProbe() {
    const probe = this.probe;
    this.probe = null;
    this.probeFrames = [];
    this.timers.clearTimeout(this.probeWatchdog);
    if (probe) closeQuietly(probe);
  }

  receive(socket, message) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    this.armWatchdog(this.heartbeatMs * SILENT_HEARTBEATS);
    switch (frame.type) {
      case "hello":
        this.heartbeatMs = Math.max(0.05, frame.heartbeat) * 1000;
        this.armWatchdog(this.heartbeatMs * SILENT_HEARTBEATS);
        this.onHello(frame);
        break;
      case "snapshot":
        this.fromScratch = false;
        this.state.applySnapshot(frame);
        this.onReset();
        break;
      case "event":
        this.applyEvent(frame);
        break;
      case "live":
        this.resyncFrom = null;
        this.setStatus("live");
        this.timers.clearTimeout(this.stableTimer);
        this.stableTimer = this.timers.setTimeout(() => { this.attempt = 0; }, STABLE_AFTER_MS);
        break;
      case "ping":
        if (this.state.seq !== null && frame.head > this.state.seq) this.resync();
        break;
      case "error":
        console.warn("liveblog:", frame.code, frame.detail);
        break;
      default:
        break;
    }
  }

  applyEvent(frame) {
    const { result, change } = this.state.applyEvent(frame);
    if (result === APPLIED) this.onChange(change);
    else if (result === GAP) this.resync();
  }
}

function frameType(data) {
  try {
    return JSON.parse(data).type;
  } catch {
    return null;
  }
}

function closeQuietly(socket) {
  try { socket.close(); } catch { /* already closing */ }
}
