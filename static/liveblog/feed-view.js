// The feed on the page: one `article.post[data-post-id]` per visible post, pinned posts first,
// then newest first. Posts are built from the page's own <template>, so the server and the
// browser render the same markup. `html` comes sanitized from the server.

const TOP_SLACK_PX = 120; // closer than this to the top counts as "reading the newest"

function formatTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime())
    ? ""
    : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function comesBefore(a, b) {
  // true when post a is shown above post b
  if (a.pinned !== b.pinned) return a.pinned;
  return a.id > b.id;
}

export class FeedView {
  constructor(root = document) {
    this.feed = root.getElementById("feed");
    this.template = root.getElementById("post-template");
    this.empty = root.querySelector(".feed-empty");
    this.newUpdates = root.getElementById("new-updates");
    this.connection = root.getElementById("connection");
    this.title = root.getElementById("blog-title");
    this.status = root.getElementById("blog-status");
    this.lastUpdated = null;
    this.held = new Set();
    this.newUpdates.addEventListener("click", () => this.revealHeld());
    window.addEventListener("scroll", () => {
      if (this.atTop() && this.held.size) this.revealHeld({ scroll: false });
    }, { passive: true });
    for (const element of this.feed.querySelectorAll("article.post")) this.localizeTime(element);
  }

  atTop() {
    return window.scrollY <= TOP_SLACK_PX;
  }

  element(id) {
    return this.feed.querySelector(`article.post[data-post-id="${id}"]`);
  }

  /** Replace everything with a snapshot's posts. */
  reset(posts, blog) {
    for (const element of [...this.feed.querySelectorAll("article.post")]) element.remove();
    this.held.clear();
    for (const post of posts) this.upsert(post, { fresh: false });
    if (blog) this.showBlog(blog);
    this.updateChrome();
  }

  /** Apply one event frame from the connection. */
  apply(frame) {
    this.lastUpdated = new Date();
    if (frame.kind === "post.created") this.upsert(frame.post, { fresh: true });
    else if (frame.kind === "post.updated") this.upsert(frame.post, { fresh: false });
    else if (frame.kind === "post.deleted") this.remove(frame.post.id);
    else if (frame.kind === "blog.updated") this.showBlog(frame.blog);
    this.updateChrome();
  }

  upsert(post, { fresh }) {
    const existing = this.element(post.id);
    const element = existing || this.template.content.firstElementChild.cloneNode(true);
    this.fill(element, post);
    if (!existing || existing.dataset.pinned !== String(post.pinned)) {
      this.place(element, post);
    }
    element.dataset.pinned = String(post.pinned);
    if (!existing && fresh && !this.atTop()) {
      // Reading further down: hold the post back instead of moving the page.
      element.hidden = true;
      this.held.add(element);
    }
  }

  fill(element, post) {
    element.dataset.postId = String(post.id);
    element.id = `post-${post.id}`;
    element.classList.toggle("is-pinned", post.pinned);
    element.classList.toggle("is-key", post.key_event);
    const time = element.querySelector(".post-time");
    time.dateTime = post.created_at;
    time.textContent = formatTime(post.created_at);
    element.querySelector(".post-author").textContent = post.author.name;
    element.querySelector(".post-edited").hidden = !post.edited_at;
    element.querySelector(".post-body").innerHTML = post.html; // sanitized on write
  }

  place(element, post) {
    const others = [...this.feed.querySelectorAll("article.post")].filter((node) => node !== element);
    const next = others.find((node) => comesBefore(post, {
      id: Number(node.dataset.postId),
      pinned: node.classList.contains("is-pinned"),
    }));
    this.feed.insertBefore(element, next || null);
  }

  remove(id) {
    const element = this.element(id);
    if (!element) return;
    this.held.delete(element);
    element.remove();
  }

  revealHeld({ scroll = true } = {}) {
    for (const element of this.held) element.hidden = false;
    this.held.clear();
    this.updateChrome();
    if (scroll) window.scrollTo({ top: 0, behavior: "smooth" });
  }

  localizeTime(element) {
    const time = element.querySelector(".post-time");
    if (time && time.dateTime) time.textContent = formatTime(time.dateTime);
  }

  showBlog(blog) {
    if (this.title) this.title.textContent = blog.title;
    if (this.status) {
      this.status.dataset.status = blog.status;
      this.status.textContent = blog.status === "live" ? "Live" : "Ended";
    }
  }

  updateChrome() {
    const count = this.held.size;
    this.newUpdates.hidden = count === 0;
    this.newUpdates.textContent = count === 1 ? "1 new update" : `${count} new updates`;
    if (this.empty) this.empty.hidden = this.feed.querySelector("article.post") !== null;
  }

  showConnection(state) {
    if (state === "live") this.lastUpdated = new Date();
    this.connection.hidden = false;
    this.connection.dataset.state = state;
    const since = this.lastUpdated ? ` · last updated ${formatTime(this.lastUpdated.toISOString())}` : "";
    const text = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: `Reconnecting…${since}`,
      offline: `Offline${since}`,
    }[state];
    this.connection.querySelector(".connection-text").textContent = text;
  }
}
