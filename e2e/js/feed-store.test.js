// The reader's local copy (static/liveblog/feed-store.js), in this test's own IndexedDB (every
// test runs in a fresh browser context, so it starts empty).

import { FeedState } from "/static/liveblog/feed-state.js";
import { FeedStore, MAX_BLOGS, MAX_POSTS_PER_BLOG, newest, recordOf } from "/static/liveblog/feed-store.js";
import { assert, test } from "./testing.js";
import { post } from "./frames.js";

/** Resolves once `condition()` holds, looking every `every` ms; rejects after `ms` (a
 *  deadline, not a sleep). */
async function until(condition, { ms = 5000, every = 20 } = {}) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still not true after ${ms} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

test("the stored record keeps the newest posts and every pinned one", () => {
  const posts = [post(1, { pinned: true })];
  for (let id = 2; id < 302; id += 1) posts.push(post(id));
  const state = new FeedState({ epoch: "E1", seq: 300, blog: { slug: "match" }, posts });
  const record = recordOf(state, 1234);
  const kept = record.posts.map((p) => p.id);
  const newest200 = [];
  for (let id = 301; id > 101; id -= 1) newest200.push(id);

  assert.equal(MAX_POSTS_PER_BLOG, 200);
  assert.equal(kept[0], 1, "the old pinned post is not kept");
  assert.deepEqual(kept.slice(1), newest200);
  assert.equal(record.next_before, 102, "older posts must come back through \"Older updates\"");
  assert.deepEqual([record.head, record.epoch, record.slug, record.savedAt], [300, "E1", "match", 1234]);
});

test("a page starts from the stored copy only when it is further along", () => {
  const page = { epoch: "E1", head: 10 };
  assert.deepEqual([
    newest(page, undefined) === page,
    newest(page, { epoch: "E1", head: 12 }).head,
    newest(page, { epoch: "E1", head: 10 }) === page, // same head: the copy
    newest(page, { epoch: "E1", head: 9 }) === page,
    newest(page, { epoch: "E0", head: 99 }) === page,
  ], [true, 12, false, true, true]);
});

test("the store saves once for a burst and bounds the number of blogs", async () => {
  const store = await FeedStore.open();
  for (let n = 0; n < MAX_BLOGS + 3; n += 1) {
    const state = new FeedState({ epoch: "E", seq: n, blog: { slug: `blog-${n}` } });
    await store.save(state);
    const savedAt = Date.now();
    await until(() => Date.now() > savedAt, { every: 1 }); // the next save gets a later savedAt
  }
  const oldest = await store.load("blog-0");
  const newestSaved = await store.load(`blog-${MAX_BLOGS + 2}`);

  const state = new FeedState({ epoch: "E", seq: 1, blog: { slug: "burst" } });
  let saves = 0;
  const save = store.save.bind(store);
  store.save = (latest) => {
    saves += 1;
    return save(latest);
  };
  for (let seq = 1; seq <= 5; seq += 1) {
    state.seq = seq;
    store.saveSoon(state);
  }
  await until(() => store.savedHead === 5);
  const burst = await store.load("burst");
  assert.deepEqual(
    { oldest: oldest ?? null, newest: newestSaved.head, burst: burst.head, savedHead: store.savedHead, saves },
    { oldest: null, newest: 22, burst: 5, savedHead: 5, saves: 1 },
  );
});

test("a store keeps the number of blogs the server says, and their photos go with them", async () => {
  const store = await FeedStore.open({ maxBlogs: 2 });
  const photos = globalThis.LiveblogPhotos;
  const evicted = [];
  globalThis.LiveblogPhotos = { evictBlog: async (slug) => { evicted.push(slug); } };
  try {
    for (const slug of ["first", "second", "third"]) {
      await store.save(new FeedState({ epoch: "E", seq: 1, blog: { slug } }));
      const savedAt = Date.now();
      await until(() => Date.now() > savedAt, { every: 1 }); // the next save gets a later savedAt
    }
  } finally {
    globalThis.LiveblogPhotos = photos;
  }
  const kept = await Promise.all(["first", "second", "third"].map((slug) => store.load(slug)));
  assert.deepEqual(
    { kept: kept.map((record) => record?.slug ?? null), evicted },
    { kept: [null, "second", "third"], evicted: ["first"] },
  );
});
