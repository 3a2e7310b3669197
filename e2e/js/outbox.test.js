// The author's outbox (static/liveblog/outbox.js): when it retries.

import { RETRY_FIRST_MS, RETRY_MAX_MS, nextDelay, retryDelay } from "/static/liveblog/outbox.js";
import { assert, test } from "./testing.js";

test("the retry schedule doubles from 2 s to 60 s, with jitter", () => {
  assert.deepEqual([RETRY_FIRST_MS, RETRY_MAX_MS], [2000, 60000]);
  // Half to all of a cap that doubles from 2 s up to 60 s.
  const bounds = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => [retryDelay(n, () => 0), retryDelay(n, () => 1)]);
  assert.deepEqual(bounds, [[1000, 2000], [2000, 4000], [4000, 8000], [8000, 16000],
    [16000, 32000], [30000, 60000], [30000, 60000], [30000, 60000]]);
});

test("a throttled send stays queued and waits at least its Retry-After", async () => {
  const core = globalThis.LiveblogOutbox;
  await core.enqueue({ kind: "create", slug: "final", clientId: "c-1", fields: { body: "Goal" } });
  const realFetch = globalThis.fetch;
  const body = JSON.stringify({ error: "rate_limited", detail: "too many requests" });
  globalThis.fetch = async () => new Response(body, {
    status: 429, headers: { "Retry-After": "37", "Content-Type": "application/json" },
  });
  let result;
  try {
    result = await core.flush();
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(result, { retry: true, needsLogin: false, retryAfter: 37 });
  assert.deepEqual((await core.entries()).map((entry) => entry.state), ["queued"]);
  assert.equal(nextDelay(0, result.retryAfter, () => 1), 37000, "the backoff alone would be 2 s");
  assert.equal(nextDelay(6, 2, () => 1), 60000, "a short Retry-After does not cut the backoff");
  assert.equal(nextDelay(0, undefined, () => 1), 2000, "no Retry-After: the backoff");
});

test("Retry-After is read in seconds or as an HTTP date", () => {
  const seconds = globalThis.LiveblogOutbox.retryAfterSeconds;
  const now = Date.parse("Mon, 30 Nov 2026 17:00:00 GMT");
  assert.deepEqual(
    [seconds("120", now), seconds(" 5 ", now), seconds("Mon, 30 Nov 2026 17:01:30 GMT", now),
      seconds("Mon, 30 Nov 2026 16:00:00 GMT", now), seconds(null, now), seconds("soon", now)],
    [120, 5, 90, 0, 0, 0],
  );
});
