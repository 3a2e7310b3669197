// The reader's feed as data: posts by id, the last applied seq and the epoch it belongs to.
// Pure logic, no DOM and no network, so it can be tested on its own.
//
// Events apply strictly in order: a seq at or below the last one is a duplicate (ignored), one
// beyond last + 1 is a gap (never applied; the connection asks for a resync instead).

export const APPLIED = "applied";
export const DUPLICATE = "duplicate";
export const GAP = "gap";
export const NO_BASE = "no-base";

/** True when post a is shown above post b: pinned posts first, then newest first. */
export function comesBefore(a, b) {
  if (a.pinned !== b.pinned) return a.pinned;
  return a.id > b.id;
}

export class FeedState {
  constructor({ epoch = null, seq = null, blog = null, posts = [], nextBefore = null } = {}) {
    this.epoch = epoch;
    this.seq = seq;
    this.blog = blog;
    this.posts = new Map(posts.map((post) => [post.id, post]));
    // Older posts exist below this id and are not loaded (null: everything is loaded).
    this.nextBefore = nextBefore;
  }

  /** Start over from a `snapshot` frame (or the page's own first page, the same shape). */
  applySnapshot(snapshot) {
    this.epoch = snapshot.epoch;
    this.seq = snapshot.head;
    this.blog = snapshot.blog ?? this.blog;
    this.posts = new Map(snapshot.posts.map((post) => [post.id, post]));
    this.nextBefore = snapshot.next_before ?? null;
  }

  /**
   * Apply one `event` frame if it is the next one.
   * @returns {{result: string, change?: object}} change: {kind: "upsert", post, fresh} |
   *   {kind: "remove", id} | {kind: "blog", blog} | {kind: "none"}
   */
  applyEvent(frame) {
    if (this.seq === null) return { result: NO_BASE };
    if (frame.seq <= this.seq) return { result: DUPLICATE };
    if (frame.seq !== this.seq + 1) return { result: GAP };
    this.seq = frame.seq;
    return { result: APPLIED, change: this.change(frame) };
  }

  change(frame) {
    switch (frame.kind) {
      case "post.created":
        return this.upsert(frame.post, { created: true });
      case "post.updated":
        return this.upsert(frame.post, { created: false });
      case "post.deleted":
        this.posts.delete(frame.post.id);
        return { kind: "remove", id: frame.post.id };
      case "blog.updated":
        this.blog = frame.blog;
        return { kind: "blog", blog: frame.blog };
      default:
        return { kind: "none" };
    }
  }

  /** Whether a post belongs among the loaded ones: pinned posts always do. */
  inLoadedRange(post) {
    return post.pinned || this.nextBefore === null || post.id >= this.nextBefore;
  }

  upsert(post, { created }) {
    const known = this.posts.has(post.id);
    if (!this.inLoadedRange(post)) {
      // An edit to a post older than what is loaded (or one that was just unpinned there).
      if (!known) return { kind: "none" };
      this.posts.delete(post.id);
      return { kind: "remove", id: post.id };
    }
    this.posts.set(post.id, post);
    return { kind: "upsert", post, fresh: created && !known };
  }

  /** Add a page of older posts (from `GET …/posts?before=`); returns the ones that were new. */
  addOlder(page) {
    const added = page.posts.filter((post) => !this.posts.has(post.id));
    for (const post of added) this.posts.set(post.id, post);
    this.nextBefore = page.next_before;
    return added;
  }

  sorted() {
    return [...this.posts.values()].sort((a, b) => (comesBefore(a, b) ? -1 : 1));
  }

  keyEvents() {
    return [...this.posts.values()].filter((post) => post.key_event).sort((a, b) => b.id - a.id);
  }
}
