// Live regions: what changed, said to screen readers without moving anyone's focus.

const REPEAT_DELAY_MS = 100; // after clearing the region, so that a repeated text is read too
const pending = new WeakMap(); // region -> the timer that will fill it

/** Say `text` through `region` (an element with role=status or aria-live). */
export function announce(region, text) {
  clearTimeout(pending.get(region));
  region.textContent = "";
  pending.set(region, setTimeout(() => { region.textContent = text; }, REPEAT_DELAY_MS));
}
