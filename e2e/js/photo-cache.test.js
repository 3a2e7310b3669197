// The photos kept offline (static/liveblog/photo-cache.js): which width stands in for another,
// and which photos a trim evicts. The service worker's part runs in e2e/test_offline_photos.py.

import "/static/liveblog/indexeddb.js";
import "/static/liveblog/photo-cache.js";
import { assert, test } from "./testing.js";

const { evictions, nearestVariant, variantOf } = globalThis.LiveblogPhotos;
const MEDIA = "http://127.0.0.1:8000/media/liveblog/photos";

test("a variant's URL names its blog, its photo and its width", () => {
  assert.deepEqual(variantOf(`${MEDIA}/cup-final/9f3a-1024.jpg`),
    { slug: "cup-final", photo: "cup-final/9f3a", width: 1024 });
  assert.deepEqual(variantOf("/media/liveblog/photos/match/ab12-320.jpg").width, 320);
  assert.equal(variantOf(`${MEDIA}/match/ab12.jpg`), null, "no width");
  assert.equal(variantOf("http://127.0.0.1:8000/static/liveblog/app.css"), null);
});

test("offline, the nearest cached width of the same photo stands in", () => {
  const cached = [
    `${MEDIA}/match/aaaa-320.jpg`, `${MEDIA}/match/aaaa-640.jpg`, `${MEDIA}/match/aaaa-2048.jpg`,
    `${MEDIA}/match/bbbb-1024.jpg`, `${MEDIA}/other/aaaa-1024.jpg`,
  ];
  // The narrowest at least as wide (sharp enough), else the widest narrower one.
  assert.equal(nearestVariant(`${MEDIA}/match/aaaa-1024.jpg`, cached), `${MEDIA}/match/aaaa-2048.jpg`);
  assert.equal(nearestVariant(`${MEDIA}/match/aaaa-480.jpg`, cached), `${MEDIA}/match/aaaa-640.jpg`);
  assert.equal(nearestVariant(`${MEDIA}/match/bbbb-1600.jpg`, cached), `${MEDIA}/match/bbbb-1024.jpg`);
  // Another photo, or the same stem in another blog, never stands in.
  assert.equal(nearestVariant(`${MEDIA}/match/cccc-1024.jpg`, cached), null);
  assert.equal(nearestVariant(`${MEDIA}/third/aaaa-1024.jpg`, cached), null);
  assert.equal(nearestVariant("http://127.0.0.1:8000/media/other.png", cached), null);
});

test("a trim evicts the least recently used until both bounds hold", () => {
  const rows = [
    { url: "c", bytes: 300, usedAt: 3 },
    { url: "a", bytes: 100, usedAt: 1 },
    { url: "d", bytes: 100, usedAt: 4 },
    { url: "b", bytes: 500, usedAt: 2 },
  ];
  assert.deepEqual(evictions(rows, { maxPhotos: 10, maxBytes: 1000 }), []);
  assert.deepEqual(evictions(rows, { maxPhotos: 2, maxBytes: 1000 }), ["a", "b"]);
  // 1000 bytes: "a" alone leaves 900, still over 800; "b" too leaves 400.
  assert.deepEqual(evictions(rows, { maxPhotos: 10, maxBytes: 800 }), ["a", "b"]);
  assert.deepEqual(evictions(rows, { maxPhotos: 3, maxBytes: 950 }), ["a"]);
  // A photo larger than the byte bound is not kept either.
  assert.deepEqual(evictions([{ url: "huge", bytes: 2000, usedAt: 9 }], { maxPhotos: 10, maxBytes: 1000 }), ["huge"]);
});
