// Post anchors: `/liveblog/<slug>/#post-<id>` (search results, the Atom feed, shared links)
// shows that post even when it is older than the first page: older pages are loaded until it is
// there, then it is scrolled to and focused, so keyboard and screen-reader users land on it too.
//
// Older pages only hold ids below `state.nextBefore`, so the search stops as soon as the post
// could no longer come: a deleted post (or one of another blog) costs at most one more page,
// never a walk through the archive, and a failed load (no progress) ends it too.

const ANCHOR = /^#post-([1-9]\d{0,15})$/;

/** The post id a URL fragment names, or null. */
export function anchoredPost(hash) {
  const match = ANCHOR.exec(hash);
  return match ? Number(match[1]) : null;
}

export class PostAnchors {
  /** @param {{state: object, view: object}} feed what startFeed() returns */
  constructor({ state, view }) {
    this.state = state;
    this.view = view;
    this.search = 0; // a newer hash makes an older search stop
    this.shown = null;
  }

  start() {
    window.addEventListener("hashchange", () => this.follow());
    return this.follow();
  }

  /** Show the post the page's URL names, if any; resolves to its element or null. */
  async follow() {
    const id = anchoredPost(window.location.hash);
    if (id === null) return null;
    const search = ++this.search;
    let element = this.view.element(id);
    while (!element && this.state.nextBefore !== null && id < this.state.nextBefore) {
      const before = this.state.nextBefore;
      await this.view.loadOlder();
      if (search !== this.search || this.state.nextBefore === before) return null;
      element = this.view.element(id);
    }
    if (!element || search !== this.search) return null;
    this.show(element);
    return element;
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
