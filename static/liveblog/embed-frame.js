// The reader inside another site's page (/liveblog/<slug>/embed/): the same live feed as the
// reader page, plus its height, told to the embedding page so that the frame fits it.
//
// embed.js on the embedding page says `liveblog:hello`. Only a hello from the frame's own
// parent, from an origin on the blog's list (the same list the CSP's frame-ancestors holds), is
// answered; from then on every change of height goes to that exact origin, never to "*".
import { startFeed } from "./live-feed.js";

const HELLO = "liveblog:hello";
const HEIGHT = "liveblog:height";

const allowed = new Set(JSON.parse(document.getElementById("embed-origins").textContent));
let parentOrigin = null;
let told = 0;

function contentHeight() {
  return Math.ceil(document.documentElement.getBoundingClientRect().height);
}

function tellHeight() {
  const height = contentHeight();
  if (parentOrigin === null || height === told) return;
  told = height;
  window.parent.postMessage({ type: HEIGHT, height }, parentOrigin);
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || window.parent === window) return;
  if (!allowed.has(event.origin) || event.data?.type !== HELLO) return;
  parentOrigin = event.origin;
  told = 0; // a new hello (the embedding page reloaded the frame's parent) gets the height again
  tellHeight();
});

new ResizeObserver(tellHeight).observe(document.documentElement);
startFeed();
