// The reader's "Notify me of key events" button (#push-toggle): Web Push for one blog.
//
// - The permission prompt appears only when the reader taps the button, never on page load.
// - On: permission, the server's VAPID key (GET /api/push/key), the browser's push subscription
//   (one per device, shared by every blog it follows), then POST it to the blog's push endpoint
//   and record the blog on this device (push-core.js). Off: DELETE it for this blog; the browser
//   subscription itself is dropped once no recorded blog uses it any more.
// - Where push cannot work the button is disabled and a short text says why: no service worker,
//   PushManager or Notification; iOS/iPadOS Safari outside the installed app (Apple offers push to
//   Home Screen apps only); notifications blocked in the browser's settings.
//
// The browser (navigator, window, fetch) is injected so that e2e/js/push.test.js can drive the
// logic with fakes.
import "./indexeddb.js"; // before push-core.js, which uses it
import "./push-core.js";
import { gettext } from "./i18n.js";

const core = globalThis.LiveblogPush;

export const LABEL_OFF = gettext("Notify me of key events");
export const LABEL_ON = gettext("Notifications on — turn off");
export const REASONS = Object.freeze({
  unsupported: gettext("This browser cannot show notifications from this site"),
  ios: gettext("Add this site to your Home Screen to get notifications"),
  denied: gettext("Notifications are blocked in your browser's settings"),
});
const NOT_ALLOWED = gettext("Notifications were not allowed: tap again to be asked again");
const FAILED_ON = gettext("Notifications could not be turned on. Try again");
const FAILED_OFF = gettext("Notifications could not be turned off. Try again");
const WORKER_TIMEOUT_MS = 10000; // the app's service worker should be running long before

/** iPhone, iPod, or an iPad (which says it is a Mac, but has a touch screen). */
export function isAppleMobile(nav) {
  const agent = nav.userAgent || "";
  return /\b(iPhone|iPad|iPod)\b/.test(agent) || (/\bMacintosh\b/.test(agent) && nav.maxTouchPoints > 1);
}

function isInstalledApp(nav, win) {
  return nav.standalone === true || Boolean(win.matchMedia?.("(display-mode: standalone)").matches);
}

/** Why push cannot work here ("ios", "unsupported" or "denied"), or null when it can. */
export function unsupportedReason({ navigator: nav, window: win }) {
  if (isAppleMobile(nav) && !isInstalledApp(nav, win)) return "ios";
  if (!nav.serviceWorker || !win.PushManager || !win.Notification) return "unsupported";
  if (win.Notification.permission === "denied") return "denied";
  return null;
}

/** The server's key (base64url, as GET /api/push/key gives it) as the bytes subscribe() takes. */
export function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const other = new Uint8Array(buffer);
  return other.length === bytes.length && other.every((byte, index) => byte === bytes[index]);
}

function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export class PushToggle {
  /**
   * @param {object} options
   * @param {string} options.slug          the blog
   * @param {HTMLButtonElement} options.button
   * @param {HTMLElement} options.note     says why the button is disabled, or what went wrong
   * @param {object} [options.env]         {navigator, window, fetch}: the browser, or fakes
   * @param {object} [options.blogs]       the device's record (push-core.js blogs)
   */
  constructor({
    slug, button, note,
    env = { navigator: globalThis.navigator, window: globalThis, fetch: (...args) => globalThis.fetch(...args) },
    blogs = core.blogs,
  }) {
    this.slug = slug;
    this.button = button;
    this.note = note;
    this.env = env;
    this.blogs = blogs;
    this.on = false;
    this.busy = false;
  }

  /** Show the button in its current state and handle taps; resolves once the state is known. */
  async start() {
    this.button.addEventListener("click", () => this.toggle());
    const reason = unsupportedReason(this.env);
    if (reason) {
      this.render({ reason });
      return this;
    }
    try {
      this.on = await this.isOn();
    } catch (error) {
      console.warn("liveblog: the notification state could not be read", error);
    }
    this.render();
    return this;
  }

  /** This blog is recorded on this device and the browser still holds a subscription. */
  async isOn() {
    if (this.env.window.Notification.permission !== "granted") return false;
    const registration = await this.env.navigator.serviceWorker.getRegistration();
    let subscription = await registration?.pushManager.getSubscription() ?? null;
    if (!subscription) {
      // The browser dropped it (site data cleared, permission reset): the record is stale.
      await this.blogs.clear();
      return false;
    }
    const recorded = await this.blogs.all();
    if (recorded.length === 0) return false;
    // The server's key changed (its pushes to this subscription can no longer arrive): the
    // permission stands, so subscribe again without asking. Offline, keep what there is.
    const key = await this.serverKey().catch(() => null);
    if (key && !sameBytes(subscription.options?.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    // A renewed subscription the server has not been told about: tell it, in the background.
    if (recorded.some(({ endpoint }) => endpoint !== subscription.endpoint)) {
      core.moveBlogs(this.env.fetch, subscription, this.blogs).catch(() => {});
    }
    return recorded.some(({ slug }) => slug === this.slug);
  }

  async subscription() {
    const registration = await this.env.navigator.serviceWorker.getRegistration();
    return await registration?.pushManager.getSubscription() ?? null;
  }

  async toggle() {
    if (this.busy || this.button.disabled) return;
    this.busy = true;
    this.button.setAttribute("aria-busy", "true");
    let message;
    try {
      message = this.on ? await this.turnOff() : await this.turnOn();
    } catch (error) {
      console.warn("liveblog: notifications", error);
      message = this.on ? FAILED_OFF : FAILED_ON;
    } finally {
      this.busy = false;
      this.button.removeAttribute("aria-busy");
    }
    const denied = this.env.window.Notification.permission === "denied";
    this.render(denied ? { reason: "denied" } : { message });
  }

  /** Resolves with a message for the reader ("" when it worked). */
  async turnOn() {
    // First, while the tap still counts as the reader's gesture: browsers prompt only then.
    const permission = await this.env.window.Notification.requestPermission();
    if (permission !== "granted") return permission === "denied" ? "" : NOT_ALLOWED;
    const key = await this.serverKey();
    const registration = await withTimeout(
      this.env.navigator.serviceWorker.ready, WORKER_TIMEOUT_MS, "the service worker");
    let subscription = await registration.pushManager.getSubscription();
    let fresh = false;
    if (subscription && !sameBytes(subscription.options?.applicationServerKey, key)) {
      // Made with a key the server no longer has: its pushes could never arrive.
      await subscription.unsubscribe();
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      fresh = true;
    }
    try {
      await core.send(this.env.fetch, this.slug, "POST", subscription.toJSON());
    } catch (error) {
      // Nothing else uses a subscription made just now: do not leave it behind.
      if (fresh && (await this.blogs.all()).length === 0) await subscription.unsubscribe();
      throw error;
    }
    await this.blogs.put(this.slug, subscription.endpoint);
    this.on = true;
    // Other blogs recorded with a subscription replaced just now get the new one.
    if (fresh) await core.moveBlogs(this.env.fetch, subscription, this.blogs);
    return "";
  }

  async turnOff() {
    const subscription = await this.subscription();
    if (subscription) {
      await core.send(this.env.fetch, this.slug, "DELETE", { endpoint: subscription.endpoint });
    }
    await this.blogs.remove(this.slug);
    this.on = false;
    if (subscription && (await this.blogs.all()).length === 0) await subscription.unsubscribe();
    return "";
  }

  async serverKey() {
    const response = await this.env.fetch("/api/push/key", { credentials: "omit" });
    if (!response.ok) throw new Error(`GET /api/push/key answered ${response.status}`);
    return keyBytes((await response.json()).key);
  }

  render({ reason = null, message = "" } = {}) {
    this.button.disabled = reason !== null;
    this.button.setAttribute("aria-pressed", String(this.on && reason === null));
    this.button.textContent = this.on && reason === null ? LABEL_ON : LABEL_OFF;
    this.note.textContent = reason ? REASONS[reason] : message;
  }
}

/** The reader page's button, if the page has one (templates/liveblog/reader.html): hidden
 *  until now, since without this script it could do nothing. */
export function startPush(slug, root = document) {
  const panel = root.getElementById("push");
  if (!panel) return null;
  const toggle = new PushToggle({
    slug, button: root.getElementById("push-toggle"), note: root.getElementById("push-note"),
  });
  return toggle.start().finally(() => { panel.hidden = false; }); // shown in its real state
}
