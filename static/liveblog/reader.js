// Reader page entry point.
import { gettext } from "./i18n.js";
import { startFeed } from "./live-feed.js";
import { PostAnchors } from "./post-anchor.js";
import { startPush } from "./push.js";

// The "Embed" panel's copy buttons (the code is selectable without them).
for (const button of document.querySelectorAll("button[data-copy]")) {
  if (!navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const code = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(code.value);
      button.textContent = gettext("Copied");
    } catch {
      code.select(); // the browser said no: leave it selected for the reader to copy
    }
  });
}

startPush(document.getElementById("feed").dataset.slug)
  ?.catch((error) => console.warn("liveblog: notifications", error));

const anchors = new PostAnchors(await startFeed());
anchors.start();
// A tapped notification for the post this page is already at (sw.js notificationClicked).
navigator.serviceWorker?.addEventListener("message", (event) => {
  if (event.data?.type === "show-post") anchors.follow();
});
