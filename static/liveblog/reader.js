// Reader page entry point.
import { startFeed } from "./live-feed.js";
import { PostAnchors } from "./post-anchor.js";

// The "Embed" panel's copy buttons (the code is selectable without them).
for (const button of document.querySelectorAll("button[data-copy]")) {
  if (!navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const code = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(code.value);
      button.textContent = "Copied";
    } catch {
      code.select(); // the browser said no: leave it selected for the reader to copy
    }
  });
}

new PostAnchors(await startFeed()).start();
