// Wires the page's feed to a live connection. The server rendered the first page and put the
// same data in #feed-data (a snapshot-shaped JSON block): the client starts from it, connects
// with `since` = its head, and never downloads that page again.
import { FeedConnection } from "./feed-connection.js";
import { FeedState } from "./feed-state.js";
import { FeedView } from "./feed-view.js";

let loadingOlder = false;

async function fetchOlder(slug, state, view) {
  if (state.nextBefore === null || loadingOlder) return;
  loadingOlder = true;
  try {
    await fetchOlderPage(slug, state, view);
  } finally {
    loadingOlder = false;
  }
}

async function fetchOlderPage(slug, state, view) {
  const url = `/api/liveblog/${encodeURIComponent(slug)}/posts?before=${state.nextBefore}`;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`loading older posts failed: ${response.status}`);
  view.appendOlder(state.addOlder(await response.json()));
}

export function startFeed({ root = document } = {}) {
  const data = JSON.parse(root.getElementById("feed-data").textContent);
  const slug = data.blog.slug;
  const state = new FeedState();
  state.applySnapshot(data);
  const view = new FeedView({
    root,
    state,
    loadOlder: () => fetchOlder(slug, state, view).catch((error) => console.warn(error)),
  });
  const connection = new FeedConnection({
    slug,
    state,
    onReset: () => view.renderAll(),
    onChange: (change) => view.apply(change),
    onState: (status) => view.showConnection(status),
  });
  view.start();
  connection.start();
  // For debugging in the browser console (and for tests that read the client's position).
  window.liveblog = { state, view, connection };
  return window.liveblog;
}
