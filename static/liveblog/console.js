// Author console: compose, an outbox that sends in order and retries without double-posting
// (every post carries a client_id made here; the server answers a known one with the first
// answer), and the live feed below.
import { startFeed } from "./live-feed.js";

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;
const SENT_KEPT = 10;
const STATE_LABELS = { queued: "Queued", sending: "Sending…", sent: "Sent", failed: "Failed" };

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; a phone on a LAN address over http has none.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

class Outbox {
  constructor({ list, endpoint, csrfToken }) {
    this.list = list;
    this.endpoint = endpoint;
    this.csrfToken = csrfToken;
    this.entries = [];
    this.pumping = false;
    this.retryTimer = null;
    this.retryAttempt = 0;
    window.addEventListener("online", () => this.retryNow());
  }

  add(fields) {
    const entry = { clientId: newClientId(), fields, state: "queued", element: this.render() };
    this.entries.push(entry);
    this.list.prepend(entry.element);
    this.show(entry);
    this.pump();
  }

  render() {
    const element = document.createElement("li");
    element.innerHTML = '<span class="outbox-text"></span> <span class="outbox-state"></span>';
    return element;
  }

  show(entry, detail = "") {
    const { element } = entry;
    element.dataset.clientId = entry.clientId;
    element.dataset.state = entry.state;
    element.querySelector(".outbox-text").textContent = entry.fields.body.slice(0, 120);
    element.querySelector(".outbox-state").textContent = detail
      ? `${STATE_LABELS[entry.state]}: ${detail}`
      : STATE_LABELS[entry.state];
  }

  retryNow() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAttempt = 0;
    this.pump();
  }

  /** Send queued entries one at a time, oldest first. */
  async pump() {
    if (this.pumping || this.retryTimer) return;
    this.pumping = true;
    try {
      let entry;
      while ((entry = this.entries.find((candidate) => candidate.state === "queued"))) {
        entry.state = "sending";
        this.show(entry);
        const outcome = await this.send(entry);
        if (outcome.retry) {
          entry.state = "queued";
          this.show(entry, outcome.detail);
          const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.retryAttempt);
          this.retryAttempt += 1;
          this.retryTimer = setTimeout(() => this.retryNow(), ceiling / 2 + Math.random() * ceiling / 2);
          return;
        }
        this.retryAttempt = 0;
        entry.state = outcome.ok ? "sent" : "failed";
        this.show(entry, outcome.detail);
        this.forgetOldSent();
      }
    } finally {
      this.pumping = false;
    }
  }

  async send(entry) {
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
        body: JSON.stringify({ client_id: entry.clientId, ...entry.fields }),
      });
    } catch (error) {
      return { retry: true, detail: "no network, will retry" };
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) { /* a proxy's HTML error page */ }
    if (response.ok) return { ok: true, detail: `#${answer.seq}` };
    if (response.status >= 500 || response.status === 429) {
      return { retry: true, detail: `server busy (${response.status}), will retry` };
    }
    return { ok: false, detail: answer.detail || `refused (${response.status})` };
  }

  forgetOldSent() {
    const sent = this.entries.filter((entry) => entry.state === "sent");
    for (const entry of sent.slice(0, Math.max(0, sent.length - SENT_KEPT))) {
      entry.element.remove();
      this.entries.splice(this.entries.indexOf(entry), 1);
    }
  }
}

function startConsole() {
  const form = document.getElementById("compose");
  const outbox = new Outbox({
    list: document.getElementById("outbox"),
    endpoint: form.action,
    csrfToken: form.querySelector("input[name=csrfmiddlewaretoken]").value,
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = form.elements.body.value;
    if (!body.trim()) return;
    outbox.add({
      body,
      key_event: form.elements.key_event.checked,
      pinned: form.elements.pinned.checked,
    });
    form.reset();
    form.elements.body.focus();
  });
  startFeed();
}

startConsole();
