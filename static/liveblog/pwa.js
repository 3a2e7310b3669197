// The installable app, on every page: registers the service worker, offers "Install app" when
// the browser allows it, says when a new version is waiting (one click switches to it), and
// signs out on this device as well as on the server (sign-out.js).
import { startSignOut } from "./sign-out.js";

const UPDATE_CHECK_MS = 15 * 60 * 1000; // a live blog stays open for hours: look for deploys

function requestPersistentStorage() {
  // Installed apps keep their offline copy: ask the browser not to evict it under pressure.
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persist().catch(() => {});
  }
}

function showUpdate(worker) {
  const banner = document.getElementById("update-banner");
  if (!banner) return;
  banner.hidden = false;
  document.getElementById("update-reload").addEventListener("click", () => {
    worker.postMessage({ type: "SKIP_WAITING" });
  }, { once: true });
}

/** Photos shown before the first worker took control never passed through it: ask for them
 *  again through it (the HTTP cache answers: they are immutable), so that it keeps them too. */
function keepPhotosAlreadyShown() {
  for (const image of document.querySelectorAll(".post-photo img")) {
    if (image.complete && image.naturalWidth > 0) fetch(image.currentSrc).catch(() => {});
  }
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  let registration;
  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" });
  } catch (error) {
    console.warn("liveblog: service worker not registered", error);
    return;
  }
  if (registration.waiting && hadController) showUpdate(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker.addEventListener("statechange", () => {
      // An installed worker with a controller in place is an update, waiting for us.
      if (worker.state === "installed" && navigator.serviceWorker.controller) showUpdate(worker);
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // The first worker taking control is not an update; only a switch we asked for reloads.
    if (!hadController) keepPhotosAlreadyShown();
    if (!hadController || reloading) return;
    reloading = true;
    location.reload();
  });
  navigator.serviceWorker.ready.then((active) => {
    if (!navigator.serviceWorker.controller) active.active?.postMessage({ type: "CLAIM" });
  });
  const checkForUpdate = () => registration.update().catch(() => {});
  setInterval(checkForUpdate, UPDATE_CHECK_MS);
  window.addEventListener("online", checkForUpdate);
}

function offerInstall() {
  const button = document.getElementById("install-app");
  if (!button) return;
  let deferred = null;
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault(); // our own button, not the browser's mini-infobar
    deferred = event;
    button.hidden = false;
  });
  button.addEventListener("click", async () => {
    if (!deferred) return;
    deferred.prompt();
    await deferred.userChoice;
    deferred = null;
    button.hidden = true;
  });
  window.addEventListener("appinstalled", () => {
    button.hidden = true;
    requestPersistentStorage();
  });
  if (window.matchMedia("(display-mode: standalone)").matches) requestPersistentStorage();
}

startSignOut();
offerInstall();
registerWorker();
