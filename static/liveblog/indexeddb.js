// IndexedDB as promises, the one helper for the reader's local copy (feed-store.js, an ES module)
// and the author's outbox (outbox-core.js, which the service worker loads too). A classic script,
// so that the worker can `importScripts` it and a module can `import` it for its side effect: no
// import or export, it defines globalThis.LiveblogIDB and nothing else.
(function (global) {
  "use strict";

  /** A request's result, or its error. */
  function settled(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  /** Resolves once a transaction has committed; rejects with the reason if it was aborted. */
  function finished(transaction) {
    return new Promise((resolve, reject) => {
      // A failed request's `error` reaches the transaction before the abort it causes, while
      // transaction.error is still null: keep the request's error and reject on `abort`.
      let cause = null;
      transaction.oncomplete = () => resolve();
      transaction.onerror = (event) => { cause = cause ?? event.target.error; };
      transaction.onabort = () => reject(
        transaction.error ?? cause ?? new DOMException("the transaction was aborted", "AbortError"),
      );
    });
  }

  /** Open a database, creating or upgrading it with `upgrade(db, oldVersion, transaction)`
   *  first if needed (the transaction reaches the stores that exist already). */
  function open(name, version, upgrade) {
    const request = indexedDB.open(name, version);
    request.onupgradeneeded = (event) => upgrade(request.result, event.oldVersion, request.transaction);
    return settled(request);
  }

  /**
   * Run `work(store, transaction)` in one transaction on `storeName` and resolve, once it has
   * committed, with what `work` returned (a request: its result). Writes are strict: on disk
   * before they count as done, so what an author was told is queued survives a crash.
   */
  async function run(db, storeName, mode, work) {
    const options = mode === "readwrite" ? { durability: "strict" } : {};
    const transaction = db.transaction(storeName, mode, options);
    const result = work(transaction.objectStore(storeName), transaction);
    await finished(transaction);
    return result instanceof IDBRequest ? result.result : result;
  }

  global.LiveblogIDB = Object.freeze({ settled, finished, open, run });
})(globalThis);
