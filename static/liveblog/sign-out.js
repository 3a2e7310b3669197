// Signing out on a shared phone (every page, through pwa.js): the next person who picks the phone
// up must see nothing of the last one. Without JavaScript the header's form signs out natively,
// and the service worker still deletes the user's cached pages when it next sees a page
// rendered for someone else (templates/pwa/sw.js).
//
// 1. Unsent posts in the outbox? Ask: send now, keep them for me (hidden and unsent until the same
//    user signs in here again), or discard them.
// 2. Sign out on this device, at once, network or not: the outbox forgets the sender and this
//    user's sent (and, unless kept, unsent) entries; their drafts and their cached pages go.
// 3. Sign out on the server. Offline, the service worker does it before it fetches anything else
//    (the stored `signingOut` token), so the session cannot outlive the sign-out.
import "./indexeddb.js"; // before outbox-core.js, which uses it
import "./outbox-core.js";
import { gettext, interpolate, ngettext } from "./i18n.js";
import { reasonText } from "./outbox.js";

export const DRAFT_PREFIX = "liveblog:draft:";
export const USER_CACHE_PREFIX = "liveblog-user-";
const core = globalThis.LiveblogOutbox;

/** Remove every draft `user` left on this device. */
export function forgetDrafts(user, storage = globalThis.localStorage) {
  const prefix = `${DRAFT_PREFIX}${user}:`;
  try {
    const keys = [];
    for (let index = 0; index < storage.length; index += 1) keys.push(storage.key(index));
    for (const key of keys) if (key.startsWith(prefix)) storage.removeItem(key);
  } catch { /* storage off: nothing was kept */ }
}

function summary(entry) {
  const text = entry.kind === "delete"
    ? gettext("Delete: ") + (entry.fields.summary || interpolate(gettext("post %(id)s"), { id: entry.postId }))
    : entry.kind === "edit" ? gettext("Edit: ") + (entry.fields.body || "")
      : entry.fields.body || interpolate(gettext("Photo: %(alt)s"), { alt: entry.fields.photo_alt || "" });
  return text.slice(0, 80);
}

/** Show the unsent entries and wait for a choice: "send", "keep", "discard" or "cancel". */
function ask(dialog, unsent, problem = "") {
  dialog.querySelector(".sign-out-count").textContent = interpolate(ngettext(
    "%(count)s update has not been sent yet.", "%(count)s updates have not been sent yet.", unsent.length,
  ), { count: unsent.length });
  dialog.querySelector(".sign-out-list").replaceChildren(...unsent.map((entry) => {
    const item = document.createElement("li");
    item.textContent = summary(entry);
    return item;
  }));
  const error = dialog.querySelector(".sign-out-error");
  error.textContent = problem;
  error.hidden = !problem;
  return new Promise((resolve) => {
    const buttons = [...dialog.querySelectorAll("button[value]")];
    const choose = (event) => {
      for (const button of buttons) button.removeEventListener("click", choose);
      dialog.removeEventListener("cancel", cancel);
      dialog.close();
      resolve(event.currentTarget.value);
    };
    const cancel = () => {
      for (const button of buttons) button.removeEventListener("click", choose);
      resolve("cancel");
    };
    for (const button of buttons) button.addEventListener("click", choose);
    dialog.addEventListener("cancel", cancel, { once: true }); // Escape
    if (!dialog.open) dialog.showModal();
  });
}

/** What to do with `user`'s unsent entries: {keepUnsent}, or null to stay signed in. */
async function decide(dialog, user, token) {
  let unsent = await core.unsent(user);
  let problem = "";
  while (unsent.length) {
    const choice = await ask(dialog, unsent, problem);
    if (choice === "cancel") return null;
    if (choice !== "send") return { keepUnsent: choice === "keep" };
    await core.setSender(user, token); // this page was rendered for this user
    await core.flush();
    unsent = await core.unsent(user);
    problem = unsent.length ? interpolate(gettext("Not sent: %(reason)s."), {
      reason: unsent[0].detail ? reasonText(unsent[0]) : gettext("no network"),
    }) : "";
  }
  return { keepUnsent: false };
}

/** The device forgets `user`: outbox sender and entries, drafts, cached pages. */
async function signOutHere(user, token, { keepUnsent }) {
  await core.setMeta("signingOut", { user, token });
  await core.setMeta("viewer", "anonymous"); // the service worker shows nobody's pages now
  await core.signOut(user, { keepUnsent });
  forgetDrafts(user);
  await globalThis.caches?.delete(`${USER_CACHE_PREFIX}${user}`);
}

/** The server's sign-out; the page to go to next, or null with no network (the service worker
 *  finishes it before its next fetch). */
async function signOutThere(form) {
  try {
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
    });
    await core.deleteMeta("signingOut");
    return response.url;
  } catch {
    return null;
  }
}

export function startSignOut() {
  const form = document.getElementById("sign-out");
  const dialog = document.getElementById("sign-out-dialog");
  if (!form || !dialog) return;
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    try {
      const user = form.dataset.userId;
      const token = form.elements.csrfmiddlewaretoken.value;
      const decision = await decide(dialog, user, token);
      if (!decision) return;
      await signOutHere(user, token, decision);
      const next = await signOutThere(form);
      location.assign(next || "/");
    } finally {
      busy = false;
    }
  });
  form.dataset.ready = "true"; // for tests: a click now takes this path, not the native one
}
