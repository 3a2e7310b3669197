// FeedView (static/liveblog/feed-view.js): how it draws the feed, and its helpers.

import { FeedState } from "/static/liveblog/feed-state.js";
import { FeedView, relativeTime } from "/static/liveblog/feed-view.js";
import { assert, test } from "./testing.js";

/** An element's markup without what only differs by the moment or the drawing: a time's text
 *  and title (the server writes "12:03 UTC", the browser "4 min ago"), the browser's record of
 *  the body it drew, how a photo is fetched (the server's page fetches its first photo at once,
 *  the rest lazily; a photo drawn later is lazy), and whitespace between tags. */
function markup(element) {
  const copy = element.cloneNode(true);
  for (const image of copy.querySelectorAll("img")) {
    for (const hint of ["fetchpriority", "loading", "decoding"]) image.removeAttribute(hint);
  }
  for (const time of copy.querySelectorAll("time")) {
    time.textContent = "";
    time.removeAttribute("title");
  }
  for (const body of copy.querySelectorAll("[data-html]")) body.removeAttribute("data-html");
  return copy.outerHTML.replace(/>\s+</g, "><");
}

test("posts, photos and key events are drawn as the server draws them", async () => {
  // The reader page's feed from the server's templates (see e2e/test_client_logic.py), parsed
  // twice, off the page (nothing in it loads): once as served, once for the browser to draw.
  const html = await (await fetch("/fixtures/feed.html")).text();
  const served = new DOMParser().parseFromString(html, "text/html");
  const drawn = new DOMParser().parseFromString(html, "text/html");
  for (const article of drawn.querySelectorAll("#feed article.post")) article.remove();
  drawn.querySelector("#key-events ol").replaceChildren();
  const state = new FeedState();
  state.applySnapshot(JSON.parse(drawn.getElementById("feed-data").textContent));
  new FeedView({ root: drawn, state }).renderAll();

  const posts = (doc) => [...doc.querySelectorAll("#feed article.post")].map(markup);
  const keyEvents = (doc) => [...doc.querySelectorAll("#key-events li")].map(markup);
  assert.equal(posts(served).length, 3, "the fixture has three posts");
  assert.equal(served.querySelectorAll("#feed figure.post-photo").length, 1, "the fixture has a photo");
  assert.equal(keyEvents(served).length, 2, "the fixture has two key events");
  assert.deepEqual(posts(drawn), posts(served));
  assert.deepEqual(keyEvents(drawn), keyEvents(served));
  // Entities in a key event's summary are decoded once, on both sides (never "&amp;amp;").
  const summaries = (doc) => [...doc.querySelectorAll("#key-events .key-event-text")].map((text) => text.textContent);
  assert.deepEqual(summaries(served), ["Red card & a penalty", "GOAL! 1-0 <3"]);
});

test("relative times", () => {
  const now = new Date("2024-05-01T12:00:00Z");
  const ago = (seconds) => relativeTime(new Date(now - seconds * 1000), now);
  const absolute = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });
  const old = new Date(now - 25 * 3600 * 1000);
  const older = new Date("2023-11-20T08:30:00Z");

  // Intl.RelativeTimeFormat's short style, in the page's language (the harness page: English).
  assert.deepEqual([0, 10, 44, 45, 4 * 60, 59 * 60, 2 * 3600, 23 * 3600].map(ago),
    ["just now", "just now", "just now", "1 min. ago", "4 min. ago", "59 min. ago", "2 hr. ago", "23 hr. ago"]);
  assert.equal(relativeTime(new Date(+now + 5000), now), "just now", "a clock a little ahead");
  const shownOld = relativeTime(old, now);
  assert.equal(shownOld, absolute.format(old));
  assert.ok(!shownOld.includes("ago") && shownOld.includes("2024"), shownOld);
  const shownOlder = relativeTime(older, now);
  assert.ok(shownOlder === absolute.format(older) && shownOlder.includes("2023"), shownOlder);
  assert.equal(relativeTime(new Date(Date.now() - 3 * 60 * 1000)), "3 min. ago", "now by default");
});
