/* Liveblog service worker. Served from /sw.js by the pwa app (never HTTP-cached), so a browser
 * finds a new version on its next visit; the version is a digest of the shell below and of this
 * file, so every deploy that changes the app ships a new worker.
 *
 * - The app shell (hashed static files + the offline page) is precached under a versioned cache;
 *   caches of other versions are deleted on activate.
 * - Pages: network first; after a few seconds without an answer (or with no network) the cached
 *   copy; a page never visited falls back to /offline/.
 * - Static files: cache first (their names carry a hash of their content).
 * - API reads of posts and events: network first, cached copy when the network fails.
 * - Websockets are not fetches: a service worker never sees them.
 * - Background Sync sends the author's outbox (outbox-core.js) when the network is back.
 */

// The author's outbox (globalThis.LiveblogOutbox), shared with the console, and the IndexedDB
// helper it uses (globalThis.LiveblogIDB), shared with the pages; the photos kept offline
// (globalThis.LiveblogPhotos), shared with the reader's local copy.
importScripts({{ indexeddb_json|safe }}, {{ outbox_core_json|safe }}, {{ photo_cache_json|safe }});

const VERSION = {{ version_json|safe }};
const PRECACHE = {{ precache_json|safe }};
const OFFLINE_URL = "/offline/";
const SHELL_CACHE = `liveblog-shell-${VERSION}`;
const PAGES_CACHE = "liveblog-pages";
const API_CACHE = "liveblog-api";
const OUR_CACHES = [SHELL_CACHE, PAGES_CACHE, API_CACHE, self.LiveblogPhotos.CACHE_NAME];
// Bounds: pages and API answers are kept for the newest this many URLs.
const MAX_PAGES = 40;
const MAX_API_ANSWERS = 60;
const PAGE_TIMEOUT_MS = 3000;
const API_TIMEOUT_MS = 4000;
const API_READ = /^\/api\/liveblog\/[^/]+\/(posts|events)$/;

self.addEventListener("install", (event) => {
  // No skipWaiting here: an open page decides when to switch (its "new version" prompt).
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(PRECACHE)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith("liveblog-") && !OUR_CACHES.includes(name))
      .map((name) => caches.delete(name)));
    await self.clients.claim();
    await refreshOpenPages();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
});

/* Background Sync: the author's outbox is sent even when no console tab is open. A send that
 * must be retried rejects, and the browser schedules the sync again with its own backoff. */
self.addEventListener("sync", (event) => {
  if (event.tag !== "liveblog-outbox") return;
  event.waitUntil(self.LiveblogOutbox.flush(tellConsoles).then((result) => {
    if (result.retry) throw new Error("the outbox will be retried");
  }));
});

async function tellConsoles() {
  const windows = await self.clients.matchAll({ type: "window" });
  for (const client of windows) client.postMessage({ type: "outbox-changed" });
}

/** Keep a fresh copy of the pages open now: the first visit happened before this worker
 *  could see it, and after an update the old copies point at the old shell's files. */
async function refreshOpenPages() {
  const cache = await caches.open(PAGES_CACHE);
  const windows = await self.clients.matchAll({ type: "window" });
  await Promise.all(windows.map(async (client) => {
    const url = new URL(client.url);
    if (url.origin !== self.location.origin) return;
    try {
      const response = await fetch(url.href, { credentials: "same-origin" });
      if (response.ok && !response.redirected) await cache.put(url.href, response);
    } catch { /* offline: the next visit caches it */ }
  }));
}

/* Photos under MEDIA_URL (a same-origin path; `prefix` is null for a MEDIA_URL on another
 * host): cache first, bounded by {maxPhotos, maxBytes}, in photo-cache.js. A listener of its
 * own that leaves navigations to the one below. */
const PHOTOS = {{ photos_json|safe }};
self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || request.mode === "navigate" || !PHOTOS.prefix) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(PHOTOS.prefix)) return;
  event.respondWith(self.LiveblogPhotos.respond(request, PHOTOS, (work) => event.waitUntil(work)));
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(request));
  } else if (API_READ.test(url.pathname)) {
    event.respondWith(networkFirst(request, API_CACHE, API_TIMEOUT_MS, MAX_API_ANSWERS));
  }
});

async function page(request) {
  try {
    return await networkFirst(request, PAGES_CACHE, PAGE_TIMEOUT_MS, MAX_PAGES);
  } catch {
    const offline = await caches.match(OFFLINE_URL);
    return offline || Response.error();
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  return cached || fetch(request);
}

/**
 * The network's answer, kept in `cacheName`. If it takes longer than `timeoutMs` and a copy is
 * cached, the copy is answered (the network answer still refreshes the cache when it comes);
 * if the network fails, the copy; with no copy, the network's answer or error, however late.
 */
async function networkFirst(request, cacheName, timeoutMs, maxEntries) {
  const cache = await caches.open(cacheName);
  const network = fetch(request).then(async (response) => {
    if (response.ok && response.type === "basic" && !response.redirected) {
      await cache.put(request, response.clone());
      await trim(cache, maxEntries);
    }
    return response;
  });
  network.catch(() => {}); // answered from the cache meanwhile: a late failure is no error
  const late = new Promise((resolve) => setTimeout(resolve, timeoutMs, "late"));
  try {
    const first = await Promise.race([network, late]);
    if (first !== "late") return first;
    const cached = await cache.match(request, { ignoreVary: true });
    return cached || await network;
  } catch (error) {
    const cached = await cache.match(request, { ignoreVary: true });
    if (cached) return cached;
    throw error;
  }
}

/** Keep the newest `maxEntries` (Cache keys are in insertion order; a put re-inserts). */
async function trim(cache, maxEntries) {
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - maxEntries))
    .map((key) => cache.delete(key)));
}
