// The shared IndexedDB helper (static/liveblog/indexeddb.js), in this test's own fresh storage.

import "/static/liveblog/indexeddb.js";
import { assert, test } from "./testing.js";

const { finished, open, run, settled } = globalThis.LiveblogIDB;

function notes() {
  return open("notes-test", 1, (db, oldVersion) => {
    assert.equal(oldVersion, 0, "upgrade runs once, from nothing");
    db.createObjectStore("notes", { keyPath: "id" });
  });
}

test("open creates the stores once, and run answers with the request's result", async () => {
  const db = await notes();
  assert.deepEqual([...db.objectStoreNames], ["notes"]);
  assert.equal(await run(db, "notes", "readwrite", (store) => store.put({ id: 1, text: "one" })), 1);
  assert.deepEqual(await run(db, "notes", "readonly", (store) => store.get(1)), { id: 1, text: "one" });
  // Not a request: whatever work returned, once the transaction has committed.
  const count = await run(db, "notes", "readwrite", (store) => {
    store.put({ id: 2, text: "two" });
    return "done";
  });
  assert.equal(count, "done");
  db.close();
  const again = await notes(); // at the same version: no upgrade
  assert.equal(await run(again, "notes", "readonly", (store) => store.count()), 2);
  again.close();
});

test("a failed write rejects and stores nothing", async () => {
  const db = await notes();
  await run(db, "notes", "readwrite", (store) => store.add({ id: 1, text: "first" }));
  let failure = null;
  try {
    await run(db, "notes", "readwrite", (store) => {
      store.add({ id: 3, text: "in the same transaction" });
      store.add({ id: 1, text: "a second id 1" }); // a ConstraintError aborts the transaction
    });
  } catch (error) {
    failure = error;
  }
  assert.equal(failure?.name, "ConstraintError");
  assert.equal(await run(db, "notes", "readonly", (store) => store.count()), 1, "half a transaction was kept");

  // settled() and finished() on their own: a request's error, an aborted transaction.
  const transaction = db.transaction("notes", "readwrite");
  const request = transaction.objectStore("notes").add({ id: 1 });
  const outcomes = await Promise.allSettled([settled(request), finished(transaction)]);
  assert.deepEqual(outcomes.map((outcome) => [outcome.status, outcome.reason?.name]),
    [["rejected", "ConstraintError"], ["rejected", "ConstraintError"]]);
  db.close();
});

test("the shared scripts load in a worker, as the service worker loads them", async () => {
  // A dedicated worker stands in for the service worker: the same importScripts, no window.
  const scripts = ["/static/liveblog/indexeddb.js", "/static/liveblog/outbox-core.js"]
    .map((path) => JSON.stringify(new URL(path, location.href).href));
  const source = `importScripts(${scripts.join(", ")});
    postMessage([typeof self.LiveblogIDB.run, typeof self.LiveblogOutbox.flush]);`;
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  const answer = await new Promise((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(`the worker failed: ${event.message}`));
  });
  worker.terminate();
  assert.deepEqual(answer, ["function", "function"]);
});
