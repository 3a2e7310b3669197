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
// The WebSocket constructor, timers and randomness are injectable, so the logic can be tested
// with a fake socket.

import { APPLIED, GAP } from "./feed-state.js";

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30000;
export const CONNECT_TIMEOUT_MS = 10000;
export const STABLE_AFTER_MS = 10000;
export const SILENT_HEARTBEATS = 2.5;
// What a close code means (closeAction's answers).
export const RETRY = "retry";
export const RESTART = "restart";
export const STOP = "stop";

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

  url() {
    const { seq, epoch } = this.state;
    if (seq === null || this.fromScratch) return this.baseUrl;
    const query = new URLSearchParams({ since: String(seq) });
    if (epoch) query.set("epoch", epoch);
    return `${this.baseUrl}?${query}`;
  }

  connect() {
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket || this.stopped) return; // never two sockets; never after a stop
    this.setStatus(this.status === null ? "connecting" : this.idleStatus());
    let socket;
    try {
      socket = this.createSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.resyncFrom = null;
    this.armWatchdog(CONNECT_TIMEOUT_MS);
    socket.addEventListener("message", (message) => this.receive(socket, message));
    socket.addEventListener("close", (event) => this.dropped(socket, event.code));
    socket.addEventListener("error", () => socket.close());
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
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      try { socket.close(); } catch { /* already closing */ }
    }
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
      try { socket.close(); } catch { /* already closing */ }
      this.dropped(socket);
    }, ms);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  resync() {
    if (this.resyncFrom === this.state.seq) return; // asked already, from the same place
    this.resyncFrom = this.state.seq;
    const { seq, epoch } = this.state;
    this.send({ type: "resync", since: seq ?? 0, ...(epoch ? { epoch } : {}) });
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
