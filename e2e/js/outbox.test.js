// The author's outbox (static/liveblog/outbox.js): when it retries.

import { RETRY_FIRST_MS, RETRY_MAX_MS, retryDelay } from "/static/liveblog/outbox.js";
import { assert, test } from "./testing.js";

test("the retry schedule doubles from 2 s to 60 s, with jitter", () => {
  assert.deepEqual([RETRY_FIRST_MS, RETRY_MAX_MS], [2000, 60000]);
  // Half to all of a cap that doubles from 2 s up to 60 s.
  const bounds = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => [retryDelay(n, () => 0), retryDelay(n, () => 1)]);
  assert.deepEqual(bounds, [[1000, 2000], [2000, 4000], [4000, 8000], [8000, 16000],
    [16000, 32000], [30000, 60000], [30000, 60000], [30000, 60000]]);
});
