/* Liveblog service worker. Served from /sw.js by the pwa app (never HTTP-cached), so a browser
 * finds a new version on its next visit; the version is a digest of the shell below and of this
 * file, so every deploy that changes the app ships a new worker.
 *
 * - The app shell (hashed static files + the offline page) is precached under a versioned cache;
 *   caches of other versions are deleted on activate.
 * - Pages: network first; after a few seconds without an answer (or with no network) the cached
 *   copy; a page never visited falls back to /offline/. Only an allow-list is kept — the blog
 *   list and reader pages, and the author console — and never an answer marked `no-store`.
 * - A phone is shared: every page says whom it was rendered for (`X-Liveblog-Viewer`, see
 *   project/viewer.py). Pages rendered for nobody (and not `private`) go to the public cache;
 *   a signed-in user's pages go to that user's own cache, served only while they are the one
 *   signed in here, and deleted as soon as a page is rendered for anyone else (sign-out, expiry,
 *   another sign-in) or the user signs out (sign-out.js).
 * - Pages are in the reader's language (project/i18n.py: the language cookie, else
 *   Accept-Language; `Content-Language` says which). A page in another language than the last
 *   one means the reader switched: the kept copies, in the old language, are dropped at once and
 *   fetched again in the new one, and so is the offline page (noteLanguage).
 * - Static files: cache first (their names carry a hash of their content).
 * - API reads are not cached: the feed's one offline copy is the page's IndexedDB record. The
 *   desk (GET /api/liveblog/<slug>/desk, …/submissions/…) in particular never is, nor a desk
 *   photo (a media URL marked `?desk=1`, desk-view.js): unpublished work stays off the device.
 * - Websockets are not fetches: a service worker never sees them.
 * - Background Sync sends the author's outbox (outbox-core.js) when the network is back: only
 *   the entries of the user whose console last checked who is signed in.
 * - Web Push (push-core.js): a key event's push shows a notification (one per blog: a burst
 *   replaces it); a tap opens the blog at the post, in a window of that blog if one is open.
 *   Nothing about the signed-in user is involved: the subscriptions are the device's.
 */

// The author's outbox (globalThis.LiveblogOutbox), shared with the console, and the IndexedDB
// helper it uses (globalThis.LiveblogIDB), shared with the pages; the photos kept offline
// (globalThis.LiveblogPhotos), shared with the reader's local copy; the blogs this device gets
// notifications for and what a push shows (globalThis.LiveblogPush), shared with push.js.
importScripts(
  {{ indexeddb_json|safe }}, {{ outbox_core_json|safe }}, {{ photo_cache_json|safe }},
  {{ push_core_json|safe }},
);

const VERSION = {{ version_json|safe }};
const PRECACHE = {{ precache_json|safe }};
// The author console's own files (pwa/shell.py AUTHOR_ONLY): cached once a console asks.
const AUTHOR_PRECACHE = {{ author_precache_json|safe }};
const OFFLINE_URL = "/offline/";
const SIGN_OUT_URL = {{ sign_out_json|safe }};
const SHELL_CACHE = `liveblog-shell-${VERSION}`;
const PUBLIC_PAGES = "liveblog-public-pages";
const USER_PAGES_PREFIX = "liveblog-user-"; // + the user's id (sign-out.js deletes it too)
const OUR_CACHES = [SHELL_CACHE, PUBLIC_PAGES];
// Bound: each pages cache keeps the newest this many URLs.
const MAX_PAGES = 40;
const PAGE_TIMEOUT_MS = 3000;
// An app opened (a link, the home-screen icon) with a copy cached waits this long for the
// network, so that it starts within a second on a slow one (bench `page`: 2 s per request on
// Slow 3G); the live feed then catches up from the copy's head. A reload waits PAGE_TIMEOUT_MS.
const PAGE_OPEN_TIMEOUT_MS = 500;
// The pages kept for offline reading: the blog list and reader pages for anyone, and the author
// console for its user. Nothing else (the admin, sign-in, error pages) is ever cached.
const PUBLIC_PAGE_PATHS = [/^\/$/, /^\/liveblog\/[^/]+\/$/, /^\/liveblog\/[^/]+\/embed\/$/];
const USER_PAGE_PATHS = [...PUBLIC_PAGE_PATHS, /^\/liveblog\/[^/]+\/write\/$/];
const VIEWER_HEADER = "X-Liveblog-Viewer";
const LANGUAGE_HEADER = "Content-Language";
const ANONYMOUS = "anonymous";
const outbox = self.LiveblogOutbox;

self.addEventListener("install", (event) => {
  // No skipWaiting here: an open page decides when to switch (its "new version" prompt).
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(PRECACHE);
    if (await outbox.getMeta("authorShell")) await cache.addAll(AUTHOR_PRECACHE);
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const viewer = await outbox.getMeta("viewer");
    const kept = [...OUR_CACHES, self.LiveblogPhotos.CACHE_NAME, viewer && userCache(viewer)];
    const names = await caches.keys();
    // Old shells, the caches of versions before per-user caching (they held every page, the
    // admin's included), and any user's pages but the current viewer's; photos stay.
    await Promise.all(names
      .filter((name) => name.startsWith("liveblog-") && !kept.includes(name))
      .map((name) => caches.delete(name)));
    await self.clients.claim();
    await refreshOpenPages();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
  // An author console opened on this device: keep its files offline, now and after updates.
  if (event.data && event.data.type === "AUTHOR_SHELL") {
    event.waitUntil(outbox.setMeta("authorShell", true)
      .then(() => caches.open(SHELL_CACHE))
      .then((cache) => cache.addAll(AUTHOR_PRECACHE)));
  }
  // A page that loaded while this worker was installing was no client yet when "activate"
  // claimed them all (nor is a shift-reloaded one): it asks, and is claimed and kept now.
  if (event.data && event.data.type === "CLAIM") {
    event.waitUntil(self.clients.claim().then(refreshOpenPages));
  }
});

/* Background Sync: the author's outbox is sent even when no console tab is open. A send that
 * must be retried rejects, and the browser schedules the sync again with its own backoff. */
self.addEventListener("sync", (event) => {
  if (event.tag !== "liveblog-outbox") return;
  event.waitUntil((async () => {
    await finishSignOut();
    const result = await outbox.flush(tellConsoles);
    await outbox.setMeta("flushedAt", Date.now()); // for tests: this sync has run
    if (result.retry) throw new Error("the outbox will be retried");
  })());
});

// --- Web Push ---------------------------------------------------------------------------------

const NOTIFICATION_ICONS = {{ notification_icons_json|safe }}; // {icon, badge}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event.data));
});

/** Show what a push says. A payload that cannot be read still shows a (generic) notification:
 *  a subscription made with userVisibleOnly promises one for every push. */
async function showPush(data) {
  let payload = null;
  try {
    payload = data ? data.json() : null;
  } catch { /* not JSON: the generic notification */ }
  const { title, options } = self.LiveblogPush.notification(
    payload, { origin: self.location.origin, ...NOTIFICATION_ICONS },
  );
  await self.registration.showNotification(title, options);
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(notificationClicked(event.notification));
});

/**
 * Close the notification and open the post it is about: a window already showing that blog is
 * focused and taken to the post (the page catches up first, post-anchor.js), else a new window
 * opens at it. A global function, so that e2e/test_push_client.py can call it: headless Chromium
 * cannot click a notification, and only a real click may focus or open a window (the test
 * records openWindow's calls instead).
 */
async function notificationClicked(notification) {
  notification.close();
  const path = self.LiveblogPush.localUrl(notification.data?.url, self.location.origin) ?? "/";
  const target = new URL(path, self.location.origin);
  const windows = await self.clients.matchAll({ type: "window" });
  const open = windows.find((client) => new URL(client.url).pathname === target.pathname);
  if (!open) return self.clients.openWindow(target.href);
  await open.focus().catch(() => {}); // refused outside a real click: navigating still works
  if (open.url === target.href) {
    // Already at that URL: navigating would change nothing; the page shows the post again.
    open.postMessage({ type: "show-post", url: target.href });
    return open;
  }
  return open.navigate(target.href).catch(() => self.clients.openWindow(target.href));
}

/* The browser replaced the subscription (it expired, or the push service rotated it): subscribe
 * again with the same server key where the browser did not, and tell every blog this device
 * follows the new endpoint (push-core.js moveBlogs). */
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil((async () => {
    const key = event.oldSubscription?.options?.applicationServerKey;
    const subscription = event.newSubscription
      ?? (key ? await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }) : null);
    if (subscription) await self.LiveblogPush.moveBlogs(fetch, subscription);
  })());
});

async function tellConsoles() {
  const windows = await self.clients.matchAll({ type: "window" });
  for (const client of windows) client.postMessage({ type: "outbox-changed" });
}

/** Keep a fresh copy of the pages open now: the first visit happened before this worker
 *  could see it, and after an update the old copies point at the old shell's files. */
async function refreshOpenPages() {
  const windows = await self.clients.matchAll({ type: "window" });
  const ours = windows.map((client) => client.url)
    .filter((url) => new URL(url).origin === self.location.origin);
  await Promise.all(ours.map(refreshPage));
}

/** Fetch `url` as a page and keep it where it may be kept. */
async function refreshPage(url) {
  const request = new Request(url, { credentials: "same-origin" });
  try {
    await keepPage(request, await fetch(request));
  } catch { /* offline: the next visit keeps it */ }
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
  // A submission's photo, seen on the desk: not public, so never kept (the network answers).
  if (url.searchParams.has("desk")) return;
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
  }
});

// --- Pages, and whose they are ----------------------------------------------------------------

function userCache(viewer) {
  return `${USER_PAGES_PREFIX}${viewer}`;
}

function allowed(paths, url) {
  return paths.some((path) => path.test(url.pathname));
}

/** The cache that may keep this answer to a page request, or null. */
function cacheFor(request, response) {
  if (!response.ok || response.type !== "basic" || response.redirected) return null;
  const control = (response.headers.get("Cache-Control") || "").toLowerCase();
  if (/\bno-store\b/.test(control)) return null;
  const url = new URL(request.url);
  const viewer = response.headers.get(VIEWER_HEADER);
  if (viewer === ANONYMOUS) {
    return allowed(PUBLIC_PAGE_PATHS, url) && !/\bprivate\b/.test(control) ? PUBLIC_PAGES : null;
  }
  return viewer && allowed(USER_PAGE_PATHS, url) ? userCache(viewer) : null;
}

/**
 * A page from the server said whom it was rendered for. If that is someone else than this device
 * last saw, the previous user is gone: their cached pages are deleted and their outbox entries
 * are not sent until a console checks who is signed in (outbox-core.js).
 */
async function noteViewer(viewer) {
  const previous = await outbox.getMeta("viewer");
  if (viewer === previous) return;
  await outbox.setMeta("viewer", viewer);
  if (previous && previous !== ANONYMOUS) await caches.delete(userCache(previous));
  const sender = await outbox.sender();
  if (sender && sender.user !== viewer) await outbox.forgetSender();
}

/**
 * A page from the server said its language. If the reader chose another one (the switch, or the
 * browser's languages), the copies this device keeps are in the old one: they are deleted now
 * (a copy must never bring the old language back offline) and fetched again in the background,
 * with the offline page.
 */
async function noteLanguage(language, request) {
  const previous = await outbox.getMeta("language");
  if (!language || language === previous) return;
  await outbox.setMeta("language", language);
  if (!previous) return; // the first page this worker sees: what it keeps is in this language
  const viewer = await outbox.getMeta("viewer");
  const names = [PUBLIC_PAGES, viewer && viewer !== ANONYMOUS ? userCache(viewer) : null];
  const stale = [];
  for (const name of names.filter(Boolean)) {
    const cache = await caches.open(name);
    for (const key of await cache.keys()) {
      await cache.delete(key);
      if (key.url !== request.url) stale.push(key.url);
    }
  }
  refetch(stale).catch(() => {}); // not awaited: the page being loaded goes first
}

async function refetch(urls) {
  const offline = await fetch(OFFLINE_URL, { credentials: "same-origin" });
  if (offline.ok) await (await caches.open(SHELL_CACHE)).put(OFFLINE_URL, offline);
  for (const url of new Set(urls)) await refreshPage(url);
}

async function keepPage(request, response) {
  const viewer = response.headers.get(VIEWER_HEADER);
  if (viewer) await noteViewer(viewer);
  if (response.ok) await noteLanguage(response.headers.get(LANGUAGE_HEADER), request);
  const name = cacheFor(request, response);
  if (!name) return;
  const cache = await caches.open(name);
  await cache.put(request, response.clone());
  await trim(cache, MAX_PAGES);
}

/** The copy this device may show for a page: the signed-in user's own, else the public one. */
async function cachedPage(request) {
  const url = new URL(request.url);
  const viewer = await outbox.getMeta("viewer");
  const options = { ignoreVary: true };
  if (viewer && viewer !== ANONYMOUS && allowed(USER_PAGE_PATHS, url)) {
    const own = await caches.match(request, { ...options, cacheName: userCache(viewer) });
    if (own) return own;
  }
  if (!allowed(PUBLIC_PAGE_PATHS, url)) return undefined;
  return caches.match(request, { ...options, cacheName: PUBLIC_PAGES });
}

let finishingSignOut = null; // one at a time: pages load in parallel

/** A sign-out made with no network (sign-out.js) is finished on the server before anything
 *  else is fetched: the session must not outlive it. */
function finishSignOut() {
  finishingSignOut ??= (async () => {
    const pending = await outbox.getMeta("signingOut");
    if (!pending) return;
    try {
      await fetch(SIGN_OUT_URL, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        body: new URLSearchParams({ csrfmiddlewaretoken: pending.token }),
      });
    } catch {
      return; // still offline: the next fetch tries again
    }
    await outbox.deleteMeta("signingOut");
  })().finally(() => { finishingSignOut = null; });
  return finishingSignOut;
}

/**
 * Network first: the server's answer (kept where it may be). If it takes longer than
 * PAGE_OPEN_TIMEOUT_MS (PAGE_TIMEOUT_MS for a reload) and a copy this device may show is cached,
 * the copy (the answer still refreshes the cache when it comes); with no network, the copy or
 * the offline page.
 */
async function page(request) {
  await finishSignOut();
  const network = fetch(request).then(async (response) => {
    await keepPage(request, response);
    return response;
  });
  network.catch(() => {}); // answered from the cache meanwhile: a late failure is no error
  const cached = cachedPage(request); // looked up meanwhile: ready when the wait is over
  cached.catch(() => {});
  const wait = request.cache === "no-cache" || request.cache === "reload"
    ? PAGE_TIMEOUT_MS : PAGE_OPEN_TIMEOUT_MS;
  const late = new Promise((resolve) => setTimeout(resolve, wait, "late"));
  try {
    const first = await Promise.race([network, late]);
    if (first !== "late") return first;
    return (await cached) || await network;
  } catch {
    return (await cached) || (await caches.match(OFFLINE_URL)) || Response.error();
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  return cached || fetch(request);
}

/** Keep the newest `maxEntries` (Cache keys are in insertion order; a put re-inserts). */
async function trim(cache, maxEntries) {
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - maxEntries))
    .map((key) => cache.delete(key)));
}
