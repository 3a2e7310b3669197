// The reader's notification button (static/liveblog/push.js) with a fake browser (permission,
// service worker, PushManager, fetch), and what a push shows (push-core.js). The device's record
// of blogs is the real one, in this test's own fresh IndexedDB.

import { keyBytes, LABEL_OFF, LABEL_ON, PushToggle, REASONS, unsupportedReason } from "/static/liveblog/push.js";
import { assert, test } from "./testing.js";

const core = globalThis.LiveblogPush;
const KEY = "BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0A";
const OTHER_KEY = "BP__";
const ORIGIN = "http://client.test";

/** A browser where push works, with what it was asked recorded in `calls` and `requests`. */
function fakeBrowser({
  permission = "default", answer = "granted", subscribed = null, userAgent = "Mozilla/5.0 (X11; Linux x86_64)",
  standalone = false, status = {},
} = {}) {
  const calls = [];
  const requests = [];
  let made = 0;
  const subscription = (endpoint, key) => ({
    endpoint,
    options: { userVisibleOnly: true, applicationServerKey: keyBytes(key).buffer },
    unsubscribed: false,
    toJSON() {
      return { endpoint, expirationTime: null, keys: { p256dh: `p256dh-${endpoint}`, auth: "auth" } };
    },
    async unsubscribe() {
      calls.push(["unsubscribe", endpoint]);
      this.unsubscribed = true;
      if (pushManager.current === this) pushManager.current = null;
      return true;
    },
  });
  const pushManager = {
    current: subscribed ? subscription(subscribed.endpoint, subscribed.key ?? KEY) : null,
    async getSubscription() { return this.current; },
    async subscribe(options) {
      calls.push(["subscribe", options.userVisibleOnly, [...options.applicationServerKey]]);
      made += 1;
      this.current = subscription(`https://push.example/${made}`, KEY);
      return this.current;
    },
  };
  const registration = { pushManager };
  const Notification = {
    permission,
    async requestPermission() {
      calls.push(["requestPermission"]);
      this.permission = answer;
      return answer;
    },
  };
  const env = {
    navigator: {
      userAgent, maxTouchPoints: 0, standalone,
      serviceWorker: { ready: Promise.resolve(registration), getRegistration: async () => registration },
    },
    window: { PushManager: class {}, Notification, matchMedia: () => ({ matches: standalone }) },
    fetch: async (url, init = {}) => {
      const method = init.method ?? "GET";
      requests.push({
        url, method, body: init.body ? JSON.parse(init.body) : null,
        credentials: init.credentials, type: init.headers?.["Content-Type"] ?? null,
      });
      if (url === "/api/push/key") return Response.json({ key: KEY });
      const code = status[method] ?? (method === "POST" ? 201 : 200);
      return Response.json(code < 300 ? { subscribed: method === "POST" } : { error: "invalid" }, { status: code });
    },
  };
  return { env, calls, requests, pushManager };
}

function toggleFor(slug, browser) {
  const button = document.createElement("button");
  const note = document.createElement("p");
  document.getElementById("harness").append(button, note);
  return new PushToggle({ slug, button, note, env: browser.env });
}

test("unsupportedReason: iOS outside the installed app, no push in the browser, blocked", () => {
  const works = fakeBrowser().env;
  assert.equal(unsupportedReason(works), null);
  const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1";
  assert.equal(unsupportedReason(fakeBrowser({ userAgent: iphone }).env), "ios");
  assert.equal(unsupportedReason(fakeBrowser({ userAgent: iphone, standalone: true }).env), null);
  // iPadOS says it is a Mac; its touch screen gives it away.
  const ipad = fakeBrowser({ userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15" }).env;
  assert.equal(unsupportedReason(ipad), null, "a Mac without touch is a Mac");
  ipad.navigator.maxTouchPoints = 5;
  assert.equal(unsupportedReason(ipad), "ios");
  const noPush = fakeBrowser().env;
  delete noPush.window.PushManager;
  assert.equal(unsupportedReason(noPush), "unsupported");
  const noWorker = fakeBrowser().env;
  delete noWorker.navigator.serviceWorker;
  assert.equal(unsupportedReason(noWorker), "unsupported");
  assert.equal(unsupportedReason(fakeBrowser({ permission: "denied" }).env), "denied");
});

test("keyBytes reads the server's base64url key", () => {
  const bytes = keyBytes(KEY);
  assert.equal(bytes.length, 65);
  assert.deepEqual([...bytes.slice(0, 3)], [4, 1, 2]);
  assert.equal(bytes[62], 62, "- is +");
  assert.equal(bytes[63], 63, "_ is /");
  assert.deepEqual([...keyBytes(OTHER_KEY)], [4, 255, 255]);
});

test("the page load asks nothing: no prompt, no request, the button offers to turn on", async () => {
  const browser = fakeBrowser();
  const toggle = await toggleFor("match", browser).start();
  assert.deepEqual(browser.calls, []);
  assert.deepEqual(browser.requests, []);
  assert.equal(toggle.button.disabled, false);
  assert.equal(toggle.button.getAttribute("aria-pressed"), "false");
  assert.equal(toggle.button.textContent, LABEL_OFF);
  assert.equal(toggle.note.textContent, "");
});

test("a tap turns on: permission, the server's key, subscribe, POST, recorded", async () => {
  const browser = fakeBrowser();
  const toggle = await toggleFor("match", browser).start();
  await toggle.toggle();
  assert.deepEqual(browser.calls, [["requestPermission"], ["subscribe", true, [...keyBytes(KEY)]]]);
  assert.deepEqual(browser.requests, [
    { url: "/api/push/key", method: "GET", body: null, credentials: "omit", type: null },
    {
      url: "/api/liveblog/match/push", method: "POST", credentials: "omit", type: "application/json",
      body: { endpoint: "https://push.example/1", expirationTime: null, keys: { p256dh: "p256dh-https://push.example/1", auth: "auth" } },
    },
  ]);
  assert.deepEqual(await core.blogs.all(), [{ slug: "match", endpoint: "https://push.example/1" }]);
  assert.equal(toggle.button.getAttribute("aria-pressed"), "true");
  assert.equal(toggle.button.textContent, LABEL_ON);
  // Reloaded: the page finds it on, still without asking anything.
  browser.calls.length = 0;
  const again = await toggleFor("match", browser).start();
  assert.equal(again.button.textContent, LABEL_ON);
  assert.deepEqual(browser.calls, []);
});

test("off: DELETE for the blog; the browser's subscription goes with the last blog", async () => {
  const browser = fakeBrowser();
  const first = await toggleFor("match", browser).start();
  const second = await toggleFor("final", browser).start();
  await first.toggle();
  await second.toggle();
  assert.equal(browser.calls.filter(([name]) => name === "subscribe").length, 1, "one subscription for the device");
  browser.requests.length = 0;
  await first.toggle();
  assert.deepEqual(browser.requests.map(({ url, method, body }) => [url, method, body]), [
    ["/api/liveblog/match/push", "DELETE", { endpoint: "https://push.example/1" }],
  ]);
  assert.equal(first.button.getAttribute("aria-pressed"), "false");
  assert.equal(browser.pushManager.current?.endpoint, "https://push.example/1", "kept for the other blog");
  await second.toggle();
  assert.equal(browser.pushManager.current, null);
  assert.deepEqual(browser.calls.at(-1), ["unsubscribe", "https://push.example/1"]);
  assert.deepEqual(await core.blogs.all(), []);
});

test("a refused prompt: blocked disables the button and says why; dismissed leaves it on offer", async () => {
  const blocked = fakeBrowser({ answer: "denied" });
  const toggle = await toggleFor("match", blocked).start();
  await toggle.toggle();
  assert.equal(toggle.button.disabled, true);
  assert.equal(toggle.note.textContent, REASONS.denied);
  assert.deepEqual(blocked.requests, []);
  const dismissed = fakeBrowser({ answer: "default" });
  const other = await toggleFor("match", dismissed).start();
  await other.toggle();
  assert.equal(other.button.disabled, false);
  assert.equal(other.button.getAttribute("aria-pressed"), "false");
  assert.ok(other.note.textContent.startsWith("Notifications were not allowed"), other.note.textContent);
  // Blocked before the page loaded: disabled from the start, never a prompt.
  const before = fakeBrowser({ permission: "denied" });
  const off = await toggleFor("match", before).start();
  assert.equal(off.button.disabled, true);
  assert.equal(off.note.textContent, REASONS.denied);
  await off.toggle();
  assert.deepEqual(before.calls, []);
});

test("a refused POST leaves nothing behind and says so", async () => {
  const browser = fakeBrowser({ status: { POST: 400 } });
  const toggle = await toggleFor("match", browser).start();
  await toggle.toggle();
  assert.equal(browser.pushManager.current, null, "the subscription made for it was dropped");
  assert.deepEqual(await core.blogs.all(), []);
  assert.equal(toggle.button.getAttribute("aria-pressed"), "false");
  assert.equal(toggle.note.textContent, "Notifications could not be turned on. Try again");
});

test("a record the browser no longer backs reads as off, and is forgotten", async () => {
  await core.blogs.put("match", "https://push.example/gone");
  const browser = fakeBrowser({ permission: "granted" });
  const toggle = await toggleFor("match", browser).start();
  assert.equal(toggle.button.getAttribute("aria-pressed"), "false");
  assert.deepEqual(await core.blogs.all(), []);
});

test("a tap with a subscription made with another key: it is replaced before the POST", async () => {
  const browser = fakeBrowser({
    permission: "granted", subscribed: { endpoint: "https://push.example/old", key: OTHER_KEY },
  });
  const toggle = await toggleFor("match", browser).start();
  assert.equal(toggle.button.getAttribute("aria-pressed"), "false");
  await toggle.toggle();
  assert.deepEqual(browser.calls.map(([name]) => name), ["requestPermission", "unsubscribe", "subscribe"]);
  assert.deepEqual(browser.requests.slice(1).map(({ url, method, body }) => [url, method, body.endpoint]), [
    ["/api/liveblog/match/push", "POST", "https://push.example/1"],
  ]);
  assert.deepEqual(await core.blogs.all(), [{ slug: "match", endpoint: "https://push.example/1" }]);
});

test("the server's key changed: the page load subscribes again, without a prompt, and moves the blogs", async () => {
  await core.blogs.put("match", "https://push.example/old");
  const browser = fakeBrowser({
    permission: "granted", subscribed: { endpoint: "https://push.example/old", key: OTHER_KEY },
  });
  const toggle = await toggleFor("match", browser).start();
  assert.equal(toggle.button.getAttribute("aria-pressed"), "true");
  assert.deepEqual(browser.calls.map(([name]) => name), ["unsubscribe", "subscribe"]);
  const moved = async () => (await core.blogs.all())[0].endpoint === "https://push.example/1";
  for (let tries = 0; tries < 100 && !(await moved()); tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10)); // the move runs in the background
  }
  assert.deepEqual(browser.requests.slice(1).map(({ url, method, body }) => [url, method, body.endpoint]), [
    ["/api/liveblog/match/push", "POST", "https://push.example/1"],
    ["/api/liveblog/match/push", "DELETE", "https://push.example/old"],
  ]);
  // The same key: nothing is made again.
  browser.calls.length = 0;
  await toggleFor("match", browser).start();
  assert.deepEqual(browser.calls, []);
});

test("a push shows the blog's title, the post's text and photo, one tag per blog", () => {
  const icons = { origin: ORIGIN, icon: "/static/pwa/icon-192.abc.png", badge: "/static/pwa/badge-96.abc.png" };
  const payload = {
    blog: "match", title: "Cup final", post: 42, seq: 7, text: "GOAL! 1-0",
    image: "/media/liveblog/photos/match/a1-800.jpg", url: "/liveblog/match/#post-42",
  };
  assert.deepEqual(core.notification(payload, icons), {
    title: "Cup final",
    options: {
      body: "GOAL! 1-0", icon: icons.icon, badge: icons.badge, tag: "liveblog-match", renotify: true,
      image: `${ORIGIN}/media/liveblog/photos/match/a1-800.jpg`,
      data: { url: "/liveblog/match/#post-42", blog: "match", post: 42 },
    },
  });
  // A photo on a media host over https is shown; another site's page is never opened.
  const elsewhere = core.notification(
    { ...payload, image: "https://media.example/a.jpg", url: "https://evil.example/liveblog/match/#post-42" }, icons);
  assert.equal(elsewhere.options.image, "https://media.example/a.jpg");
  assert.equal(elsewhere.options.data.url, "/liveblog/match/");
  assert.equal("image" in core.notification({ ...payload, image: "http://media.example/a.jpg" }, icons).options, false);
  assert.equal("image" in core.notification({ ...payload, image: null }, icons).options, false);
  // Unreadable: still a notification (userVisibleOnly), opening the blog list.
  for (const unreadable of [null, "text", { title: "no blog" }, [1, 2]]) {
    const generic = core.notification(unreadable, icons);
    assert.equal(generic.title, "Liveblog");
    assert.deepEqual(generic.options.data, { url: "/" });
    assert.equal(generic.options.tag, "liveblog");
  }
});
