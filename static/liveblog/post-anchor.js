// Post anchors: `/liveblog/<slug>/#post-<id>` (search results, the Atom feed, shared links)
// shows that post even when it is older than the first page: older pages are loaded until it is
// there, then it is scrolled to and focused, so keyboard and screen-reader users land on it too.
//
// Older pages only hold ids below `state.nextBefore`, so the search stops as soon as the post
// could no longer come: a deleted post (or one of another blog) costs at most one more page,
// never a walk through the archive, and a failed load (no progress) ends it too.
//
// A post the page does not hold may also be newer than what it started from: a tapped
// notification opens `#post-<id>` of a post just published, maybe on a page drawn from the
// offline copy. Then the post is shown when the catch-up brings it; the wait ends once the
// connection has been live for ARRIVAL_GRACE_MS without it (a deleted post), or at a newer hash.

const ANCHOR = /^#post-([1-9]\d{0,15})$/;
// Live means caught up; a post pushed a moment ago may still be on its way to this connection.
export const ARRIVAL_GRACE_MS = 5000;

/** The post id a URL fragment names, or null. */
export function anchoredPost(hash) {
  const match = ANCHOR.exec(hash);
  return match ? Number(match[1]) : null;
}

export class PostAnchors {
  /**
   * @param {{state: object, view: object, events?: EventTarget}} feed what startFeed() returns
   *   (`events`: "drawn" and "status", live-feed.js)
   * @param {{graceMs?: number}} [options]
   */
  constructor({ state, view, events = null }, { graceMs = ARRIVAL_GRACE_MS } = {}) {
    this.state = state;
    this.view = view;
    this.events = events;
    this.graceMs = graceMs;
    this.search = 0; // a newer hash makes an older search stop
    this.shown = null;
    this.stopWaiting = () => {};
  }

  start() {
    window.addEventListener("hashchange", () => this.follow());
    return this.follow();
  }

  /** Show the post the page's URL names, if any; resolves to its element or null. */
  async follow() {
    const id = anchoredPost(window.location.hash);
    const search = ++this.search;
    this.stopWaiting();
    if (id === null) return null;
    let element = this.view.element(id);
    while (!element && this.state.nextBefore !== null && id < this.state.nextBefore) {
      const before = this.state.nextBefore;
      await this.view.loadOlder();
      if (search !== this.search) return null;
      element = this.view.element(id);
      if (this.state.nextBefore === before) break; // a failed load: no progress
    }
    if (!element && search === this.search) element = await this.arrival(id);
    if (!element || search !== this.search) return null;
    this.show(element);
    return element;
  }

  /** Wait for post `id` to be drawn by the catch-up or the live feed; resolves to its element,
   *  or null once the connection has been live for `graceMs` without it. */
  arrival(id) {
    if (!this.events) return Promise.resolve(null);
    return new Promise((resolve) => {
      let timer = null;
      const finish = (element) => {
        clearTimeout(timer);
        this.events.removeEventListener("drawn", drawn);
        this.events.removeEventListener("status", status);
        this.stopWaiting = () => {};
        resolve(element);
      };
      const drawn = () => {
        const element = this.view.element(id);
        if (element) finish(element);
      };
      const status = () => {
        clearTimeout(timer);
        timer = this.view.connectionState === "live" ? setTimeout(() => finish(null), this.graceMs) : null;
      };
      this.stopWaiting = () => finish(null);
      this.events.addEventListener("drawn", drawn);
      this.events.addEventListener("status", status);
      status();
    });
  }

  show(element) {
    if (element.hidden) this.view.revealHeld({ scroll: false }); // a post held back as new
    this.shown?.classList.remove("is-anchored");
    this.shown = element;
    element.classList.add("is-anchored");
    element.tabIndex = -1; // focusable from script only: it stays out of the tab order
    element.scrollIntoView({ block: "start" });
    element.focus({ preventScroll: true });
  }
}
