// The desk client of the author console: follows /ws/desk/<slug>/ (the editors' queue, or a
// contributor's own submissions) and sends the decisions and revisions made on it.
//
// The connection is the reader's FeedConnection (backoff with jitter, silent-socket watchdog,
// resync when ping.head is ahead, duplicates and gaps by seq) over a DeskState. Its position
// (since/epoch) lives in memory only: a reload starts from a snapshot, and nothing of the desk
// is ever written to IndexedDB or the Cache Storage. Close codes: 4409 (the person's role
// changed: their log is another one) reconnects without `since`; 4403 (not, or no longer, a
// member) and 4404 stop, with a message.
//
// Decisions are direct requests, never queued in the outbox: whether to publish depends on the
// desk as it is now, so an action needs the network (and says so without it).

import { FeedConnection, RESTART, RETRY, STOP } from "./feed-connection.js";
import { DeskState, EDITOR_ROLES } from "./desk-state.js";
import { apiErrorText, gettext, interpolate } from "./i18n.js";
import { DeskView } from "./desk-view.js";

export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_NOT_FOUND = 4404;
export const CLOSE_ROLE_CHANGED = 4409;

/** What the desk does when the server closes with `code`. */
export function deskCloseAction(code) {
  if (code === CLOSE_ROLE_CHANGED) return RESTART;
  if (code === CLOSE_FORBIDDEN || code === CLOSE_NOT_FOUND) return STOP;
  return RETRY;
}

export function deskSocketUrl(slug, where = location) {
  const scheme = where.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${where.host}/ws/desk/${encodeURIComponent(slug)}/`;
}

/** The HTTP request of each desk action. */
export function deskRequest(slug, id, action, fields) {
  const base = `/api/liveblog/${encodeURIComponent(slug)}/submissions/${id}`;
  switch (action) {
    case "publish": return { method: "POST", url: `${base}/publish`, body: fields };
    case "return": return { method: "POST", url: `${base}/return`, body: fields };
    case "revise": return { method: "PATCH", url: base, body: fields };
    case "withdraw": return { method: "DELETE", url: base, body: null };
    default: throw new Error(`unknown desk action ${action}`);
  }
}

/** Send one action; resolves {ok, detail} (never rejects: the view shows the reason). */
async function sendAction({ slug, csrfToken, userId }, id, action, fields) {
  const request = deskRequest(slug, id, action, fields);
  const headers = { "X-CSRFToken": csrfToken, "X-Liveblog-User": userId };
  if (request.body) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(request.url, {
      method: request.method, headers, credentials: "same-origin", cache: "no-store",
      body: request.body ? JSON.stringify(request.body) : undefined,
    });
  } catch {
    return { ok: false, detail: gettext("No network: try again once you are back online.") };
  }
  if (response.ok) return { ok: true };
  const answer = await response.json().catch(() => ({}));
  if (response.status === 401 || answer.error === "csrf_failed" || answer.error === "wrong_user") {
    return { ok: false, detail: gettext("Your session has expired: sign in again, then try again.") };
  }
  return {
    ok: false,
    detail: answer.error ? apiErrorText(answer.error, answer.detail)
      : interpolate(gettext("Refused (%(status)s)."), { status: response.status }),
  };
}

/**
 * Start the desk on this page, if it has one (#desk or #my-submissions).
 * @returns {{state: DeskState, view: DeskView, connection: FeedConnection} | null}
 */
export function startDesk({ slug, csrfToken, userId, doc = document }) {
  const root = doc.querySelector("#desk, #my-submissions");
  if (!root) return null;
  const role = root.dataset.role;
  const state = new DeskState();
  const view = new DeskView({
    root, role, state, doc,
    onAction: (id, action, fields) => sendAction({ slug, csrfToken, userId }, id, action, fields),
  });
  const connection = new FeedConnection({
    slug,
    state,
    url: deskSocketUrl(slug),
    onReset: () => view.renderAll(),
    onChange: (change) => view.apply(change),
    onState: (status) => view.showConnection(status),
    onHello: (hello) => {
      // A role change (4409) reconnects to the log of the new role: the page around it was
      // drawn for the old one.
      if (hello.role && EDITOR_ROLES.includes(hello.role) !== EDITOR_ROLES.includes(role)) {
        view.showMessage(gettext("Your role on this blog has changed."), { label: gettext("Reload the page"), href: location.pathname });
      }
    },
    closeAction: (code) => {
      const action = deskCloseAction(code);
      if (action === STOP && code === CLOSE_FORBIDDEN) {
        // Signed out (here or elsewhere), or taken off the blog: show nothing more of the desk.
        view.clear();
        view.showMessage(gettext("The desk is closed to you: you were signed out, or are no longer on this blog's desk."),
          { label: gettext("Sign in again"), href: `/accounts/login/?next=${encodeURIComponent(location.pathname)}` });
      } else if (action === STOP) {
        view.clear();
        view.showMessage(gettext("This blog no longer exists."));
      }
      return action;
    },
  });
  connection.start();
  return { state, view, connection };
}
