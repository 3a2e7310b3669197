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
//
// The WebSocket constructor, timers and randomness are injectable, so the logic can be tested
// with a fake socket.

import { APPLIED, GAP } from "./feed-state.js";

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30000;
export const CONNECT_TIMEOUT_MS = 10000;
export const STABLE_AFTER_MS = 10000;
export const SILENT_HEARTBEATS = 2.5;

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
   */
  constructor({
    slug, state, onReset, onChange, onState,
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
  }

  /** Connect, and follow the browser's network and visibility changes. */
  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => {
      if (!this.socket || this.status !== "live") this.setStatus("offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  url() {
    const { seq, epoch } = this.state;
    if (seq === null) return this.baseUrl;
    const query = new URLSearchParams({ since: String(seq) });
    if (epoch) query.set("epoch", epoch);
    return `${this.baseUrl}?${query}`;
  }

  connect() {
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket) return; // never two sockets
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
    socket.addEventListener("close", () => this.dropped(socket));
    socket.addEventListener("error", () => socket.close());
  }

  /** Skip the backoff wait: the network is back or the tab is visible again. */
  reconnectNow() {
    if (this.socket) return;
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

  /** The socket is gone (closed, failed, or declared dead): wait, then try again. */
  dropped(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.timers.clearTimeout(this.watchdog);
    this.timers.clearTimeout(this.stableTimer);
    this.setStatus(this.idleStatus());
    this.scheduleReconnect();
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
        break;
      case "snapshot":
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
