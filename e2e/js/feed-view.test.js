// FeedView's helpers (static/liveblog/feed-view.js).

import { relativeTime } from "/static/liveblog/feed-view.js";
import { assert, test } from "./testing.js";

test("relative times", () => {
  const now = new Date("2024-05-01T12:00:00Z");
  const ago = (seconds) => relativeTime(new Date(now - seconds * 1000), now);
  const absolute = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });
  const old = new Date(now - 25 * 3600 * 1000);
  const older = new Date("2023-11-20T08:30:00Z");

  assert.deepEqual([0, 10, 44, 45, 4 * 60, 59 * 60, 2 * 3600, 23 * 3600].map(ago),
    ["just now", "just now", "just now", "1 min ago", "4 min ago", "59 min ago", "2 h ago", "23 h ago"]);
  assert.equal(relativeTime(new Date(+now + 5000), now), "just now", "a clock a little ahead");
  const shownOld = relativeTime(old, now);
  assert.equal(shownOld, absolute.format(old));
  assert.ok(!shownOld.includes("ago") && shownOld.includes("2024"), shownOld);
  const shownOlder = relativeTime(older, now);
  assert.ok(shownOlder === absolute.format(older) && shownOlder.includes("2023"), shownOlder);
  assert.equal(relativeTime(new Date(Date.now() - 3 * 60 * 1000)), "3 min ago", "now by default");
});
