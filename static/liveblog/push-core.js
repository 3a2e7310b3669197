// Web Push, the parts the reader page (push.js) and the service worker (templates/pwa/sw.js)
// share: the device's record of the blogs it asked notifications for, the calls to the blog's
// push endpoint, and what a push shows. A classic script, like outbox-core.js, so that the worker
// can `importScripts` it (after indexeddb.js) and a module can `import` it for its side effect:
// it defines globalThis.LiveblogPush and nothing else.
//
// The record is the device's, never a user's: a slug and the push endpoint it was sent, nothing
// about who was signed in (a shared phone). It lives in IndexedDB rather than localStorage
// because the worker needs it too: when the browser replaces a subscription
// (`pushsubscriptionchange`) the worker tells every recorded blog the new endpoint.
(function (global) {
  "use strict";

  const IDB = global.LiveblogIDB;
  const DB_NAME = "liveblog-push";
  const STORE = "blogs";
  const GENERIC_TITLE = "Liveblog";
  const GENERIC_BODY = "A new key event";

  let opening = null;

  function db() {
    opening ??= IDB.open(DB_NAME, 1, (database) => {
      database.createObjectStore(STORE, { keyPath: "slug" });
    }).catch((error) => {
      opening = null; // a later call may succeed (storage freed, private mode left)
      throw error;
    });
    return opening;
  }

  /** The blogs this device asked notifications for: {slug, endpoint} each. */
  const blogs = Object.freeze({
    async all() {
      return IDB.run(await db(), STORE, "readonly", (store) => store.getAll());
    },
    async put(slug, endpoint) {
      await IDB.run(await db(), STORE, "readwrite", (store) => store.put({ slug, endpoint }));
    },
    async remove(slug) {
      await IDB.run(await db(), STORE, "readwrite", (store) => store.delete(slug));
    },
    async clear() {
      await IDB.run(await db(), STORE, "readwrite", (store) => store.clear());
    },
  });

  class PushRequestError extends Error {
    constructor(status, code) {
      super(`the push endpoint answered ${status}${code ? ` (${code})` : ""}`);
      this.name = "PushRequestError";
      this.status = status;
      this.code = code;
    }
  }

  /**
   * POST (subscribe) or DELETE (unsubscribe) on the blog's push endpoint; resolves with the JSON
   * answer, rejects with a PushRequestError. No cookies: the server keeps a subscription for the
   * browser's push endpoint, never for an account, and no CSRF token is needed (a JSON body
   * from this origin; /work/18-spec.md "Decisions").
   */
  async function send(fetchImpl, slug, method, body) {
    const response = await fetchImpl(`/api/liveblog/${encodeURIComponent(slug)}/push`, {
      method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new PushRequestError(response.status, answer.error);
    return answer;
  }

  /**
   * The subscription changed under recorded blogs (the browser renewed it, or the server's key
   * changed): give each blog recorded with another endpoint the new one, and drop the old.
   * Best effort per blog; resolves with the slugs that failed.
   */
  async function moveBlogs(fetchImpl, subscription, record = blogs) {
    const failed = [];
    for (const { slug, endpoint } of await record.all()) {
      if (endpoint === subscription.endpoint) continue;
      try {
        await send(fetchImpl, slug, "POST", subscription.toJSON());
        await record.put(slug, subscription.endpoint);
        if (endpoint) await send(fetchImpl, slug, "DELETE", { endpoint });
      } catch {
        failed.push(slug);
      }
    }
    return failed;
  }

  /** A URL of this origin (path, query and fragment), or null. */
  function localUrl(value, origin) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, origin);
      return url.origin === origin ? `${url.pathname}${url.search}${url.hash}` : null;
    } catch {
      return null;
    }
  }

  /** An image the notification may load: this origin's or https (a media host), else null. */
  function imageUrl(value, origin) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, origin);
      return url.origin === origin || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  /**
   * What a push shows: {title, options} for registration.showNotification. `payload` is the
   * decrypted JSON ({blog, title, post, seq, text, image, url}), or anything else when it could
   * not be read; a push must always show something (userVisibleOnly), so that is a generic
   * notification opening the blog list. One tag per blog: a burst of key events replaces the
   * previous notification instead of piling up, and renotify still alerts for each.
   */
  function notification(payload, { origin, icon, badge }) {
    const blog = payload && typeof payload === "object" && typeof payload.blog === "string"
      && payload.blog ? payload.blog : null;
    if (!blog) {
      return {
        title: GENERIC_TITLE,
        options: { body: GENERIC_BODY, icon, badge, tag: "liveblog", renotify: true, data: { url: "/" } },
      };
    }
    const page = `/liveblog/${encodeURIComponent(blog)}/`;
    const options = {
      body: typeof payload.text === "string" ? payload.text : "",
      icon,
      badge,
      tag: `liveblog-${blog}`,
      renotify: true,
      data: { url: localUrl(payload.url, origin) ?? page, blog, post: payload.post ?? null },
    };
    const image = imageUrl(payload.image, origin);
    if (image) options.image = image;
    const title = typeof payload.title === "string" && payload.title ? payload.title : GENERIC_TITLE;
    return { title, options };
  }

  global.LiveblogPush = Object.freeze({
    blogs, send, moveBlogs, notification, localUrl, PushRequestError,
  });
})(globalThis);
