// Runs the service worker as served (/sw.js, its path in argv[2]) in a Node `vm` context with a
// fake ServiceWorkerGlobalScope, and tells what it does with each request of argv[3] (JSON:
// [{url, mode, viewer}]): whether a fetch listener answered it (respondWith), and which caches
// it was put into. Used by tests/test_desk_never_public.py.
import fs from "node:fs";
import console from "node:console";
import process from "node:process";
import { URL } from "node:url";
import vm from "node:vm";

const [source, requests] = [fs.readFileSync(process.argv[2], "utf8"), JSON.parse(process.argv[3])];
const ORIGIN = "http://testserver";
const listeners = {};
let puts = [];
let viewerHeader = "anonymous";

const cache = (name) => ({
  put: async (request) => { puts.push({ cache: name, url: request.url }); },
  addAll: async () => {},
  keys: async () => [],
  delete: async () => true,
});
const meta = {};
const context = {
  URL, Promise, console,
  setTimeout: () => 0, // the page timeout never fires: the fake network answers at once
  importScripts: () => {},
  caches: {
    open: async (name) => cache(name),
    match: async () => undefined,
    keys: async () => [],
    delete: async () => true,
  },
  fetch: async () => ({
    ok: true, type: "basic", redirected: false, status: 200,
    headers: { get: (name) => (name === "X-Liveblog-Viewer" ? viewerHeader : null) },
    clone() { return this; },
  }),
};
context.self = {
  ...context,
  location: { origin: ORIGIN },
  addEventListener: (type, listener) => { (listeners[type] ||= []).push(listener); },
  clients: { matchAll: async () => [], claim: async () => {} },
  skipWaiting: () => {},
  LiveblogOutbox: {
    getMeta: async (key) => meta[key] ?? null,
    setMeta: async (key, value) => { meta[key] = value; },
    deleteMeta: async (key) => { delete meta[key]; },
    sender: async () => null,
    forgetSender: async () => {},
  },
  LiveblogPhotos: { CACHE_NAME: "liveblog-photos", respond: async () => "photo cache" },
};
vm.createContext(context);
vm.runInContext(source, context);

const results = [];
for (const { url, mode, viewer } of requests) {
  puts = [];
  viewerHeader = viewer;
  let answered = null;
  const event = {
    request: { method: "GET", mode, url: `${ORIGIN}${url}` },
    respondWith: (promise) => { answered = promise; },
    waitUntil: () => {},
  };
  for (const listener of listeners.fetch || []) listener(event);
  if (answered) await answered;
  results.push({ url, mode, viewer, answered: Boolean(answered), puts });
}
process.stdout.write(JSON.stringify({ fetchListeners: (listeners.fetch || []).length, results }));

