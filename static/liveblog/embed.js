// Liveblog's embed script, for other sites' article pages:
//
//   <script src="https://live.example/embed.js" data-blog="cup-final" async></script>
//
// puts the blog's frame (/liveblog/<slug>/embed/) where the script is and keeps the frame's
// height equal to its content, so the embedding page scrolls, never the frame. Frames already on
// the page with `data-liveblog-embed` (the plain-frame snippet, oEmbed's HTML) are fitted too.
//
// A classic script, not a module: it runs in pages that are not ours, and finds its own origin
// from document.currentScript. Messages go to and are taken from that exact origin only, and
// only from one of the frames this script fitted.
(function liveblogEmbed() {
  "use strict";
  const HELLO = "liveblog:hello";
  const HEIGHT = "liveblog:height";
  const MIN_HEIGHT = 150; // px: room for the blog's title and the connection line
  const MAX_HEIGHT = 100000; // px: a frame told anything taller is not telling the truth
  const SLUG = /^[-\w]+$/;
  const SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox " +
    "allow-top-navigation-by-user-activation";

  const script = document.currentScript;
  if (!script || !script.src) return;
  const origin = new URL(script.src).origin;
  const frames = [];

  function makeFrame(slug) {
    const frame = document.createElement("iframe");
    frame.src = `${origin}/liveblog/${encodeURIComponent(slug)}/embed/`;
    frame.title = script.dataset.title || "Live blog";
    frame.setAttribute("sandbox", SANDBOX);
    frame.setAttribute("data-liveblog-embed", "");
    frame.style.cssText = "display:block;width:100%;border:0;height:600px";
    script.after(frame);
    return frame;
  }

  /** Whether the frame holds its page already: until then it is an about:blank of ours. */
  function showsOtherOrigin(frame) {
    try {
      return !frame.contentWindow.location.href;
    } catch {
      return true;
    }
  }

  function fit(frame) {
    if (frame.dataset.liveblogFitted !== undefined) return; // another copy of this script has it
    frame.dataset.liveblogFitted = "";
    frame.style.overflow = "hidden";
    frames.push(frame);
    const hello = () => frame.contentWindow?.postMessage({ type: HELLO }, origin);
    frame.addEventListener("load", hello);
    if (showsOtherOrigin(frame)) hello(); // it loaded before this script ran
  }

  window.addEventListener("message", (event) => {
    if (event.origin !== origin || event.data?.type !== HEIGHT) return;
    const frame = frames.find((candidate) => candidate.contentWindow === event.source);
    const height = Number(event.data.height);
    if (!frame || !Number.isFinite(height)) return;
    frame.style.height = `${Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(height)))}px`;
  });

  const slug = script.dataset.blog;
  if (slug && SLUG.test(slug)) fit(makeFrame(slug));
  for (const frame of document.querySelectorAll("iframe[data-liveblog-embed]")) {
    if (frame.src.startsWith(`${origin}/`)) fit(frame);
  }
})();
