// The desk on the author console, drawn from a DeskState: one `li.submission[data-submission-id]
// [data-state]` per submission, cloned from the page's #submission-template.
//
// - Editors (#desk): the queue oldest first (waiting, returned, scheduled), then the recently
//   decided ones; the number waiting in the heading and in `document.title` as "(N) …".
// - A contributor (#my-submissions): their own, newest first, with the editor's note when
//   returned, the time when scheduled, the seq and a link when published.
//
// Every action is one tap (Publish, Withdraw's second tap confirms) or two (Edit, Return,
// Schedule, Revise open an inline form; its button sends). Updates never move the focus or
// close what the person is typing unless that action no longer applies; new submissions are
// announced in a polite live region. `html` arrives sanitized from the server.

import { announce } from "./announce.js";
import { clone } from "./feed-view.js";
import { EDITOR_ROLES, actionsFor } from "./desk-state.js";
import { gettext, interpolate, language, ngettext, parts } from "./i18n.js";

const BUTTON_LABELS = {
  publish: gettext("Publish"), edit: gettext("Edit"), return: gettext("Return"), schedule: gettext("Schedule"),
  revise: gettext("Revise"), withdraw: gettext("Withdraw"),
};
// pgettext would be better, but one word per state reads the same in these languages.
const HISTORY_LABELS = {
  submitted: gettext("Submitted"), revised: gettext("Revised"), withdrawn: gettext("Withdrawn"),
  returned: gettext("Returned"), edited: gettext("Edited"), scheduled: gettext("Scheduled"),
  published: gettext("Published"),
};

const STATE_LABELS = {
  submitted: gettext("Waiting"), returned: gettext("Returned"), scheduled: gettext("Scheduled"),
  published: gettext("Published"), withdrawn: gettext("Withdrawn"),
};
const CONNECTION_LABELS = {
  connecting: gettext("Connecting…"), live: gettext("Live"), reconnecting: gettext("Reconnecting…"),
  offline: gettext("Offline"), closed: gettext("Not connected"),
};
const NOTE_MAX_CHARS = 500; // as the server's (services.NOTE_MAX_CHARS)
const DEFAULT_SCHEDULE_MS = 15 * 60 * 1000; // Schedule's first suggestion: a quarter of an hour on
const TITLE_COUNT = /^\(\d+\) /;

const timeFormat = new Intl.DateTimeFormat(language(), { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" });

/** A time as people read it: the clock time today, else the date too. */
export function readableTime(iso, now = new Date()) {
  const when = new Date(iso);
  return when.toDateString() === now.toDateString()
    ? timeFormat.format(when) : dateTimeFormat.format(when);
}

/** A datetime-local input's value ("2026-12-01T14:30", local time) as ISO 8601 with its zone
 *  (UTC, "Z"), or null when empty or not a time. */
export function isoFromLocal(value) {
  if (!value) return null;
  const when = new Date(value); // date-time without an offset: local time
  return Number.isNaN(when.getTime()) ? null : when.toISOString();
}

/** A Date as a datetime-local input's value (local time, to the minute). */
export function localInputValue(when) {
  const pad = (number) => String(number).padStart(2, "0");
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}`;
}

/** A desk photo's URL, marked so that the service worker never keeps it (templates/pwa/sw.js)
 *  and the server sends it `no-store` (project/media.py): unpublished photos stay off disk. */
export function deskPhotoUrl(src) {
  return `${src}${src.includes("?") ? "&" : "?"}desk=1`;
}

/** `document.title` with the count in front, "(N) …", or without it when N is 0. */
export function countedTitle(title, count) {
  const bare = title.replace(TITLE_COUNT, "");
  return count > 0 ? `(${count}) ${bare}` : bare;
}

export class DeskView {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root  #desk or #my-submissions
   * @param {string} options.role       owner | editor | contributor
   * @param {import("./desk-state.js").DeskState} options.state
   * @param {(id: number, action: string, fields: object) => Promise<{ok: boolean, detail?: string}>}
   *   options.onAction  sends one decision or revision to the server
   */
  constructor({ root, role, state, onAction, doc = document }) {
    this.root = root;
    this.state = state;
    this.doc = doc;
    this.role = role;
    this.editor = EDITOR_ROLES.includes(role);
    this.onAction = onAction;
    this.readerUrl = root.dataset.readerUrl;
    this.queue = root.querySelector("#desk-queue");
    this.decided = root.querySelector("#desk-decided");
    this.decidedSection = root.querySelector("#desk-decided-section");
    this.empty = root.querySelector("#desk-empty");
    this.count = root.querySelector("#desk-count");
    this.connection = root.querySelector("#desk-connection");
    this.message = root.querySelector("#desk-message");
    this.announcer = root.querySelector("#desk-announcer");
    this.template = doc.getElementById("submission-template");
    this.formTemplate = doc.getElementById("submission-form-template");
    this.items = new Map(); // submission id -> its li
  }

  /** Draw everything from the state (after a snapshot): kept items keep their open forms. */
  renderAll() {
    const state = this.state;
    const focused = this.doc.activeElement?.closest?.("li.submission") ?? null;
    const focusedList = focused?.parentElement ?? null;
    const lists = this.editor
      ? [[this.queue, state.open()], [this.decided, state.decided()]]
      : [[this.queue, state.newestFirst()]];
    const shown = new Set();
    for (const [list, submissions] of lists) {
      const items = submissions.map((submission) => {
        shown.add(submission.id);
        return this.item(submission);
      });
      placeInOrder(list, items);
    }
    for (const [id, item] of this.items) {
      if (!shown.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    this.refreshCounts(state);
    if (focused && focused.parentElement !== focusedList) {
      // The submission being worked on moved (decided, or gone): the focus goes to the desk's
      // heading rather than to the top of the page.
      this.root.querySelector("#desk-title").focus();
    }
  }

  /** One applied event: redraw, and say what happened to those who cannot see it. */
  apply(change) {
    if (change.kind !== "upsert") return;
    this.renderAll();
    const text = this.announcement(change);
    if (text) this.announce(text);
  }

  announcement({ submission, previous, fresh }) {
    const name = submission.author.name || submission.author.username;
    const was = previous ? previous.state : null;
    if (submission.state === was) return "";
    if (this.editor) {
      if (fresh && submission.state === "submitted") return interpolate(gettext("New submission from %(name)s"), { name });
      if (was === "returned" && submission.state === "submitted") {
        return interpolate(gettext("%(name)s revised a returned submission"), { name });
      }
      return "";
    }
    switch (submission.state) {
      case "returned": return gettext("A submission of yours was returned with a note");
      case "published": return interpolate(gettext("A submission of yours was published as update #%(seq)s"), { seq: submission.seq });
      case "scheduled": return gettext("A submission of yours was scheduled");
      default: return "";
    }
  }

  announce(text) {
    announce(this.announcer, text);
  }

  refreshCounts(state) {
    const total = this.items.size;
    this.empty.hidden = this.editor ? state.open().length > 0 : total > 0;
    if (this.decidedSection) this.decidedSection.hidden = this.decided.children.length === 0;
    if (this.editor) {
      const waiting = state.waiting();
      this.count.textContent = waiting ? interpolate(ngettext("(%(count)s waiting)", "(%(count)s waiting)", waiting), { count: waiting }) : "";
      this.doc.title = countedTitle(this.doc.title, waiting);
    } else {
      const returned = [...state.submissions.values()].filter((item) => item.state === "returned").length;
      this.count.textContent = returned ? interpolate(ngettext("(%(count)s returned)", "(%(count)s returned)", returned), { count: returned }) : "";
    }
  }

  showConnection(status) {
    this.connection.dataset.state = status;
    this.connection.querySelector(".desk-connection-text").textContent = CONNECTION_LABELS[status] ?? status;
  }

  /** A message about the whole desk (refused, role changed); `action`: {label, href} link. */
  showMessage(text, action = null) {
    this.message.textContent = text;
    if (action) {
      const link = this.doc.createElement("a");
      link.href = action.href;
      link.textContent = action.label;
      this.message.append(" ", link);
    }
    this.message.hidden = !text;
  }

  /** Forget every submission shown (the desk was refused: show nothing of it). */
  clear() {
    for (const item of this.items.values()) item.remove();
    this.items.clear();
    this.count.textContent = "";
    this.doc.title = countedTitle(this.doc.title, 0);
    this.empty.hidden = true;
    if (this.decidedSection) this.decidedSection.hidden = true;
  }

  // --- One submission ---------------------------------------------------------------------

  item(submission) {
    let item = this.items.get(submission.id);
    if (!item) {
      item = clone(this.template);
      item.dataset.submissionId = String(submission.id);
      item.id = `submission-${submission.id}`;
      item.querySelector(".submission-meta").id = `submission-${submission.id}-meta`;
      this.items.set(submission.id, item);
    }
    this.update(item, submission);
    return item;
  }

  update(item, submission) {
    item.dataset.state = submission.state;
    item.querySelector(".submission-state").textContent = STATE_LABELS[submission.state] ?? submission.state;
    item.querySelector(".submission-author").textContent = submission.author.name || submission.author.username;
    const time = item.querySelector(".submission-time");
    time.dateTime = submission.created_at;
    time.textContent = readableTime(submission.created_at);
    const body = item.querySelector(".submission-body");
    if (item.shownHtml !== submission.html) { // only when it changed: no needless repaint
      body.innerHTML = submission.html;
      item.shownHtml = submission.html;
    }
    this.updatePhoto(item, submission.photo);
    const note = item.querySelector(".submission-note");
    note.hidden = !(submission.state === "returned" && submission.note);
    item.querySelector(".submission-note-text").textContent = submission.note || "";
    this.updateInfo(item, submission);
    this.updateHistory(item, submission.history || []);
    this.updateActions(item, submission);
  }

  /** Who did what and when: the submission's history, kept collapsed under its item. */
  updateHistory(item, history) {
    const list = item.querySelector(".submission-history ol");
    list.replaceChildren(...history.map((step) => {
      const entry = this.doc.createElement("li");
      const time = this.doc.createElement("time");
      time.dateTime = step.at;
      time.textContent = readableTime(step.at);
      const who = step.by ? step.by.name || step.by.username : "the scheduler";
      entry.append(`${HISTORY_LABELS[step.action] ?? step.action} by ${who}, `, time);
      if (step.note) entry.append(`: “${step.note}”`);
      return entry;
    }));
    item.querySelector(".submission-history").hidden = !history.length;
  }

  updatePhoto(item, photo) {
    const figure = item.querySelector(".submission-photo");
    const image = figure.querySelector("img");
    figure.hidden = !photo;
    if (!photo) {
      image.removeAttribute("src");
      return;
    }
    const src = deskPhotoUrl(photo.src);
    if (image.getAttribute("src") !== src) {
      image.width = photo.width;
      image.height = photo.height;
      image.src = src;
    }
    image.alt = photo.alt;
  }

  updateInfo(item, submission) {
    const info = item.querySelector(".submission-info");
    info.replaceChildren();
    if (submission.state === "scheduled" && submission.publish_at) {
      const time = this.doc.createElement("time");
      time.dateTime = submission.publish_at;
      time.textContent = readableTime(submission.publish_at);
      info.append(...parts(gettext("To be published at %(time)s"), { time }));
    } else if (submission.state === "published") {
      const link = this.doc.createElement("a");
      link.className = "submission-link";
      link.href = `${this.readerUrl}#post-${submission.post_id}`;
      link.textContent = gettext("see it in the blog");
      const seq = this.doc.createElement("span");
      seq.className = "submission-seq";
      seq.textContent = `#${submission.seq}`;
      info.append(...parts(gettext("Published as update %(seq)s — %(link)s"), { seq, link }));
    }
    info.hidden = !info.childNodes.length;
  }

  updateActions(item, submission) {
    const actions = actionsFor(this.role, submission);
    const box = item.querySelector(".submission-actions");
    const form = item.querySelector(".submission-form");
    if (form && !actions.includes(form.dataset.action)) {
      // Decided meanwhile (by another editor, or the scheduler): what was typed no longer applies.
      this.closeForm(item, form);
      this.showError(item, interpolate(gettext("This submission is now %(state)s."), { state: STATE_LABELS[submission.state].toLowerCase() }));
    }
    if (box.dataset.actions !== actions.join(" ")) { // rebuilt only when they change: keeps focus
      box.dataset.actions = actions.join(" ");
      box.replaceChildren(...actions.map((action) => this.button(item, action)));
    }
    // While a form is open its own button is the one that sends: one "Publish" on screen.
    box.hidden = !actions.length || Boolean(item.querySelector(".submission-form"));
  }

  /** Close an item's inline form; the focus, if it was in the form, goes to `focusTo` (the
   *  button that opened it) or the item's first button. */
  closeForm(item, form, focusTo = null) {
    const hadFocus = form.contains(this.doc.activeElement);
    form.remove();
    const box = item.querySelector(".submission-actions");
    box.hidden = !box.children.length;
    if (!hadFocus) return;
    const target = focusTo?.isConnected ? focusTo : box.querySelector("button");
    target?.focus();
  }

  button(item, action) {
    const button = this.doc.createElement("button");
    button.type = "button";
    button.className = `button button-small submission-${action}`;
    if (action === "publish") button.classList.add("button-primary");
    button.textContent = BUTTON_LABELS[action];
    button.dataset.action = action;
    button.setAttribute("aria-describedby", `${item.id}-meta`);
    button.addEventListener("click", () => this.pressed(item, button));
    return button;
  }

  current(item) {
    return Number(item.dataset.submissionId);
  }

  pressed(item, button) {
    const action = button.dataset.action;
    this.showError(item, "");
    if (action === "publish") {
      this.send(item, "publish", {});
    } else if (action === "withdraw") {
      if (button.dataset.confirm !== "true") { // a second tap confirms: it cannot be undone
        button.dataset.confirm = "true";
        button.textContent = gettext("Tap again to withdraw");
        return;
      }
      this.send(item, "withdraw", {});
    } else {
      this.openForm(item, action, button);
    }
  }

  // --- Inline forms ------------------------------------------------------------------------

  openForm(item, action, opener) {
    if (item.querySelector(".submission-form")) return; // one at a time (its buttons are hidden)
    const form = clone(this.formTemplate);
    form.dataset.action = action;
    const spec = this.formSpec(action, item);
    form.querySelector(".submission-form-name").textContent = spec.label;
    form.querySelector(".submission-form-label").append(spec.input);
    form.querySelector(".submission-form-submit").textContent = spec.submit;
    form.querySelector(".submission-form-cancel").addEventListener("click", () => {
      this.closeForm(item, form, opener);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = spec.fields(spec.input.value);
      if (fields) this.send(item, spec.action, fields, form);
    });
    const box = item.querySelector(".submission-actions");
    box.after(form);
    box.hidden = true;
    spec.input.focus(); // the person asked for this form
  }

  /** The inline form of each action: its field, its label and what it sends. */
  formSpec(action, item) {
    const submission = this.submissionOf(item);
    const doc = this.doc;
    const textarea = (value, extra = {}) => {
      const input = doc.createElement("textarea");
      input.name = extra.name || "body";
      input.rows = extra.rows || 4;
      input.value = value;
      if (extra.maxLength) input.maxLength = extra.maxLength;
      input.required = !extra.optional;
      return input;
    };
    switch (action) {
      case "edit":
        return {
          label: gettext("Edit, then publish"), input: textarea(submission.body, { optional: Boolean(submission.photo) }),
          submit: gettext("Publish"), action: "publish", fields: (body) => ({ body }),
        };
      case "revise":
        return {
          label: gettext("Your revision"), input: textarea(submission.body, { optional: Boolean(submission.photo) }),
          submit: gettext("Send to the desk"), action: "revise", fields: (body) => ({ body }),
        };
      case "return":
        return {
          label: gettext("Note for the author (what to change)"),
          input: textarea("", { name: "note", rows: 3, maxLength: NOTE_MAX_CHARS }),
          submit: gettext("Send back"), action: "return",
          fields: (note) => (note.trim() ? { note } : null),
        };
      case "schedule": {
        const input = doc.createElement("input");
        input.type = "datetime-local";
        input.name = "publish_at";
        input.required = true;
        const suggested = submission.publish_at ? new Date(submission.publish_at)
          : new Date(Date.now() + DEFAULT_SCHEDULE_MS);
        input.value = localInputValue(suggested);
        input.min = localInputValue(new Date());
        return {
          label: gettext("Publish at"), input, submit: gettext("Schedule"), action: "publish",
          fields: (value) => {
            const publishAt = isoFromLocal(value);
            return publishAt ? { publish_at: publishAt } : null;
          },
        };
      }
      default:
        throw new Error(`no form for ${action}`);
    }
  }

  /** The submission an item shows, as the state has it now. */
  submissionOf(item) {
    return this.state.submissions.get(this.current(item));
  }

  // --- Sending -----------------------------------------------------------------------------

  async send(item, action, fields, form = null) {
    const controls = [...item.querySelectorAll(".submission-actions button"),
      ...(form ? form.querySelectorAll("button, textarea, input") : [])];
    for (const control of controls) control.disabled = true;
    item.dataset.pending = action;
    let outcome;
    try {
      outcome = await this.onAction(this.current(item), action, fields);
    } finally {
      delete item.dataset.pending;
      for (const control of controls) control.disabled = false;
    }
    if (outcome.ok) {
      // The form is gone: the focus goes back to the item's buttons, not to the page's top.
      if (form) this.closeForm(item, form);
    } else {
      this.showError(item, outcome.detail);
    }
  }

  showError(item, text) {
    const error = item.querySelector(".submission-error");
    error.textContent = text;
    error.hidden = !text;
  }
}

/** Put `items` into `list` in this order, moving only those out of place (moving an element
 *  takes the focus out of it), and nothing else in the list. */
function placeInOrder(list, items) {
  items.forEach((item, index) => {
    const here = list.children[index] ?? null;
    if (here !== item) list.insertBefore(item, here);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
}
