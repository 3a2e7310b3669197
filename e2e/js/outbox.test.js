// The author's outbox (static/liveblog/outbox.js, outbox-core.js): when it retries, and whose
// entries it sends on a shared phone (sign-out.js).

import { RETRY_FIRST_MS, RETRY_MAX_MS, nextDelay, retryDelay } from "/static/liveblog/outbox.js";
import { forgetDrafts } from "/static/liveblog/sign-out.js";
import { assert, test } from "./testing.js";

const core = () => globalThis.LiveblogOutbox;

/** Run `work` with fetch answering `answer(url, init)`; resolves to the requests made. */
async function withFetch(answer, work) {
  const realFetch = globalThis.fetch;
  const requests = [];
  globalThis.fetch = async (url, init) => {
    requests.push({ url, init });
    return answer(url, init);
  };
  try {
    await work();
  } finally {
    globalThis.fetch = realFetch;
  }
  return requests;
}

function created(seq) {
  return new Response(JSON.stringify({ seq, post: { id: seq } }), {
    status: 201, headers: { "Content-Type": "application/json" },
  });
}

function entry(owner, body) {
  return { kind: "create", owner, slug: "final", clientId: `${owner}-${body}`, fields: { body } };
}

test("the retry schedule doubles from 2 s to 60 s, with jitter", () => {
  assert.deepEqual([RETRY_FIRST_MS, RETRY_MAX_MS], [2000, 60000]);
  // Half to all of a cap that doubles from 2 s up to 60 s.
  const bounds = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => [retryDelay(n, () => 0), retryDelay(n, () => 1)]);
  assert.deepEqual(bounds, [[1000, 2000], [2000, 4000], [4000, 8000], [8000, 16000],
    [16000, 32000], [30000, 60000], [30000, 60000], [30000, 60000]]);
});

test("a throttled send stays queued and waits at least its Retry-After", async () => {
  const outbox = core();
  await outbox.enqueue(entry("7", "Goal"));
  await outbox.setSender("7", "token");
  const realFetch = globalThis.fetch;
  const body = JSON.stringify({ error: "rate_limited", detail: "too many requests" });
  globalThis.fetch = async () => new Response(body, {
    status: 429, headers: { "Retry-After": "37", "Content-Type": "application/json" },
  });
  let result;
  try {
    result = await outbox.flush();
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(result, { retry: true, needsLogin: false, retryAfter: 37 });
  assert.deepEqual((await outbox.entries()).map((item) => item.state), ["queued"]);
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

test("only the sender's entries are sent, each naming its owner", async () => {
  await core().enqueue(entry("1", "A's first"));
  await core().enqueue(entry("2", "B's post"));
  await core().enqueue(entry("1", "A's second"));
  await core().setSender("2", "token-of-b");
  let seq = 0;
  const requests = await withFetch(() => created((seq += 1)), async () => {
    assert.deepEqual(await core().flush(), { retry: false, needsLogin: false });
  });
  assert.deepEqual(requests.map((request) => JSON.parse(request.init.body).body), ["B's post"]);
  assert.equal(requests[0].init.headers["X-Liveblog-User"], "2");
  assert.equal(requests[0].init.headers["X-CSRFToken"], "token-of-b");
  assert.deepEqual((await core().unsent("1")).map((item) => item.fields.body),
    ["A's first", "A's second"]);
});

test("with no sender nothing is sent", async () => {
  await core().enqueue(entry("1", "Waiting"));
  const requests = await withFetch(() => created(1), async () => {
    assert.deepEqual(await core().flush(), { retry: false, needsLogin: true });
  });
  assert.deepEqual(requests, []);
});

test("a wrong_user answer stops the flush and forgets the sender", async () => {
  await core().enqueue(entry("1", "First"));
  await core().enqueue(entry("1", "Second"));
  await core().setSender("1", "token");
  const refused = JSON.stringify({ error: "wrong_user", detail: "another user" });
  const requests = await withFetch(
    () => new Response(refused, { status: 403, headers: { "Content-Type": "application/json" } }),
    async () => {
      const result = await core().flush();
      assert.deepEqual([result.retry, result.needsLogin], [true, true]);
    },
  );
  assert.equal(requests.length, 1, "the flush stopped at the first refusal");
  assert.equal(await core().sender(), undefined);
  assert.deepEqual((await core().unsent("1")).map((item) => item.state), ["queued", "queued"]);
});

test("signing out forgets sent entries, and unsent ones unless kept", async () => {
  await core().enqueue(entry("1", "Sent already"));
  await core().setSender("1", "token");
  await withFetch(() => created(1), () => core().flush());
  await core().enqueue(entry("1", "Kept"));
  await core().enqueue(entry("2", "Someone else's"));
  await core().signOut("1", { keepUnsent: true });
  assert.equal(await core().sender(), undefined);
  assert.deepEqual((await core().entries()).map((item) => item.fields.body), ["Kept", "Someone else's"]);
  await core().signOut("1", { keepUnsent: false });
  assert.deepEqual((await core().entries()).map((item) => item.fields.body), ["Someone else's"]);
});

test("an entry without an owner is refused", async () => {
  let refused = null;
  try {
    await core().enqueue({ kind: "create", slug: "final", clientId: "x", fields: { body: "?" } });
  } catch (error) {
    refused = error;
  }
  assert.ok(refused, "enqueue must refuse an entry that names nobody");
});

test("signing out removes the user's drafts and only theirs", () => {
  const storage = new Map([["liveblog:draft:1:final", "{}"], ["liveblog:draft:1:cup", "{}"],
    ["liveblog:draft:12:final", "{}"], ["other", "x"]]);
  const fake = {
    get length() { return storage.size; },
    key: (index) => [...storage.keys()][index],
    removeItem: (key) => storage.delete(key),
  };
  forgetDrafts("1", fake);
  assert.deepEqual([...storage.keys()], ["liveblog:draft:12:final", "other"]);
});

test("entries from before owners existed are dropped at the upgrade", async () => {
  const idb = globalThis.LiveblogIDB;
  const old = await idb.open("liveblog-outbox", 1, (db) => {
    db.createObjectStore("entries", { keyPath: "key", autoIncrement: true });
    db.createObjectStore("meta");
  });
  await idb.run(old, "entries", "readwrite", (store) => store.put(
    { kind: "create", slug: "final", clientId: "old", fields: { body: "Nobody's" }, state: "queued" },
  ));
  await idb.run(old, "meta", "readwrite", (store) => store.put("an old token", "csrf"));
  old.close();
  assert.deepEqual(await core().entries(), []);
  assert.equal(await core().getMeta("csrf"), undefined);
});
