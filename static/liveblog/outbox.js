// The author console's outbox on screen (#outbox, one li[data-client-id][data-state] per entry)
// and when it sends: at once after a submit, on page load, when the browser comes back online,
// when the live connection is back, through Background Sync where the browser has it (the
// service worker sends even with the tab closed), and otherwise on a backoff timer.
import "./indexeddb.js"; // before outbox-core.js, which uses it
import "./outbox-core.js";
import { apiErrorText, gettext, interpolate, language, ngettext } from "./i18n.js";

const core = globalThis.LiveblogOutbox;

// Retry after a network failure or a 5xx: 2 s doubling to 60 s, with jitter (half to all of it);
// after a 429 or 503, not before its Retry-After.
export const RETRY_FIRST_MS = 2000;
export const RETRY_MAX_MS = 60000;
const SYNC_TAG = "liveblog-outbox";
const stateLabels = () => ({
  queued: gettext("Queued"), sending: gettext("Sending…"), sent: gettext("Sent"), failed: gettext("Failed"),
});
// A create answered 202 went to the desk (outbox-core.js): what it became there.
const deskLabels = () => ({ submitted: gettext("Submitted to the desk"), scheduled: gettext("Scheduled") });
const deskTime = () => new Intl.DateTimeFormat(language(), { hour: "2-digit", minute: "2-digit" });
const kindLabels = () => ({ create: "", edit: gettext("Edit: "), delete: gettext("Delete: ") });

export function retryDelay(attempt, random = Math.random) {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** The wait before the next try: the backoff, but never less than the server's Retry-After. */
export function nextDelay(attempt, retryAfterSeconds = 0, random = Math.random) {
  return Math.max(retryDelay(attempt, random), retryAfterSeconds * 1000);
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; a phone on a LAN address over http has none.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function summaryOf(entry) {
  if (entry.kind === "delete") {
    return entry.fields.summary || interpolate(gettext("post %(id)s"), { id: entry.postId });
  }
  return entry.fields.body
    || (entry.fields.photo_alt ? interpolate(gettext("Photo: %(alt)s"), { alt: entry.fields.photo_alt }) : "");
}

/** "Sent #12", "Submitted to the desk", "Scheduled for 14:30", "Failed: reason", … */
export function stateLabel(entry) {
  const label = stateLabels()[entry.state];
  if (entry.state === "sent" && entry.desk) {
    const desk = deskLabels()[entry.desk] ?? gettext("Sent to the desk");
    return entry.desk === "scheduled" && entry.publishAt
      ? interpolate(gettext("%(state)s for %(time)s"), { state: desk, time: deskTime().format(new Date(entry.publishAt)) })
      : desk;
  }
  if (entry.state === "sent" && entry.seq) return `${label} #${entry.seq}`;
  return entry.detail ? interpolate(gettext("%(state)s: %(reason)s"), { state: label, reason: reasonText(entry) }) : label;
}

/** Why an entry waits or failed, in the page's language: outbox-core.js stores its own reasons
 *  in English (a number in them as "%(status)s" in the catalog), and the API's code with its
 *  refusals (i18n.js apiErrorText). */
export function reasonText(entry) {
  if (entry.error) return apiErrorText(entry.error, entry.detail);
  const status = /\((\d+)\)/.exec(entry.detail)?.[1];
  if (status) return interpolate(gettext(entry.detail.replace(status, "%(status)s")), { status });
  return gettext(entry.detail);
}

export class Outbox {
  /**
   * @param {object} options
   * @param {string} options.user               the signed-in user's id, from the server's page
   * @param {HTMLElement} options.list          the #outbox list
   * @param {HTMLElement} options.sessionBanner shown while the session needs a new sign-in
   * @param {(entry: object) => void} options.onRetry  a failed entry is to be edited and resent
   */
  constructor({ user, slug, list, sessionBanner, onRetry }) {
    this.user = user; // the signed-in user's id: the owner of what this page queues and shows
    this.slug = slug;
    this.list = list;
    this.sessionBanner = sessionBanner;
    this.onRetry = onRetry;
    this.flushing = false;
    this.again = false;
    this.timer = null;
    this.attempt = 0;
    this.needsLogin = false;
    // What entries sent to the desk said, for this page's life only: the stored entry forgets
    // its text once the desk has it (outbox-core.js), and so does the next page.
    this.summaries = new Map();
  }

  /** The server rendered this page for `user`: their entries may be sent, with its token. */
  async start(csrfToken) {
    await core.setSender(this.user, csrfToken);
    window.addEventListener("online", () => this.sendNow());
    navigator.serviceWorker?.addEventListener("message", (event) => {
      if (event.data && event.data.type === "outbox-changed") this.render();
    });
    await this.render();
    this.sendNow();
  }

  /** Queue a write and send it (and anything before it) as soon as possible. */
  async add(entry) {
    this.summaries.set(entry.clientId, summaryOf(entry));
    const stored = await core.enqueue({ owner: this.user, slug: this.slug, ...entry });
    await this.render();
    this.registerSync();
    this.sendNow();
    return stored;
  }

  registerSync() {
    navigator.serviceWorker?.ready
      .then((registration) => registration.sync?.register(SYNC_TAG))
      .catch(() => { /* no Background Sync here: the page's own triggers cover it */ });
  }

  /** Send now, skipping any backoff wait (network back, connection live, page load). */
  sendNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.flush();
  }

  async flush() {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    let result;
    try {
      result = await core.flush(() => this.render());
    } catch (error) {
      console.warn("liveblog: the outbox could not send", error);
      result = { retry: true, needsLogin: false };
    } finally {
      this.flushing = false;
    }
    this.needsLogin = result.needsLogin;
    if (this.again) {
      this.again = false;
      this.flush();
    } else if (result.retry && !result.needsLogin) {
      this.timer = setTimeout(() => this.flush(), nextDelay(this.attempt, result.retryAfter));
      this.attempt += 1;
    } else if (!result.retry) {
      this.attempt = 0;
    }
    await this.render();
  }

  /** This user's entries for this blog, and the sign-in banner while they wait for one. */
  async render() {
    const all = (await core.entries(this.user)).filter((entry) => entry.slug === this.slug);
    const items = all.reverse().map((entry) => this.item(entry));
    this.list.replaceChildren(...items);
    const waiting = all.filter((entry) => entry.state === "queued").length;
    this.sessionBanner.querySelector(".queued-count").textContent =
      interpolate(ngettext("%(count)s queued update", "%(count)s queued updates", waiting), { count: waiting });
    this.sessionBanner.hidden = !(this.needsLogin && waiting > 0);
  }

  item(entry) {
    const item = document.createElement("li");
    item.dataset.clientId = entry.clientId;
    item.dataset.state = entry.state;
    item.dataset.kind = entry.kind;
    const text = document.createElement("span");
    text.className = "outbox-text";
    const summary = entry.desk ? (this.summaries.get(entry.clientId) || gettext("Your update"))
      : summaryOf(entry);
    text.textContent = `${kindLabels()[entry.kind]}${summary.slice(0, 120)}`;
    const state = document.createElement("span");
    state.className = "outbox-state";
    state.textContent = stateLabel(entry);
    if (entry.desk) item.dataset.desk = entry.desk;
    item.append(text, state);
    if (entry.state === "failed") item.append(this.failedActions(entry));
    return item;
  }

  failedActions(entry) {
    const actions = document.createElement("span");
    actions.className = "outbox-actions";
    if (entry.kind === "create") {
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link-button outbox-retry";
      retry.textContent = gettext("Edit & retry");
      retry.addEventListener("click", async () => {
        await core.remove(entry.key);
        this.onRetry(entry);
        await this.render();
      });
      actions.append(retry);
    }
    const discard = document.createElement("button");
    discard.type = "button";
    discard.className = "link-button outbox-discard";
    discard.textContent = gettext("Discard");
    discard.addEventListener("click", async () => {
      await core.remove(entry.key);
      await this.render();
    });
    actions.append(discard);
    return actions;
  }
}
