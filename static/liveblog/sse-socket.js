// A Server-Sent Events stream that looks to FeedConnection like a websocket, for networks that
// refuse the websocket upgrade while plain HTTP works (feed-connection.js picks it).
//
// The server sends each websocket frame as the `data:` of one SSE message (default event type),
// so `message` events carry the same JSON. What differs, and how it is hidden:
//
// - No client→server channel: `canSend` is false and `send()` throws. FeedConnection turns a
//   resync into a reconnect with `since`/`epoch` instead; the server answers it with the replay.
// - EventSource retries by itself after an error, with the first URL (a stale `since`) or a
//   `Last-Event-ID`, on its own timer. Here an error ends the stream for good: the EventSource is
//   closed, `error` then `close` (code 1006) are dispatched, and FeedConnection's own jittered
//   backoff reconnects with its position — one retry policy for both transports.
// - `close()` from the caller closes quietly (no `close` event): FeedConnection already let go
//   of a socket it closes itself (the watchdog, a stop, a switch back to the websocket).
//
// `readyState` follows WebSocket's numbers: 0 connecting, 1 open (the server answered 200 with
// an event stream), 3 closed.

export const SSE_CLOSED_CODE = 1006; // what a websocket reports for a connection lost

export class SseSocket extends EventTarget {
  /**
   * @param {string} url
   * @param {(url: string) => EventSource} [createEventSource]  injectable for tests
   */
  constructor(url, createEventSource = (address) => new EventSource(address)) {
    super();
    this.url = url;
    this.readyState = 0;
    this.canSend = false;
    this.source = createEventSource(url);
    this.source.addEventListener("open", () => this.opened());
    this.source.addEventListener("message", (message) => this.received(message));
    this.source.addEventListener("error", () => this.failed());
  }

  opened() {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    this.dispatchEvent(new Event("open"));
  }

  received(message) {
    if (this.readyState === 3) return; // a message queued before close() ran
    if (this.readyState === 0) this.opened();
    this.dispatchEvent(new MessageEvent("message", { data: message.data }));
  }

  /** The stream broke, ended, or was refused (a 4xx/5xx or another content type): give up on it. */
  failed() {
    if (this.readyState === 3) return;
    this.shut();
    this.dispatchEvent(new Event("error"));
    this.dispatchEvent(new CloseEvent("close", { code: SSE_CLOSED_CODE, wasClean: false }));
  }

  shut() {
    this.readyState = 3;
    this.source.close(); // and no automatic retry: FeedConnection decides when
  }

  close() {
    if (this.readyState !== 3) this.shut();
  }

  send() {
    throw new DOMException("an event stream cannot send", "NotSupportedError");
  }
}
