// One websocket to a blog's feed, kept alive over a bad network.
//
// Applies frames strictly in seq order: an event at or below the last seq is a duplicate and is
// ignored; one beyond last+1 is a gap, never applied: the connection asks for a resync from the
// last seq instead. Reconnects with full-jitter exponential backoff, treats a socket silent for
// 2.5 heartbeats as dead, and never holds two sockets at once.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
const CONNECT_TIMEOUT_MS = 10000;
const STABLE_AFTER_MS = 10000; // a connection live this long resets the backoff
const SILENCE_HEARTBEATS = 2.5;

export class FeedConnection {
  /**
   * @param {object} options
   * @param {string} options.slug
   * @param {string|null} options.epoch  epoch of the seq below (null: none known)
   * @param {number|null} options.seq    last applied seq (null: start from a snapshot)
   * @param {(frame: object) => void} options.onSnapshot
   * @param {(frame: object) => void} options.onEvent
   * @param {(state: string) => void} options.onState  connecting | live | reconnecting | offline
   */
  constructor({ slug, epoch, seq, onSnapshot, onEvent, onState }) {
    this.slug = slug;
    this.epoch = epoch;
    this.seq = seq;
    this.onSnapshot = onSnapshot;
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.state = null;
    this.attempt = 0;
    this.heartbeatMs = 15000;
    this.retryTimer = null;
    this.watchdog = null;
    this.stableTimer = null;
    this.resyncFrom = null; // the since of a resync we asked for and still wait on
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.setState("offline"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams();
    if (this.seq !== null) {
      params.set("since", String(this.seq));
      if (this.epoch) params.set("epoch", this.epoch);
    }
    const query = params.toString();
    return `${scheme}://${location.host}/ws/liveblog/${encodeURIComponent(this.slug)}/${query ? `?${query}` : ""}`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket) return; // never two sockets
    this.setState(this.attempt === 0 && this.state === null ? "connecting" : this.idleState());
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.resyncFrom = null;
    this.armWatchdog(CONNECT_TIMEOUT_MS);
    socket.addEventListener("message", (message) => this.receive(socket, message));
    socket.addEventListener("close", () => this.closed(socket));
    socket.addEventListener("error", () => socket.close());
  }

  /** Skip the backoff wait: the network is back or the tab is visible again. */
  reconnectNow() {
    if (this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  idleState() {
    return navigator.onLine === false ? "offline" : "reconnecting";
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  closed(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearTimeout(this.watchdog);
    clearTimeout(this.stableTimer);
    this.setState(this.idleState());
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.retryTimer) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = Math.random() * ceiling; // full jitter: a crowd does not return in lockstep
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Close a socket that has been silent too long; the close handler reconnects. */
  armWatchdog(ms) {
    clearTimeout(this.watchdog);
    const socket = this.socket;
    this.watchdog = setTimeout(() => {
      if (socket !== this.socket) return;
      this.socket = null; // a dead socket may take minutes to report its close
      try { socket.close(); } catch (error) { /* already closing */ }
      this.setState(this.idleState());
      this.scheduleReconnect();
    }, ms);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
    }
  }

  resync() {
    if (this.resyncFrom === this.seq) return; // already asked from here
    this.resyncFrom = this.seq;
    this.send({ type: "resync", since: this.seq ?? 0, ...(this.epoch ? { epoch: this.epoch } : {}) });
  }

  receive(socket, message) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    this.armWatchdog(this.heartbeatMs * SILENCE_HEARTBEATS);
    switch (frame.type) {
      case "hello":
        this.heartbeatMs = Math.max(1, frame.heartbeat) * 1000;
        this.armWatchdog(this.heartbeatMs * SILENCE_HEARTBEATS);
        break;
      case "snapshot":
        this.epoch = frame.epoch;
        this.seq = frame.head;
        this.onSnapshot(frame);
        break;
      case "event":
        this.applyEvent(frame);
        break;
      case "live":
        this.resyncFrom = null;
        this.setState("live");
        clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => { this.attempt = 0; }, STABLE_AFTER_MS);
        if (frame.head > this.seq) this.resync();
        break;
      case "ping":
        if (this.seq !== null && frame.head > this.seq) this.resync();
        break;
      case "error":
        console.warn("liveblog:", frame.code, frame.detail);
        break;
      default:
        break;
    }
  }

  applyEvent(frame) {
    if (this.seq === null) return; // no base to apply to: a snapshot comes first
    if (frame.seq <= this.seq) return; // seen already
    if (frame.seq !== this.seq + 1) {
      this.resync(); // a gap: never apply out of order
      return;
    }
    this.seq = frame.seq;
    this.onEvent(frame);
  }
}
