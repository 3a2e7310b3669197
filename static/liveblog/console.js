// The author console: compose (Markdown with a live preview, a photo, flags, and for editors a
// time to publish at), a draft that survives reloads, the outbox that sends in order without
// double-posting, the desk (desk.js: the editors' queue, or a contributor's own submissions),
// the live feed with edit and delete for those who publish, and ending or reopening the blog.
import { startDesk } from "./desk.js";
import { isoFromLocal } from "./desk-view.js";
import { EDITOR_ROLES } from "./desk-state.js";
import { clone } from "./feed-view.js";
import { apiErrorText, gettext, interpolate } from "./i18n.js";
import { startFeed } from "./live-feed.js";
import { Outbox, newClientId } from "./outbox.js";
import { DRAFT_PREFIX } from "./sign-out.js";

// The same Markdown dialect the server renders with (markdown-it-py), raw HTML off. Loaded for
// the first preview, not before the console shows: 44 KB gzipped and its parse were most of the
// console's Lighthouse LCP and blocking time (README "Performance").
let markdown = null;
async function markdownRenderer() {
  if (!markdown) {
    await import("./vendor/markdown-it.min.js");
    markdown ??= globalThis.markdownit("commonmark", { html: false }).enable(["table", "strikethrough"]);
  }
  return markdown;
}
const PHOTO_MAX_EDGE = 2048; // the largest size the server keeps: no need to upload more
const PHOTO_QUALITY = 0.85;

// The worker precaches the readers' shell; the console's own files only once a console asks.
navigator.serviceWorker?.ready.then((registration) => {
  registration.active?.postMessage({ type: "AUTHOR_SHELL" });
});

/** A smaller JPEG made on the device (quicker on one bar of signal, and the browser drops the
 *  EXIF metadata with it); the original when the browser cannot decode the file. */
async function shrink(file) {
  try {
    const bitmap = await createImageBitmap(file); // applies the EXIF orientation
    const scale = Math.min(1, PHOTO_MAX_EDGE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", PHOTO_QUALITY));
    return blob && blob.size < file.size ? blob : file;
  } catch {
    return file; // the server decides (and says why if it cannot read it)
  }
}

/** Where `user`'s draft for a blog is kept (localStorage; DRAFT_PREFIX + user is all of theirs). */
export function draftKey(user, slug) {
  return `${DRAFT_PREFIX}${user}:${slug}`;
}

/** Drafts from before drafts had owners named nobody: nobody gets them. */
function forgetOwnerlessDraft(slug) {
  try {
    localStorage.removeItem(`liveblog:draft:${slug}`);
  } catch { /* storage off: there is nothing to forget */ }
}

class Composer {
  constructor(form, { onSubmit }) {
    this.form = form;
    this.onSubmit = onSubmit;
    this.body = form.elements.body;
    this.preview = document.getElementById("compose-preview");
    this.error = document.getElementById("compose-error");
    this.photoInput = document.getElementById("compose-photo");
    this.photoChosen = document.getElementById("photo-chosen");
    this.photoThumb = document.getElementById("photo-thumb");
    this.photoAlt = document.getElementById("photo-alt");
    this.photo = null; // a File or Blob waiting to be sent with the next post
    // A draft is its writer's: the next person on this phone never sees it (sign-out.js
    // removes a user's drafts when they sign out).
    this.draftKey = draftKey(form.dataset.userId, form.dataset.slug);
    this.previewQueued = false;
  }

  start() {
    forgetOwnerlessDraft(this.form.dataset.slug);
    this.restoreDraft();
    // What the form holds now, a restored draft or text typed before this module ran (a slow
    // phone: no input event we heard), is kept and previewed like anything typed later.
    this.saveDraft();
    this.schedulePreview();
    this.form.addEventListener("input", () => {
      this.saveDraft();
      this.schedulePreview();
    });
    this.photoInput.addEventListener("change", () => {
      const [file] = this.photoInput.files;
      if (file) this.setPhoto(file, file.name);
    });
    document.getElementById("photo-remove").addEventListener("click", () => this.setPhoto(null));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.dataset.ready = "true"; // for tests and styles: the console is listening
  }

  restoreDraft() {
    let draft = null;
    try {
      draft = JSON.parse(localStorage.getItem(this.draftKey) || "null");
    } catch { /* a damaged draft is no draft */ }
    if (!draft) return;
    this.body.value = draft.body || "";
    this.form.elements.key_event.checked = Boolean(draft.key_event);
    this.form.elements.pinned.checked = Boolean(draft.pinned);
    this.photoAlt.value = draft.photo_alt || "";
    if (this.publishAt) this.publishAt.value = draft.publish_at || "";
  }

  /** Editors' "Publish at" (a datetime-local input), or undefined for a contributor. */
  get publishAt() {
    return this.form.elements.publish_at;
  }

  saveDraft() {
    const draft = this.fields();
    try {
      if (draft.body || draft.photo_alt) localStorage.setItem(this.draftKey, JSON.stringify(draft));
      else localStorage.removeItem(this.draftKey);
    } catch { /* storage full or off: the text is still on screen */ }
  }

  fields() {
    const fields = {
      body: this.body.value,
      key_event: this.form.elements.key_event.checked,
      pinned: this.form.elements.pinned.checked,
      photo_alt: this.photoAlt.value,
    };
    if (this.publishAt?.value) fields.publish_at = this.publishAt.value; // local time, as typed
    return fields;
  }

  schedulePreview() {
    if (this.previewQueued) return;
    this.previewQueued = true;
    requestAnimationFrame(async () => {
      const typed = this.body.value.trim();
      const renderer = typed ? await markdownRenderer().catch(() => null) : null;
      this.previewQueued = false;
      const text = this.body.value;
      this.preview.hidden = !text.trim();
      // Nothing typed, or not loaded (offline before any preview was made here): the text.
      if (!renderer) this.preview.textContent = text;
      // markdown-it escapes raw HTML (html: false) and refuses javascript: links.
      else this.preview.innerHTML = text.trim() ? renderer.render(text) : "";
    });
  }

  setPhoto(photo, name = "photo.jpg") {
    if (this.photoThumb.src) URL.revokeObjectURL(this.photoThumb.src);
    this.photo = photo;
    this.photoName = name;
    this.photoChosen.hidden = !photo;
    this.photoThumb.removeAttribute("src");
    if (photo) {
      this.photoThumb.src = URL.createObjectURL(photo);
      this.photoAlt.focus();
    } else {
      this.photoInput.value = "";
    }
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  async submit() {
    const fields = this.fields();
    const photo = this.photo;
    if (!fields.body.trim() && !photo) return; // an empty form (or a second tap) sends nothing
    if (photo && !fields.photo_alt.trim()) {
      this.showError(gettext("Describe the photo for readers who cannot see it."));
      this.photoAlt.focus();
      return;
    }
    if (fields.publish_at) {
      // Sent as ISO 8601 with its zone: the server must not guess the phone's time zone.
      const publishAt = isoFromLocal(fields.publish_at);
      if (!publishAt) {
        this.showError(gettext("The time to publish at is not a time."));
        this.publishAt.focus();
        return;
      }
      fields.publish_at = publishAt;
    }
    // Clear at once, before any await: a double tap finds an empty form.
    this.showError("");
    const photoName = this.photoName;
    this.form.reset();
    this.setPhoto(null);
    this.saveDraft();
    this.schedulePreview();
    const entry = { kind: "create", clientId: newClientId(), fields };
    if (photo) {
      entry.photo = await shrink(photo);
      entry.photoName = photoName;
    } else {
      delete fields.photo_alt;
    }
    await this.onSubmit(entry);
    this.body.focus();
  }

  /** Put a refused post back in the form to be corrected and sent again. */
  refill(entry) {
    this.body.value = entry.fields.body || "";
    this.form.elements.key_event.checked = Boolean(entry.fields.key_event);
    this.form.elements.pinned.checked = Boolean(entry.fields.pinned);
    this.photoAlt.value = entry.fields.photo_alt || "";
    if (this.publishAt) this.publishAt.value = "";
    if (entry.photo) this.setPhoto(entry.photo, entry.photoName);
    this.saveDraft();
    this.schedulePreview();
    this.body.focus();
  }
}

/** Edit and delete buttons on published posts, for those who may change them (editors and the
 *  owner: services refuse contributors): clones of the page's #post-actions-template and
 *  #post-editor-template (templates/liveblog/_post_controls.html). */
function postActions({ outbox, posts }) {
  const actionsTemplate = document.getElementById("post-actions-template");
  const editorTemplate = document.getElementById("post-editor-template");

  function editor(element, post) {
    const form = clone(editorTemplate);
    const text = form.elements.body;
    text.value = post.body;
    form.querySelector(".post-editor-cancel").addEventListener("click", () => form.remove());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      form.remove();
      if (text.value.trim() && text.value !== post.body) {
        outbox.add({ kind: "edit", clientId: newClientId(), postId: post.id,
                     fields: { body: text.value } });
      }
    });
    element.append(form);
    text.focus();
  }

  return (element, post) => {
    if (element.querySelector(".post-actions")) return;
    const actions = clone(actionsTemplate);
    actions.querySelector(".post-edit").addEventListener("click", () => {
      if (element.querySelector(".post-editor")) return;
      const current = posts().get(Number(element.dataset.postId));
      if (current) editor(element, current);
    });
    const remove = actions.querySelector(".post-delete");
    remove.addEventListener("click", () => {
      if (remove.dataset.confirm !== "true") { // a second tap confirms
        remove.dataset.confirm = "true";
        remove.textContent = remove.dataset.confirmLabel;
        return;
      }
      remove.disabled = true;
      const current = posts().get(Number(element.dataset.postId)) || post;
      outbox.add({ kind: "delete", clientId: newClientId(), postId: current.id,
                   fields: { summary: (current.body || "").slice(0, 60) } });
    });
    element.append(actions);
  };
}

/** The owner's "End blog" / "Reopen blog" button (a direct request: it needs the network). */
function blogToggle(slug, csrfToken) {
  const button = document.getElementById("blog-toggle");
  const error = document.getElementById("blog-toggle-error");
  if (!button) return () => {};
  const show = (status) => {
    button.dataset.status = status;
    button.textContent = status === "live" ? gettext("End blog") : gettext("Reopen blog");
  };
  button.addEventListener("click", async () => {
    const status = button.dataset.status === "live" ? "ended" : "live";
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await fetch(`/api/liveblog/${encodeURIComponent(slug)}/`, {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ status }),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        throw new Error(answer.error ? apiErrorText(answer.error, answer.detail)
          : interpolate(gettext("refused (%(status)s)"), { status: response.status }));
      }
      show(answer.blog.status);
    } catch (failure) {
      error.textContent = navigator.onLine === false
        ? gettext("You are offline: the blog's status can be changed once the network is back.")
        : interpolate(gettext("Could not change the blog's status: %(reason)s"), { reason: failure.message });
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return (blog) => show(blog.status);
}

async function startConsole() {
  const form = document.getElementById("compose");
  const slug = form.dataset.slug;
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const composer = new Composer(form, { onSubmit: (entry) => outbox.add(entry) });
  const outbox = new Outbox({
    user: form.dataset.userId,
    slug,
    list: document.getElementById("outbox"),
    sessionBanner: document.getElementById("session-expired"),
    onRetry: (entry) => composer.refill(entry),
  });
  composer.start();
  await outbox.start(csrfToken); // stores this page's CSRF token before anything is sent
  let feed = null;
  // Contributors change nothing published (they send corrections to the desk): no controls.
  const publishes = EDITOR_ROLES.includes(form.dataset.role);
  const decorate = publishes ? postActions({
    outbox,
    posts: () => (feed ? feed.state.posts : new Map()),
  }) : null;
  const desk = startDesk({ slug, csrfToken, userId: form.dataset.userId });
  feed = await startFeed({
    decorate,
    onBlog: blogToggle(slug, csrfToken),
    onStatus: (status) => { if (status === "live") outbox.sendNow(); },
  });
  window.liveblog.outbox = outbox;
  window.liveblog.desk = desk;
}

startConsole();
