// Posts and wire frames for the browser unit tests, shaped as DESIGN.md's "JSON shapes" and
// "Wire protocol" say the server sends them.

const AT = "2024-05-01T12:00:00Z";

export const BLOG = Object.freeze({ slug: "match", title: "The match", status: "live" });

export function post(id, { pinned = false, key_event = false, html = null, created_at = AT } = {}) {
  return {
    id, client_id: `c-${id}`,
    author: { username: "ann", name: "Ann" },
    body: `post ${id}`, html: html ?? `<p>post ${id}</p>`,
    created_at, edited_at: null, pinned, key_event,
  };
}

export function snapshot(epoch, head, posts, { nextBefore = null, blog = BLOG } = {}) {
  const frame = { type: "snapshot", epoch, head, posts, next_before: nextBefore };
  if (blog !== null) frame.blog = { ...blog };
  return frame;
}

/** A post.created event; the post's id is 100 + seq unless given. */
export function created(seq, id = null, fields = {}) {
  return { type: "event", seq, kind: "post.created", at: AT, post: post(id ?? 100 + seq, fields) };
}

export function updated(seq, id, fields = {}) {
  return { type: "event", seq, kind: "post.updated", at: AT, post: post(id, fields) };
}

export function deleted(seq, id) {
  return { type: "event", seq, kind: "post.deleted", at: AT, post: { id, deleted: true } };
}

export function blogUpdated(seq, fields = {}) {
  return { type: "event", seq, kind: "blog.updated", at: AT, blog: { ...BLOG, ...fields } };
}

export function hello({ heartbeat = 15, head = 0, epoch = "E1" } = {}) {
  return { type: "hello", blog: "match", epoch, head, heartbeat };
}

export function live(head) {
  return { type: "live", head };
}

export function ping(head) {
  return { type: "ping", head };
}
