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
//   202                      -> "sent" to the desk (a contributor's post, or one to publish
//                               later): the entry keeps the submission's state and id, and
//                               forgets its text and photo. What is on the desk is never left
//                               in IndexedDB (the desk is followed live, from memory only).
//   no network, 5xx, 408/429 -> back to "queued"; the flush stops (order is kept) and is retried,
//                               not before the answer's Retry-After (a throttle's, or a 503's)
//   401, 403 csrf_failed     -> back to "queued"; the flush stops; the author must sign in again
//   403 wrong_user           -> back to "queued"; the flush stops and the sender is forgotten
//   other 4xx                -> "failed" with the server's reason; later entries go on
//
// A phone is shared. Every entry carries its `owner` (the id of the user who wrote it), and only
// the *sender*'s entries are sent: the sender is the user whose console last checked, from the
// page the server rendered for them, who is signed in (`setSender`, with that page's CSRF
// token). Signing out, the service worker seeing a page rendered for someone else, and a
// `wrong_user` answer forget the sender: nothing is sent until a console has checked again. Every
// request also names its owner (`X-Liveblog-User`), and the server refuses it unless that user is
// the one signed in, so not even a race sends one person's post as another's.
(function (global) {
  "use strict";

  // The reasons below are stored in English and translated where they are shown (outbox.js
  // reasonText): this also runs in the service worker, which has no page and no catalog. The
  // marker only lets makemessages find them.
  const gettext_noop = (text) => text;

  const DB_NAME = "liveblog-outbox";
  // Version 2 added owners. Entries from version 1 named nobody: they are dropped at the
  // upgrade rather than risk sending them under the name of whoever signs in next.
  const DB_VERSION = 2;
  const ENTRIES = "entries";
  const META = "meta";
  const SENT_KEPT = 10;
  const LOCK_NAME = "liveblog-outbox";

  if (!global.LiveblogIDB) throw new Error("outbox-core.js needs indexeddb.js loaded first");
  const idb = global.LiveblogIDB;

  let opening = null;
  function database() {
    if (!opening) {
      opening = idb.open(DB_NAME, DB_VERSION, (db, oldVersion, transaction) => {
        if (oldVersion < 1) {
          db.createObjectStore(ENTRIES, { keyPath: "key", autoIncrement: true });
          db.createObjectStore(META);
        } else if (oldVersion < 2) {
          transaction.objectStore(ENTRIES).clear();
          transaction.objectStore(META).clear();
        }
      }).then((db) => {
        // A newer version of the app (a page, or the worker) wants to upgrade: step aside, and
        // open again at the next use, rather than block it until this page closes.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        return db;
      });
    }
    return opening;
  }

  async function run(storeName, mode, work) {
    // Writes are strict: an entry is on disk before the author is told it is queued.
    return idb.run(await database(), storeName, mode, work);
  }

  /** All entries, oldest first; only `owner`'s when given. */
  async function entries(owner) {
    const all = await run(ENTRIES, "readonly", (store) => store.getAll());
    return owner === undefined ? all : all.filter((entry) => entry.owner === owner);
  }

  /** `owner`'s entries not yet on the server (queued, sending, or refused and kept). */
  async function unsent(owner) {
    return (await entries(owner)).filter((entry) => entry.state !== "sent");
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

  function deleteMeta(name) {
    return run(META, "readwrite", (store) => store.delete(name));
  }

  /** Queue a write: {kind: "create"|"edit"|"delete", owner, slug, clientId, postId?, target?,
   *  fields, photo?}. Returns the stored entry (with its key). */
  async function enqueue(entry) {
    if (!entry.owner) throw new Error("an outbox entry needs its owner");
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
    const headers = { "X-CSRFToken": token || "", "X-Liveblog-User": entry.owner };
    if (entry.kind === "create") {
      const url = `${apiBase(entry.slug)}/posts`;
      if (entry.photo) {
        const form = new FormData();
        form.set("client_id", entry.clientId);
        form.set("body", entry.fields.body);
        form.set("key_event", String(Boolean(entry.fields.key_event)));
        form.set("pinned", String(Boolean(entry.fields.pinned)));
        form.set("photo_alt", entry.fields.photo_alt || "");
        if (entry.fields.publish_at) form.set("publish_at", entry.fields.publish_at);
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
    if (request === null) return { ok: false, detail: gettext_noop("the post it changes was never published") };
    let response;
    try {
      response = await fetch(request.url, { ...request.init, credentials: "same-origin" });
    } catch {
      return { retry: true, detail: gettext_noop("no network, will retry") };
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch { /* a proxy's HTML error page */ }
    if (response.status === 202 && answer.post) {
      return {
        ok: true, seq: null, desk: answer.post.state, submissionId: answer.post.id,
        publishAt: answer.post.publish_at ?? null,
      };
    }
    if (response.ok) {
      return { ok: true, seq: answer.seq ?? null, postId: answer.post ? answer.post.id : null };
    }
    if (response.status === 403 && answer.error === "wrong_user") {
      return { retry: true, wrongUser: true, needsLogin: true, detail: gettext_noop("waiting for its author to sign in") };
    }
    if (response.status === 401 || (response.status === 403 && answer.error === "csrf_failed")) {
      return { retry: true, needsLogin: true, detail: gettext_noop("waiting for you to sign in again") };
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      return {
        retry: true,
        retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
        detail: gettext_noop("server busy (%(status)s), will retry").replace("%(status)s", response.status),
      };
    }
    return {
      ok: false, error: answer.error,
      detail: answer.detail || gettext_noop("refused (%(status)s)").replace("%(status)s", response.status),
    };
  }

  async function forgetOldSent(owner) {
    const sent = (await entries(owner)).filter((entry) => entry.state === "sent");
    for (const entry of sent.slice(0, Math.max(0, sent.length - SENT_KEPT))) {
      await remove(entry.key);
    }
  }

  async function withLock(work) {
    // One sender at a time across the page and the service worker (they share the origin).
    if (global.navigator && navigator.locks) return navigator.locks.request(LOCK_NAME, work);
    return work();
  }

  /** The user whose entries are sent, and their CSRF token: {user, token}, or undefined. */
  function sender() {
    return getMeta("sender");
  }

  /** A console checked that `user` is signed in: their entries may be sent with `token`. */
  function setSender(user, token) {
    return setMeta("sender", { user: String(user), token });
  }

  /** Nobody's entries are sent until a console checks again. */
  function forgetSender() {
    return deleteMeta("sender");
  }

  /**
   * Send the sender's queued entries, oldest first. Resolves {retry, needsLogin}: retry is true
   * when a send must be tried again later (the flush stopped there to keep the order);
   * needsLogin when there is no sender, or the server wants a new sign-in.
   * `onChange(entry)` is told of every state change.
   */
  function flush(onChange = () => {}) {
    return withLock(async () => {
      const from = await sender();
      if (!from) return { retry: false, needsLogin: true };
      for (;;) {
        const all = await entries(from.user);
        // "sending" left over from a page closed mid-send is sent again: that is safe.
        const entry = all.find((item) => item.state === "queued" || item.state === "sending");
        if (!entry) {
          await setMeta("needsLogin", false);
          return { retry: false, needsLogin: false };
        }
        entry.state = "sending";
        await save(entry);
        onChange(entry);
        const outcome = await send(entry, all, from.token);
        if (outcome.retry) {
          entry.state = "queued";
          entry.detail = outcome.detail;
          await save(entry);
          await setMeta("needsLogin", Boolean(outcome.needsLogin));
          if (outcome.wrongUser) await forgetSender();
          onChange(entry);
          return {
            retry: true, needsLogin: Boolean(outcome.needsLogin), retryAfter: outcome.retryAfter || 0,
          };
        }
        entry.state = outcome.ok ? "sent" : "failed";
        entry.detail = outcome.ok ? "" : outcome.detail;
        entry.error = outcome.ok ? undefined : outcome.error; // the API's code, for reasonText
        entry.seq = outcome.ok ? outcome.seq : null;
        if (outcome.ok && outcome.postId) entry.postId = outcome.postId;
        if (outcome.ok) delete entry.photo; // on the server now; a refused one may be retried
        if (outcome.ok && outcome.desk) {
          // On the desk now, which is never kept on the device: keep only what it became.
          entry.desk = outcome.desk;
          entry.submissionId = outcome.submissionId;
          entry.publishAt = outcome.publishAt;
          entry.fields = {};
        }
        await save(entry);
        onChange(entry);
        await forgetOldSent(from.user);
      }
    });
  }

  /**
   * `owner` signs out on this device: their sent entries are forgotten (their text is not left
   * for the next person), and their unsent ones too unless they are kept; kept entries stay
   * invisible and unsent until the same user's console sets them as the sender again.
   */
  function signOut(owner, { keepUnsent }) {
    return withLock(async () => {
      const from = await sender();
      if (from && from.user === owner) await forgetSender();
      for (const entry of await entries(owner)) {
        if (entry.state === "sent" || !keepUnsent) await remove(entry.key);
      }
    });
  }

  global.LiveblogOutbox = {
    enqueue, entries, unsent, save, remove, flush, getMeta, setMeta, deleteMeta, retryAfterSeconds,
    sender, setSender, forgetSender, signOut,
  };
})(globalThis);
