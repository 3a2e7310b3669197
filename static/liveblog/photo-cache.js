// The photos a reader has seen, kept for reading offline: the service worker answers MEDIA_URL
// requests through `respond` (cache first), and the reader's local copy (feed-store.js) calls
// `evictBlog` when it forgets a blog. Shared by both, so it is a plain script that defines
// globalThis.LiveblogPhotos and uses no import or export. It needs indexeddb.js (the shared
// IndexedDB helper, globalThis.LiveblogIDB) loaded before it.
//
// Photos are cached as the reader views them (the page keeps `loading="lazy"`): nothing is
// fetched that the reader did not scroll to. The bodies live in Cache Storage; a small index in
// IndexedDB ({url, slug, bytes, usedAt}) lets the bounds be kept without reading any body.
// Bounds (count and bytes, least recently used first) come from the server's settings
// (LIVEBLOG_OFFLINE_PHOTOS, LIVEBLOG_OFFLINE_PHOTO_BYTES, rendered into the worker; their
// reasons are written there, in project/settings.py).
(function (global) {
  "use strict";

  const CACHE_NAME = "liveblog-photos";
  const DB_NAME = "liveblog-photos";
  const DB_VERSION = 1;
  const PHOTOS = "photos";
  // A photo served from the cache gets a new usedAt at most once a minute (per worker: the
  // first use from the cache after the worker starts writes it): least recently used needs
  // minutes, not milliseconds, and a feed scrolled up and down would otherwise write to
  // IndexedDB for every image painted.
  const TOUCH_EVERY_MS = 60 * 1000;
  // liveblog/photos/<slug>/<random stem>-<width>.jpg, below MEDIA_URL (liveblog/photos.py).
  const VARIANT = /\/liveblog\/photos\/([^/]+)\/([^/]+)-(\d+)\.jpg$/;

  if (!global.LiveblogIDB) throw new Error("photo-cache.js needs indexeddb.js loaded first");
  const idb = global.LiveblogIDB;

  /** {slug, photo, width} of a photo variant's URL, or null for any other URL. `photo` names
   *  the photo (every width of it shares it). */
  function variantOf(url) {
    const match = VARIANT.exec(new URL(url, "http://any.invalid").pathname);
    if (!match) return null;
    const [, slug, stem, width] = match;
    return { slug, photo: `${slug}/${stem}`, width: Number(width) }; // slugs are ASCII
  }

  /** Among `urls`, the other width of the same photo as `wanted` that best stands in for it:
   *  the narrowest at least as wide (sharp enough), else the widest narrower one; or null. */
  function nearestVariant(wanted, urls) {
    const target = variantOf(wanted);
    if (!target) return null;
    const same = urls
      .map((url) => ({ url, variant: variantOf(url) }))
      .filter(({ variant }) => variant && variant.photo === target.photo);
    const wider = same.filter(({ variant }) => variant.width >= target.width)
      .sort((a, b) => a.variant.width - b.variant.width);
    const narrower = same.filter(({ variant }) => variant.width < target.width)
      .sort((a, b) => b.variant.width - a.variant.width);
    return (wider[0] ?? narrower[0])?.url ?? null;
  }

  /** The URLs to evict so that `rows` ({url, bytes, usedAt}) keep within `maxPhotos` and
   *  `maxBytes`: the least recently used first. */
  function evictions(rows, { maxPhotos, maxBytes }) {
    const oldestFirst = [...rows].sort((a, b) => a.usedAt - b.usedAt);
    let count = rows.length;
    let bytes = rows.reduce((total, row) => total + row.bytes, 0);
    const evicted = [];
    for (const row of oldestFirst) {
      if (count <= maxPhotos && bytes <= maxBytes) break;
      evicted.push(row.url);
      count -= 1;
      bytes -= row.bytes;
    }
    return evicted;
  }

  let opening = null;
  function database() {
    if (!opening) {
      opening = idb.open(DB_NAME, DB_VERSION, (db) => {
        const photos = db.createObjectStore(PHOTOS, { keyPath: "url" });
        photos.createIndex("usedAt", "usedAt");
        photos.createIndex("slug", "slug");
      });
    }
    return opening;
  }

  async function run(mode, work) {
    return idb.run(await database(), PHOTOS, mode, work);
  }

  /** Every index row ({url, slug, bytes, usedAt}), least recently used first. */
  function entries() {
    return run("readonly", (photos) => photos.index("usedAt").getAll());
  }

  // One change to the cache and its index at a time (this worker's), so a trim never sees a
  // photo half stored.
  let queue = Promise.resolve();
  function serially(work) {
    const next = queue.then(work, work);
    queue = next.catch(() => {});
    return next;
  }

  /** A complete, same-origin answer: not an error, an opaque answer, a redirect or a range. */
  function keepable(response) {
    return response.status === 200 && response.type === "basic" && !response.redirected;
  }

  async function forget(cache, urls) {
    await Promise.all(urls.map((url) => cache.delete(url)));
    await run("readwrite", (photos) => { for (const url of urls) photos.delete(url); });
  }

  /** Evict beyond the bounds, and cached bodies the index does not know (a worker stopped
   *  between storing a body and writing its row). */
  async function trim(cache, bounds) {
    const rows = await entries();
    await forget(cache, evictions(rows, bounds));
    const indexed = new Set(rows.map((row) => row.url));
    const orphans = (await cache.keys()).filter((request) => !indexed.has(request.url));
    await Promise.all(orphans.map((request) => cache.delete(request)));
  }

  async function store(url, response, bounds) {
    const body = await response.blob();
    const cache = await caches.open(CACHE_NAME);
    await cache.put(url, new Response(body, { status: 200, headers: response.headers }));
    const { slug } = variantOf(url) ?? { slug: "" };
    await run("readwrite", (photos) => photos.put({ url, slug, bytes: body.size, usedAt: Date.now() }));
    await trim(cache, bounds);
  }

  const touchedAt = new Map(); // url -> when its usedAt was last written (this worker's life)
  function touch(url) {
    const now = Date.now();
    if (now - (touchedAt.get(url) ?? 0) < TOUCH_EVERY_MS) return Promise.resolve();
    if (touchedAt.size > 10000) touchedAt.clear(); // a long-lived worker: start counting again
    touchedAt.set(url, now);
    return serially(() => run("readwrite", (photos) => {
      const reading = photos.get(url);
      reading.onsuccess = () => {
        if (reading.result) photos.put({ ...reading.result, usedAt: now });
      };
    }));
  }

  /** A cached width of the same photo, for when the network fails. */
  async function nearestCached(cache, url) {
    const cachedUrls = (await cache.keys()).map((request) => request.url);
    const nearest = nearestVariant(url, cachedUrls);
    return nearest ? cache.match(nearest, { ignoreVary: true }) : null;
  }

  /**
   * The service worker's answer to a photo request: the cached copy; else the network's,
   * stored (then trimmed to `bounds` = {maxPhotos, maxBytes}) in the background through
   * `waitUntil`; with no network, a cached width of the same photo; else the network error.
   */
  async function respond(request, bounds, waitUntil) {
    const cache = await caches.open(CACHE_NAME);
    // A photo URL names one immutable file: whatever a server's Vary says, the copy is it.
    const cached = await cache.match(request, { ignoreVary: true });
    if (cached) {
      waitUntil(touch(request.url).catch((error) => console.warn("liveblog: photo use not noted", error)));
      return cached;
    }
    let response;
    try {
      response = await fetch(request);
    } catch (error) {
      const nearest = await nearestCached(cache, request.url);
      if (nearest) return nearest;
      throw error;
    }
    if (keepable(response)) {
      const copy = response.clone();
      waitUntil(serially(() => store(request.url, copy, bounds))
        .catch((error) => console.warn("liveblog: photo not kept offline", error)));
    }
    return response;
  }

  /** Forget a blog's photos (its local copy is gone). */
  async function evictBlog(slug) {
    if (!global.caches) return; // not a secure context: no Cache Storage, nothing was kept
    await serially(async () => {
      const rows = await run("readonly", (photos) => photos.index("slug").getAll(slug));
      await forget(await caches.open(CACHE_NAME), rows.map((row) => row.url));
    });
  }

  global.LiveblogPhotos = Object.freeze({
    CACHE_NAME, respond, evictBlog, entries, variantOf, nearestVariant, evictions,
  });
})(globalThis);
