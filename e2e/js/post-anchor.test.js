// Post anchors (static/liveblog/post-anchor.js) waiting for a post the page does not hold yet: a
// tapped notification opens `#post-<id>` of a post the catch-up has still to bring.

import { PostAnchors } from "/static/liveblog/post-anchor.js";
import { assert, test } from "./testing.js";

/** A feed as startFeed() gives it, drawing posts on demand; its connection state is settable. */
function fakeFeed() {
  const elements = new Map();
  const events = new EventTarget();
  const view = {
    connectionState: "connecting",
    element: (id) => elements.get(id) ?? null,
    revealHeld() {},
    loadOlder: async () => { throw new Error("no older page should be loaded"); },
  };
  return {
    feed: { state: { nextBefore: null }, view, events },
    draw(id) {
      const element = document.createElement("article");
      element.id = `post-${id}`;
      document.getElementById("harness").append(element);
      elements.set(id, element);
      events.dispatchEvent(new Event("drawn"));
    },
    status(state) {
      view.connectionState = state;
      events.dispatchEvent(new Event("status"));
    },
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a post the catch-up brings is shown once it is drawn, whatever the wait", async () => {
  const { feed, draw, status } = fakeFeed();
  window.location.hash = "#post-7";
  const anchors = new PostAnchors(feed, { graceMs: 20 });
  const found = anchors.follow();
  status("reconnecting"); // offline for a while: no grace runs out while not live
  await new Promise((resolve) => setTimeout(resolve, 60));
  draw(6);
  status("live");
  draw(7); // the catch-up's next event
  const element = await found;
  assert.equal(element?.id, "post-7");
  assert.ok(element.classList.contains("is-anchored"));
  assert.equal(document.activeElement, element);
});

test("live without the post for the grace: the wait ends; a newer hash ends it at once", async () => {
  const { feed, status } = fakeFeed();
  status("live");
  window.location.hash = "#post-9";
  const anchors = new PostAnchors(feed, { graceMs: 30 });
  assert.equal(await anchors.follow(), null, "a deleted post is never shown");
  const waiting = anchors.follow();
  await tick();
  window.location.hash = "#post-10";
  const newer = anchors.follow();
  assert.equal(await waiting, null);
  assert.equal(await newer, null);
});
