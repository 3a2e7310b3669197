// The reader's local copy of each blog it has opened, in IndexedDB, so that a blog opened once
// reads with no network (cold start included) and reconnects with `since` = the stored seq.
//
// One record per blog, shaped like a snapshot frame ({epoch, head, blog, posts, next_before})
// plus `slug` and `savedAt`, written a moment after each change (coalesced, never per frame).
// Bounded: the newest MAX_POSTS_PER_BLOG posts (pinned ones always) of the blogs saved most
// recently (MAX_BLOGS, or the server's LIVEBLOG_OFFLINE_BLOGS); older posts come back from the
// server through "Older updates". A blog forgotten takes its offline photos with it.

import "./indexeddb.js"; // globalThis.LiveblogIDB, shared with the outbox and the service worker
import "./photo-cache.js"; // globalThis.LiveblogPhotos, shared with the service worker

const { open, run } = globalThis.LiveblogIDB;
const DB_NAME = "liveblog";
const DB_VERSION = 1;
const FEEDS = "feeds";
export const MAX_POSTS_PER_BLOG = 200;
export const MAX_BLOGS = 20;
const SAVE_DELAY_MS = 250;

/** The record kept for a feed state: the newest posts, pinned ones always. */
export function recordOf(state, now = Date.now()) {
  const posts = [...state.posts.values()];
  const unpinned = posts.filter((post) => !post.pinned).sort((a, b) => b.id - a.id);
  const kept = unpinned.slice(0, MAX_POSTS_PER_BLOG);
  const trimmed = kept.length < unpinned.length;
  return {
    slug: state.blog.slug,
    epoch: state.epoch,
    head: state.seq,
    blog: state.blog,
    posts: [...posts.filter((post) => post.pinned), ...kept],
    // Anything older than the oldest kept post is to be loaded from the server.
    next_before: trimmed ? kept.at(-1).id : state.nextBefore,
    savedAt: now,
  };
}

/** Which state a page should start from: its own server-rendered data, or the stored copy
 *  when that is the same epoch and at least as far along (the page came from a cache; at the
 *  same head the copy may hold more than the page's one page of posts). */
export function newest(pageData, stored) {
  if (stored && stored.epoch === pageData.epoch && stored.head >= pageData.head) return stored;
  return pageData;
}

export class FeedStore {
  constructor(db, { maxBlogs = MAX_BLOGS } = {}) {
    this.db = db;
    this.maxBlogs = maxBlogs;
    this.pending = null;
    this.timer = null;
    this.savedHead = null; // the head of the last completed save (tests wait on it)
  }

  /** The store, or null where IndexedDB is unavailable (some private modes): reading still
   *  works, only without an offline copy. */
  static async open(options = {}) {
    if (!globalThis.indexedDB) return null;
    try {
      return new FeedStore(await open(DB_NAME, DB_VERSION, (db) => {
        const feeds = db.createObjectStore(FEEDS, { keyPath: "slug" });
        feeds.createIndex("savedAt", "savedAt");
      }), options);
    } catch (error) {
      console.warn("liveblog: no local copy (IndexedDB unavailable)", error);
      return null;
    }
  }

  load(slug) {
    return run(this.db, FEEDS, "readonly", (feeds) => feeds.get(slug));
  }

  /** Save a little later, once for a burst of changes. */
  saveSoon(state) {
    this.pending = state;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const latest = this.pending;
      this.pending = null;
      this.save(latest).catch((error) => console.warn("liveblog: saving failed", error));
    }, SAVE_DELAY_MS);
  }

  async save(state) {
    const record = recordOf(state);
    // Strict (run's writes are): on disk before "complete", so a browser closed right after
    // keeps the copy (Chromium's default, relaxed, may lose the last writes). Saves are
    // coalesced, so rare.
    const forgotten = [];
    await run(this.db, FEEDS, "readwrite", (feeds) => {
      feeds.put(record);
      // Forget the blogs saved longest ago beyond the bound.
      const cursor = feeds.index("savedAt").openKeyCursor(null, "prev");
      let seen = 0;
      cursor.onsuccess = () => {
        const position = cursor.result;
        if (!position) return;
        seen += 1;
        if (seen > this.maxBlogs) {
          feeds.delete(position.primaryKey);
          forgotten.push(position.primaryKey);
        }
        position.continue();
      };
    });
    this.savedHead = record.head;
    // After the commit: the photos go only once their blog's copy has.
    await Promise.all(forgotten.map((slug) => globalThis.LiveblogPhotos.evictBlog(slug)));
  }
}
