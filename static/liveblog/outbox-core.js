// The author's outbox: writes waiting to reach the server, kept in IndexedDB, sent one at a time
// in the order they were made. Shared by the author console (imported for its side effect) and
// the service worker (importScripts, for Background Sync), so it is a plain script that defines
// globalThis.LiveblogOutbox and uses no import or export. It needs indexeddb.js (the shared
// IndexedDB helper, globalThis.LiveblogIDB) loaded before it.
//
// Every entry carries a client_id made on the device; the server answers a create it has seen
// with its first answer, edits that change nothing change nothing, and deletes are idempotent:
// sending an entry twice (a lost answer, two senders) never double-posts.
//
// Outcomes of one send:
//   2xx                      -> "sent" (with the seq)
//   no network, 5xx, 408/429 -> back to "queued"; the flush stops (order is kept) and is retried,
//                               not before the answer's Retry-After (a throttle's, or a 503's)
//   401, 403 csrf_failed     -> back to "queued"; the flush stops; the author must sign in again
//   other 4xx                -> "failed" with the server's reason; later entries go on
(function (global) {
  "use strict";

  const DB_NAME = "liveblog-outbox";
  const DB_VERSION = 1;
  const ENTRIES = "entries";
  const META = "meta";
  const SENT_KEPT = 10;
  const LOCK_NAME = "liveblog-outbox";

  if (!global.LiveblogIDB) throw new Error("outbox-core.js needs indexeddb.js loaded first");
  const idb = global.LiveblogIDB;

  let opening = null;
  function database() {
    if (!opening) {
      opening = idb.open(DB_NAME, DB_VERSION, (db) => {
        db.createObjectStore(ENTRIES, { keyPath: "key", autoIncrement: true });
        db.createObjectStore(META);
      });
    }
    return opening;
  }

  async function run(storeName, mode, work) {
    // Writes are strict: an entry is on disk before the author is told it is queued.
    return idb.run(await database(), storeName, mode, work);
  }

  /** All entries, oldest first. */
  function entries() {
    return run(ENTRIES, "readonly", (store) => store.getAll());
  }

  function save(entry) {
    return run(ENTRIES, "readwrite", (store) => store.put(entry));
  }

  function remove(key) {
    return run(ENTRIES, "readwrite", (store) => store.delete(key));
  }

  function getMeta(name) {
    return run(META, "readonly", (store) => store.get(name));
  }

  function setMeta(name, value) {
    return run(META, "readwrite", (store) => store.put(value, name));
  }

  /** Queue a write: {kind: "create"|"edit"|"delete", slug, clientId, postId?, target?, fields,
   *  photo?}. Returns the stored entry (with its key). */
  async function enqueue(entry) {
    const stored = { ...entry, state: "queued", detail: "", seq: null, createdAt: Date.now() };
    stored.key = await save(stored);
    return stored;
  }

  /** Seconds to wait from a Retry-After value (seconds or an HTTP date); 0 when absent. */
  function retryAfterSeconds(value, now = Date.now()) {
    if (!value) return 0;
    if (/^\s*\d+\s*$/.test(value)) return Number(value);
    const at = Date.parse(value);
    return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - now) / 1000));
  }

  function apiBase(slug) {
    return `/api/liveblog/${encodeURIComponent(slug)}`;
  }

  /** The post an edit or delete is about: its id, or that of the queued create it follows. */
  function targetId(entry, all) {
    if (entry.postId) return entry.postId;
    const create = all.find((other) => other.kind === "create" && other.clientId === entry.target);
    return create && create.state === "sent" ? create.postId : null;
  }

  function requestFor(entry, all, token) {
    const headers = { "X-CSRFToken": token || "" };
    if (entry.kind === "create") {
      const url = `${apiBase(entry.slug)}/posts`;
      if (entry.photo) {
        const form = new FormData();
        form.set("client_id", entry.clientId);
        form.set("body", entry.fields.body);
        form.set("key_event", String(Boolean(entry.fields.key_event)));
        form.set("pinned", String(Boolean(entry.fields.pinned)));
        form.set("photo_alt", entry.fields.photo_alt || "");
        form.set("photo", entry.photo, entry.photoName || "photo.jpg");
        return { url, init: { method: "POST", headers, body: form } };
      }
      const body = JSON.stringify({ client_id: entry.clientId, ...entry.fields });
      return {
        url, init: { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body },
      };
    }
    const postId = targetId(entry, all);
    if (postId === null) return null;
    const url = `${apiBase(entry.slug)}/posts/${postId}`;
    if (entry.kind === "delete") return { url, init: { method: "DELETE", headers } };
    return {
      url,
      init: {
        method: "PATCH",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify(entry.fields),
      },
    };
  }

  async function send(entry, all, token) {
    const request = requestFor(entry, all, token);
    if (request === null) return { ok: false, detail: "the post it changes was never published" };
    let response;
    try {
      response = await fetch(request.url, { ...request.init, credentials: "same-origin" });
    } catch {
      return { retry: true, detail: "no network, will retry" };
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch { /* a proxy's HTML error page */ }
    if (response.ok) {
      return { ok: true, seq: answer.seq ?? null, postId: answer.post ? answer.post.id : null };
    }
    if (response.status === 401 || (response.status === 403 && answer.error === "csrf_failed")) {
      return { retry: true, needsLogin: true, detail: "waiting for you to sign in again" };
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      return {
        retry: true,
        retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
        detail: `server busy (${response.status}), will retry`,
      };
    }
    return { ok: false, detail: answer.detail || `refused (${response.status})` };
  }

  async function forgetOldSent() {
    const sent = (await entries()).filter((entry) => entry.state === "sent");
    for (const entry of sent.slice(0, Math.max(0, sent.length - SENT_KEPT))) {
      await remove(entry.key);
    }
  }

  async function withLock(work) {
    // One sender at a time across the page and the service worker (they share the origin).
    if (global.navigator && navigator.locks) return navigator.locks.request(LOCK_NAME, work);
    return work();
  }

  /**
   * Send everything queued, oldest first. Resolves {retry, needsLogin}: retry is true when a
   * send must be tried again later (the flush stopped there to keep the order).
   * `onChange(entry)` is told of every state change.
   */
  function flush(onChange = () => {}) {
    return withLock(async () => {
      const token = await getMeta("csrf");
      for (;;) {
        const all = await entries();
        // "sending" left over from a page closed mid-send is sent again: that is safe.
        const entry = all.find((item) => item.state === "queued" || item.state === "sending");
        if (!entry) {
          await setMeta("needsLogin", false);
          return { retry: false, needsLogin: false };
        }
        entry.state = "sending";
        await save(entry);
        onChange(entry);
        const outcome = await send(entry, all, token);
        if (outcome.retry) {
          entry.state = "queued";
          entry.detail = outcome.detail;
          await save(entry);
          await setMeta("needsLogin", Boolean(outcome.needsLogin));
          onChange(entry);
          return {
            retry: true, needsLogin: Boolean(outcome.needsLogin), retryAfter: outcome.retryAfter || 0,
          };
        }
        entry.state = outcome.ok ? "sent" : "failed";
        entry.detail = outcome.ok ? "" : outcome.detail;
        entry.seq = outcome.ok ? outcome.seq : null;
        if (outcome.ok && outcome.postId) entry.postId = outcome.postId;
        if (outcome.ok) delete entry.photo; // on the server now; a refused one may be retried
        await save(entry);
        onChange(entry);
        await forgetOldSent();
      }
    });
  }

  global.LiveblogOutbox = {
    enqueue, entries, save, remove, flush, getMeta, setMeta, retryAfterSeconds,
    setToken: (token) => setMeta("csrf", token),
  };
})(globalThis);
