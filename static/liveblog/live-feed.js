// Wires the page's feed to its local copy and a live connection.
//
// The server rendered the first page and put the same data in #feed-data (a snapshot-shaped
// JSON block): the client starts from it, or from the copy in IndexedDB when that is at least
// as far along (the page came from the service worker's cache, offline), so a cold start shows
// the newest known state at once. It then connects with `since` = that state's head and never
// downloads the first page again.
//
// The connection is a websocket, or Server-Sent Events where the websocket upgrade keeps failing
// while HTTP answers (feed-connection.js); #connection's data-transport says which. Tests set
// `window.liveblogTransport = {wsRetryMs, failures}` before the page's scripts run to shorten
// the wait before the websocket is tried again.
import { FeedConnection } from "./feed-connection.js";
import { FeedState } from "./feed-state.js";
import { FeedStore, newest } from "./feed-store.js";
import { FeedView } from "./feed-view.js";

let loadingOlder = null;

async function fetchOlderPage(slug, state, view) {
  const url = `/api/liveblog/${encodeURIComponent(slug)}/posts?before=${state.nextBefore}`;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`loading older posts failed: ${response.status}`);
  view.appendOlder(state.addOlder(await response.json()));
}

/** Load the next older page; a call while one loads waits for that one (post-anchor.js). */
function fetchOlder(slug, state, view) {
  if (state.nextBefore === null) return Promise.resolve();
  loadingOlder ??= fetchOlderPage(slug, state, view).finally(() => { loadingOlder = null; });
  return loadingOlder;
}

/**
 * @param {object} options
 * @param {(element: HTMLElement, post: object) => void} [options.decorate] adds controls to a post
 * @param {(blog: object) => void} [options.onBlog]      the blog's title or status changed
 * @param {(status: string) => void} [options.onStatus]  the connection's state changed
 */
export async function startFeed({
  root = document, decorate = null, onBlog = null, onStatus = null,
} = {}) {
  const pageData = JSON.parse(root.getElementById("feed-data").textContent);
  const slug = pageData.blog.slug;
  const feed = root.getElementById("feed");
  const store = await FeedStore.open({ maxBlogs: Number(feed.dataset.offlineBlogs) || undefined });
  const stored = store ? await store.load(slug).catch(() => undefined) : undefined;
  const start = newest(pageData, stored);
  const state = new FeedState();
  state.applySnapshot(start);
  const view = new FeedView({
    root,
    state,
    decorate,
    onBlog,
    lastCurrent: new Date(start === stored ? stored.savedAt : feed.dataset.renderedAt),
    loadOlder: () => fetchOlder(slug, state, view).catch((error) => console.warn(error)),
  });
  const fromLocalCopy = start === stored;
  if (fromLocalCopy) view.renderAll();
  const save = () => store?.saveSoon(state);
  // "drawn" after the view showed a change or a snapshot, "status" when the connection's state
  // changed: for what waits on the feed (post-anchor.js waits for a post to arrive).
  const events = new EventTarget();
  const drawn = () => events.dispatchEvent(new Event("drawn"));
  const connection = new FeedConnection({
    slug,
    state,
    fallback: { url: `/sse/liveblog/${encodeURIComponent(slug)}/`, ...window.liveblogTransport },
    onTransport: (transport) => view.showTransport(transport),
    onReset: () => { view.renderAll(); save(); drawn(); },
    onChange: (change) => { view.apply(change); save(); drawn(); },
    onState: (status) => {
      view.showConnection(status);
      onStatus?.(status);
      events.dispatchEvent(new Event("status"));
    },
  });
  view.start();
  connection.start();
  save();
  // For the browser console, and for tests that read the client's position.
  window.liveblog = {
    state, view, connection, store, events, fromLocalCopy, startedMs: performance.now(),
  };
  return window.liveblog;
}
