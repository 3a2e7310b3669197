// The desk as data: the submissions of one desk log (the editors' queue, or a contributor's own
// submissions), the last applied seq and the epoch it belongs to. Pure logic, no DOM and no
// network, and kept in memory only: a desk is never written to IndexedDB or any cache, so the
// next person to pick up a shared phone finds none of it.
//
// It has the interface FeedConnection drives (epoch, seq, applySnapshot, applyEvent), with the
// same rules as the feed: a seq at or below the last one is a duplicate (ignored), one beyond
// last + 1 is a gap (never applied; the connection asks for a resync instead).

import { APPLIED, DUPLICATE, GAP, NO_BASE } from "./feed-state.js";

/** Submissions still to be decided (or, when returned, revised): the queue. */
export const OPEN_STATES = Object.freeze(["submitted", "returned", "scheduled"]);
export const EDITOR_ROLES = Object.freeze(["owner", "editor"]);
// Decided submissions kept beyond what the snapshot brought: the server sends the newest 30.
export const DECIDED_KEPT = 30;

export function isOpen(submission) {
  return OPEN_STATES.includes(submission.state);
}

/**
 * What `role` may do with `submission`, in the order the buttons show:
 * editors: publish, edit, return, schedule (return only while it waits or is scheduled);
 * its author (a contributor): revise and withdraw while it waits or was returned.
 */
export function actionsFor(role, submission) {
  const { state } = submission;
  if (EDITOR_ROLES.includes(role)) {
    if (!isOpen(submission)) return [];
    const actions = ["publish", "edit"];
    if (state !== "returned") actions.push("return");
    actions.push("schedule");
    return actions;
  }
  return state === "submitted" || state === "returned" ? ["revise", "withdraw"] : [];
}

export class DeskState {
  constructor() {
    this.epoch = null;
    this.seq = null;
    this.submissions = new Map();
  }

  /** Start over from a `snapshot` frame (or the `GET …/desk` answer, the same shape). */
  applySnapshot(snapshot) {
    this.epoch = snapshot.epoch;
    this.seq = snapshot.head;
    this.submissions = new Map(snapshot.submissions.map((item) => [item.id, item]));
  }

  /**
   * Apply one `event` frame if it is the next one.
   * @returns {{result: string, change?: object}} change: {kind: "upsert", submission, previous,
   *   fresh} (previous: the submission as it was, or null), or {kind: "none"}
   */
  applyEvent(frame) {
    if (this.seq === null) return { result: NO_BASE };
    if (frame.seq <= this.seq) return { result: DUPLICATE };
    if (frame.seq !== this.seq + 1) return { result: GAP };
    this.seq = frame.seq;
    if (!frame.submission || (frame.kind !== "submission.created" && frame.kind !== "submission.updated")) {
      return { result: APPLIED, change: { kind: "none" } };
    }
    return { result: APPLIED, change: this.upsert(frame.submission, frame.kind) };
  }

  upsert(submission, kind) {
    const previous = this.submissions.get(submission.id) ?? null;
    this.submissions.set(submission.id, submission);
    const dropped = this.trimDecided();
    return {
      kind: "upsert", submission, previous, dropped,
      fresh: kind === "submission.created" && previous === null,
    };
  }

  /** Keep the newest DECIDED_KEPT decided submissions (a long shift must not grow without
   *  bound); returns the ids let go. */
  trimDecided() {
    const decided = this.decided();
    const dropped = decided.slice(DECIDED_KEPT).map((item) => item.id);
    for (const id of dropped) this.submissions.delete(id);
    return dropped;
  }

  /** Oldest first (by id), as the queue shows them. */
  open() {
    return [...this.submissions.values()].filter(isOpen).sort((a, b) => a.id - b.id);
  }

  /** Published and withdrawn, newest first. */
  decided() {
    return [...this.submissions.values()].filter((item) => !isOpen(item)).sort((a, b) => b.id - a.id);
  }

  /** Every submission, newest first (a contributor's own list). */
  newestFirst() {
    return [...this.submissions.values()].sort((a, b) => b.id - a.id);
  }

  /** Submissions waiting for an editor's decision (the count in the title). */
  waiting() {
    let count = 0;
    for (const item of this.submissions.values()) if (item.state === "submitted") count += 1;
    return count;
  }
}
