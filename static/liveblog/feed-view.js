// The feed on the page, drawn from a FeedState: one `article.post[data-post-id]` per post,
// pinned first, then newest first. Posts, their photos and the key-event links are clones of the
// page's own <template>s (the server renders them from the same includes as the feed), so the
// markup exists once, in templates/liveblog/; `html` arrives sanitized from the server.
//
// The reader is never yanked: new posts that arrive while the reader is scrolled away from the
// top wait, hidden, behind the "N new updates" button.
//
// Screen readers hear "N new updates" (politely, through #feed-announcer) and a key event's text
// at once (#key-event-announcer); the feed itself is no live region, so no post is read out
// unasked, and nothing that arrives moves the keyboard's focus.

import { announce } from "./announce.js";
import { comesBefore } from "./feed-state.js";
import { gettext, interpolate, language, ngettext } from "./i18n.js";

const TOP_SLACK_PX = 120; // this close to the top counts as reading the newest posts
const CLOCK_TICK_MS = 30000; // relative times ("2 min ago") refresh this often
const SUMMARY_CHARS = 90; // the server cuts its key-event text at the same length (views/pages.py)
const ANNOUNCE_EVERY_MS = 1000; // posts that arrive together are announced once: "3 new updates"

// In the page's language (<html lang>) and the reader's own time zone (the browser's).
// Made once per language: every post's time is formatted again each CLOCK_TICK_MS.
const formats = new Map();
function memo(kind, lang, make) {
  const key = `${kind}:${lang}`;
  if (!formats.has(key)) formats.set(key, make());
  return formats.get(key);
}
const absoluteTime = (lang) => memo("absolute", lang, () => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }));
const shortTime = (lang) => memo("short", lang, () => new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }));
const relative = (lang) => memo("relative", lang, () => new Intl.RelativeTimeFormat(lang, { style: "short" }));

/** "just now", "4 min. ago", "2 hr. ago" (in the page's language), else the date and time. */
export function relativeTime(when, now = new Date(), lang = language()) {
  const seconds = Math.round((now - when) / 1000);
  if (seconds < 45) return gettext("just now");
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return relative(lang).format(-minutes, "minute");
  const hours = Math.floor(minutes / 60); // "23 hr. ago" until a full day has passed
  if (hours < 24) return relative(lang).format(-hours, "hour");
  return absoluteTime(lang).format(when);
}

function plainText(html) {
  const scratch = document.createElement("template"); // inert: nothing in it loads or runs
  scratch.innerHTML = html;
  return scratch.content.textContent.replace(/\s+/g, " ").trim();
}

function summary(post) {
  const text = plainText(post.html);
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function newUpdatesText(count) {
  return interpolate(ngettext("%(count)s new update", "%(count)s new updates", count), { count });
}

function reducedMotion() {
  return window.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;
}

/** A fresh copy of a server-rendered <template>'s element. */
export function clone(template) {
  return template.content.firstElementChild.cloneNode(true);
}

export class FeedView {
  constructor({
    root = document, state, loadOlder = null, lastCurrent = new Date(), decorate = null,
    onBlog = null,
  }) {
    this.root = root;
    this.state = state;
    this.loadOlder = loadOlder;
    this.decorate = decorate;
    this.onBlog = onBlog;
    this.feed = root.getElementById("feed");
    this.template = root.getElementById("post-template");
    this.photoTemplate = root.getElementById("post-photo-template");
    this.keyEventTemplate = root.getElementById("key-event-template");
    this.empty = root.querySelector(".feed-empty");
    this.newUpdates = root.getElementById("new-updates");
    this.connection = root.getElementById("connection");
    this.keyEvents = root.getElementById("key-events");
    this.olderLink = root.getElementById("load-older");
    this.announcer = root.getElementById("feed-announcer");
    this.keyAnnouncer = root.getElementById("key-event-announcer");
    this.arrivals = 0; // fresh posts not announced yet
    this.arrivalTimer = null;
    // Links to the posts and older pages: "" on the reader page itself, its URL in the embed.
    this.readerUrl = this.feed.dataset.readerUrl || "";
    this.title = root.getElementById("blog-title");
    this.status = root.getElementById("blog-status");
    this.held = new Set();
    this.connectionState = null;
    // When the feed shown was last known to be current ("last updated …" while not live).
    this.lastCurrent = Number.isNaN(lastCurrent.getTime()) ? new Date() : lastCurrent;
  }

  /** Take over the server-rendered page: wire controls, start the clock. */
  start() {
    this.newUpdates.addEventListener("click", () => this.revealHeld());
    window.addEventListener("scroll", () => {
      if (this.atTop() && this.held.size) this.revealHeld({ scroll: false });
    }, { passive: true });
    if (this.olderLink && this.loadOlder) {
      this.olderLink.addEventListener("click", (event) => {
        event.preventDefault();
        this.loadOlder();
      });
    }
    this.keyEvents?.addEventListener("click", (event) => {
      if (event.target.closest("a") && this.held.size) this.revealHeld({ scroll: false });
    });
    setInterval(() => this.tick(), CLOCK_TICK_MS);
    this.tick();
    this.updateChrome();
    if (this.decorate) {
      for (const post of this.state.posts.values()) {
        const element = this.element(post.id);
        if (element) this.decorate(element, post);
      }
    }
  }

  atTop() {
    return window.scrollY <= TOP_SLACK_PX;
  }

  element(id) {
    return this.feed.querySelector(`article.post[data-post-id="${id}"]`);
  }

  /** Redraw everything from the state (after a snapshot). */
  renderAll() {
    const wanted = new Set(this.state.posts.keys());
    for (const element of [...this.feed.querySelectorAll("article.post")]) {
      if (!wanted.has(Number(element.dataset.postId))) element.remove();
    }
    this.held.clear();
    for (const post of this.state.sorted()) {
      const element = this.element(post.id) || this.newElement();
      element.hidden = false;
      this.fill(element, post);
      this.feed.append(element); // appending in order sorts them
    }
    if (this.state.blog) this.showBlog(this.state.blog);
    this.renderKeyEvents();
    this.updateChrome();
  }

  /** Apply one change from the connection. */
  apply(change) {
    this.lastCurrent = new Date();
    if (change.kind === "upsert") this.upsert(change.post, change.fresh);
    else if (change.kind === "remove") this.remove(change.id);
    else if (change.kind === "blog") this.showBlog(change.blog);
    this.renderKeyEvents();
    this.updateChrome();
  }

  /** Older posts were added to the state: draw them at the bottom. */
  appendOlder(posts) {
    for (const post of posts) {
      const element = this.newElement();
      this.fill(element, post);
      this.place(element, post);
    }
    if (this.olderLink) {
      this.olderLink.hidden = this.state.nextBefore === null;
      if (this.state.nextBefore !== null) {
        this.olderLink.href = `${this.readerUrl}?before=${this.state.nextBefore}`;
      }
    }
    this.renderKeyEvents();
    this.updateChrome();
  }

  newElement() {
    return clone(this.template);
  }

  upsert(post, fresh) {
    const existing = this.element(post.id);
    const element = existing || this.newElement();
    const moved = !existing || existing.classList.contains("is-pinned") !== post.pinned;
    const becameKey = post.key_event && (existing ? !existing.classList.contains("is-key") : fresh);
    this.fill(element, post);
    if (moved) this.place(element, post);
    if (fresh && !existing && !this.atTop()) {
      // Reading further down: hold the post back instead of moving the page.
      element.hidden = true;
      this.held.add(element);
    }
    if (fresh && !existing) this.noteArrival();
    if (becameKey && this.keyAnnouncer) announce(this.keyAnnouncer, interpolate(gettext("Key event: %(text)s"), { text: summary(post) }));
  }

  /** "N new updates", once for posts that arrive together: as many as wait behind the button,
   *  or as arrived at the top. */
  noteArrival() {
    if (!this.announcer) return;
    this.arrivals += 1;
    this.arrivalTimer ??= setTimeout(() => {
      announce(this.announcer, newUpdatesText(Math.max(this.held.size, this.arrivals)));
      this.arrivals = 0;
      this.arrivalTimer = null;
    }, ANNOUNCE_EVERY_MS);
  }

  fill(element, post) {
    element.dataset.postId = String(post.id);
    element.id = `post-${post.id}`;
    element.classList.toggle("is-pinned", post.pinned);
    element.classList.toggle("is-key", post.key_event);
    const time = element.querySelector(".post-time");
    time.dateTime = post.created_at;
    this.showTime(time);
    element.querySelector(".post-author").textContent = post.author.name;
    element.querySelector(".post-edited").hidden = !post.edited_at;
    const body = element.querySelector(".post-body");
    if (body.dataset.html !== post.html) {
      body.innerHTML = post.html; // sanitized on the server when it was written
      body.dataset.html = post.html;
    }
    this.showPhoto(element, body, post.photo);
    this.decorate?.(element, post);
  }

  /** The post's photo: the server's figure (its template), with this photo's image. */
  showPhoto(element, body, photo) {
    const shown = element.querySelector("figure.post-photo");
    if (!photo) {
      shown?.remove();
      return;
    }
    const figure = shown || clone(this.photoTemplate);
    const image = figure.querySelector("img");
    if (image.getAttribute("src") === photo.src && image.alt === photo.alt) return;
    image.srcset = photo.srcset;
    image.src = photo.src;
    image.width = photo.width;
    image.height = photo.height;
    image.alt = photo.alt;
    // Filled before it joins the page: the template's empty src is never loaded.
    if (!shown) body.after(figure);
  }

  place(element, post) {
    const next = [...this.feed.querySelectorAll("article.post")].find((node) => (
      node !== element && comesBefore(post, {
        id: Number(node.dataset.postId),
        pinned: node.classList.contains("is-pinned"),
      })
    ));
    this.feed.insertBefore(element, next || null);
  }

  remove(id) {
    const element = this.element(id);
    if (!element) return;
    this.held.delete(element);
    element.remove();
  }

  revealHeld({ scroll = true } = {}) {
    const newest = [...this.feed.querySelectorAll("article.post")].find((node) => this.held.has(node));
    const buttonFocused = this.root.activeElement === this.newUpdates;
    for (const element of this.held) element.hidden = false;
    this.held.clear();
    this.renderKeyEvents();
    this.updateChrome();
    if (buttonFocused && newest) {
      // The button goes away: its focus goes to the newest update, not to the page's start.
      newest.tabIndex = -1;
      newest.focus({ preventScroll: true });
    }
    if (scroll) window.scrollTo({ top: 0, behavior: reducedMotion() ? "auto" : "smooth" });
  }

  renderKeyEvents() {
    if (!this.keyEvents) return;
    const list = this.keyEvents.querySelector("ol");
    const items = this.state.keyEvents().filter((post) => !this.isHeld(post.id)).map((post) => {
      const item = clone(this.keyEventTemplate);
      item.querySelector("a").href = `${this.readerUrl}#post-${post.id}`;
      const time = item.querySelector("time.post-time");
      time.dateTime = post.created_at;
      this.showTime(time);
      item.querySelector(".key-event-text").textContent = summary(post);
      return item;
    });
    list.replaceChildren(...items);
    this.keyEvents.hidden = items.length === 0;
  }

  isHeld(id) {
    const element = this.element(id);
    return element !== null && this.held.has(element);
  }

  showTime(time) {
    const when = new Date(time.dateTime);
    if (Number.isNaN(when.getTime())) return;
    time.textContent = relativeTime(when);
    time.title = absoluteTime(language()).format(when);
  }

  /** Relative times move on; so does "last updated". */
  tick() {
    for (const time of this.root.querySelectorAll("time.post-time")) this.showTime(time);
    if (this.connectionState) this.showConnection(this.connectionState);
  }

  showBlog(blog) {
    this.onBlog?.(blog);
    if (this.title) this.title.textContent = blog.title;
    if (this.status) {
      this.status.dataset.status = blog.status;
      this.status.textContent = blog.status === "live" ? gettext("Live") : gettext("Ended");
    }
  }

  updateChrome() {
    const count = this.held.size;
    this.newUpdates.hidden = count === 0;
    this.newUpdates.textContent = newUpdatesText(count);
    if (this.empty) this.empty.hidden = this.state.posts.size > 0;
  }

  /** "ws" or "sse": how the feed is connected (data only: readers see no difference). */
  showTransport(transport) {
    this.connection.dataset.transport = transport;
  }

  showConnection(state) {
    if (state === "live") this.lastCurrent = new Date();
    this.connectionState = state;
    this.connection.hidden = false;
    this.connection.dataset.state = state;
    const since = interpolate(gettext("last updated %(time)s"), { time: shortTime(language()).format(this.lastCurrent) });
    this.connection.querySelector(".connection-text").textContent = {
      connecting: gettext("Connecting…"),
      live: gettext("Live"),
      reconnecting: interpolate(gettext("Reconnecting… · %(since)s"), { since }),
      offline: interpolate(gettext("Offline · %(since)s"), { since }),
    }[state];
  }
}
