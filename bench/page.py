"""page: the reader page on a slow phone (issue 19). A blog of `page_posts` posts (default 30;
every third a real 1600×1200 JPEG uploaded through the API, devstack/pages.py) on one daphne;
Debian's Chromium, headless, with a phone's screen (Lighthouse's mobile one: 412×823 CSS px at
1.75×, touch) and, through the DevTools protocol, DevTools' "Slow 3G" network
(`Network.emulateNetworkConditions`, SLOW_3G below) and a 4× slower CPU
(`Emulation.setCPUThrottlingRate`).

What a run measures, from navigation start (`performance.timeOrigin`):
- posts: the first animation frame in which the first server-rendered `article.post` has a
  layout box inside the viewport (a script injected before the page's own, polling each frame;
  the page paints that frame next). With app.css render-blocking, no frame runs before it came;
- fcp: First Contentful Paint (PerformanceObserver "paint"); lcp: the last Largest Contentful
  Paint candidate seen when the posts showed plus one second.

cold: a fresh browser profile (no cache, no service worker). warm: an installed app's start in a
profile that read the page once (the worker in control, the page, the shell and the feed's local
copy cached): a new tab, its service worker stopped first (as after the phone closed the app),
then the page, online on Slow 3G; offline: the same with DevTools' "Offline" preset. The network
conditions are set on the page and on the service worker, whose fetches are its own.
shell: what a browser downloads to install the app, the worker's precache list, as the server
sends it with `Accept-Encoding: gzip, br` (WhiteNoise serves the precompressed files).
"""

from __future__ import annotations

import json
import re
import statistics
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.common import wait_until
from devstack.daphne import ApiClient, Site
from devstack.pages import seed_blog

from .processes import BenchError, liveblog_server, log_issues
from .scenarios import Config, fresh_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Chrome DevTools' "Slow 3G" preset (front_end/core/sdk/NetworkManager.ts, Slow3GConditions:
# ~500 kbit/s down and up with DevTools' 0.8 adjustment, a 400 ms RTT as latency 400 × 5):
# 50 000 bytes/s each way, 2000 ms before each response's first byte.
SLOW_3G = {"offline": False, "latency": 400 * 5,
           "downloadThroughput": 500 * 1000 / 8 * 0.8, "uploadThroughput": 500 * 1000 / 8 * 0.8}
# DevTools' "Offline" preset (OfflineConditions, the same file): no network at all; a request
# fails at once, as on a phone in a tunnel (Slow 3G's latency would delay even the failure).
OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0}
CPU_SLOWDOWN = 4  # Lighthouse's mobile default (a mid-range phone against a desktop CPU)
PHONE = {"viewport": {"width": 412, "height": 823}, "device_scale_factor": 1.75,
         "is_mobile": True, "has_touch": True}
PHOTO_EVERY = 3
PHOTO_SIZE = (1600, 1200)
TARGETS_MS = {"cold": 3000, "warm": 1000, "offline": 1000}
SHELL_BUDGET_BYTES = 100 * 1024
LOAD_TIMEOUT_MS = 60_000

PROBE = """
(() => {
  const marks = { posts: null, fcp: null, lcp: null };
  Object.defineProperty(window, "__pageBench", { value: marks });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.name === "first-contentful-paint") marks.fcp = entry.startTime;
    }
  }).observe({ type: "paint", buffered: true });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) marks.lcp = entry.startTime;
  }).observe({ type: "largest-contentful-paint", buffered: true });
  const frame = () => {
    const post = document.querySelector("article.post");
    const box = post && post.getBoundingClientRect();
    if (box && box.height > 0 && box.top < innerHeight) {
      marks.posts = performance.now();
    } else {
      requestAnimationFrame(frame);
    }
  };
  requestAnimationFrame(frame);
})();
"""


def _throttle(session: Any, *, offline: bool = False) -> None:
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", OFFLINE if offline else SLOW_3G)


def _throttle_page(context: Any, page: Any, *, offline: bool = False) -> None:
    session = context.new_cdp_session(page)
    _throttle(session, offline=offline)
    session.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})


def _measure(page: Any, url: str) -> dict[str, Any]:
    """Load `url` in `page` (its probe added, its throttling set) and read the marks."""
    page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    wait_until(lambda: page.evaluate("window.__pageBench && window.__pageBench.posts"),
               timeout=LOAD_TIMEOUT_MS / 1000, interval=0.1, message="the first post on screen")
    time.sleep(1.0)  # a later LCP candidate (a photo) has a second to show up
    marks = page.evaluate("""() => {
      const nav = performance.getEntriesByType("navigation")[0];
      return { ...window.__pageBench, responseStart: nav.responseStart,
               workerStart: nav.workerStart, htmlBytes: nav.transferSize,
               posts_count: document.querySelectorAll("article.post").length };
    }""")
    return {key: (round(value, 1) if isinstance(value, float) else value)
            for key, value in marks.items()}


def cold_run(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.add_init_script(PROBE)
        _throttle_page(context, page)
        return _measure(page, url)
    finally:
        context.close()


class WorkerThrottle:
    """Slow 3G on the service worker too: its fetches (the page, network first) are not the
    page's. Through the browser's DevTools session: attach to each service worker target and
    relay the command (the page-level session cannot reach a worker)."""

    def __init__(self, browser_session: Any, *, offline: bool = False,
                 conditions: dict[str, Any] | None = None) -> None:
        self.session = browser_session
        self.conditions = conditions or (OFFLINE if offline else SLOW_3G)
        self.attached: dict[str, str] = {}  # target id: session id

    def apply(self) -> int:
        for target in self.session.send("Target.getTargets")["targetInfos"]:
            if target["type"] != "service_worker" or target["targetId"] in self.attached:
                continue
            attached = self.session.send("Target.attachToTarget",
                                         {"targetId": target["targetId"], "flatten": False})
            for number, (method, params) in enumerate((
                    ("Network.enable", {}),
                    ("Network.emulateNetworkConditions", self.conditions))):
                self.session.send("Target.sendMessageToTarget", {
                    "sessionId": attached["sessionId"],
                    "message": json.dumps({"id": number + 1, "method": method, "params": params})})
            self.attached[target["targetId"]] = attached["sessionId"]
        return len(self.attached)

    def close(self) -> None:
        """Detach (the worker outlives this run: another session's conditions must not stay)."""
        for session_id in self.attached.values():
            self.session.send("Target.detachFromTarget", {"sessionId": session_id})
        self.session.detach()


def _install(context: Any, url: str) -> None:
    """Read the page once, unthrottled, until the worker controls it and has cached it and the
    feed's local copy (IndexedDB); then close the tab and stop the worker, as a phone would."""
    page = context.new_page()
    page.goto(url)
    for script, what in (("() => navigator.serviceWorker.controller !== null", "control"),
                         ("async () => Boolean(await caches.match(location.href))", "cache"),
                         ("() => Boolean(window.liveblog && window.liveblog.store"
                          " && window.liveblog.store.savedHead)", "local copy")):
        wait_until(lambda script=script: page.evaluate(script), timeout=30,
                   message=f"the service worker's {what}")
    page.close()


def warm_runs(browser: Any, url: str) -> dict[str, dict[str, Any]]:
    """An installed app's start, online on slow 3G and offline: a new tab of a profile that read
    the page once, its service worker stopped (as after the phone closed the app); the worker is
    started (`ServiceWorker.startWorker`, not timed) so that its fetches can be throttled too
    before the page is opened."""
    origin = url.split("/liveblog/", 1)[0]
    context = browser.new_context(**PHONE)
    results = {}
    try:
        _install(context, url)
        for name, offline in (("warm", False), ("offline", True)):
            page = context.new_page()
            page.add_init_script(PROBE)
            session = context.new_cdp_session(page)
            session.send("ServiceWorker.enable")
            session.send("ServiceWorker.stopAllWorkers")
            _throttle_page(context, page, offline=offline)
            session.send("ServiceWorker.startWorker", {"scopeURL": origin + "/"})
            workers = WorkerThrottle(browser.new_browser_cdp_session(), offline=offline)
            try:
                wait_until(workers.apply, timeout=10, message="the service worker to start")
                results[name] = {**_measure(page, url), "throttled_workers": len(workers.attached)}
            finally:
                workers.close()
            page.close()
    finally:
        context.close()
    return results


def shell_transfer(base_url: str) -> dict[str, Any]:
    """The precached shell as the server sends it: bytes per encoding asked for (the worker's
    own install fetches send the browser's Accept-Encoding: gzip, deflate, br, zstd)."""
    with urllib.request.urlopen(base_url + "/sw.js", timeout=10) as response:
        worker = response.read().decode()
    found = re.search(r"^const PRECACHE = (\[.*\]);$", worker, re.MULTILINE)
    if not found:
        raise BenchError("no PRECACHE list in /sw.js")
    urls = json.loads(found.group(1))
    sizes = {"identity": 0, "gzip": 0, "br": 0, "served": 0}
    files = []
    for path in urls:
        row = {"url": path}
        for encoding, accept in (("identity", "identity"), ("gzip", "gzip"), ("br", "br"),
                                 ("served", "gzip, deflate, br, zstd")):
            request = urllib.request.Request(base_url + path, headers={"Accept-Encoding": accept})
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                row[encoding] = len(body)
                if encoding == "served":
                    row["encoding"] = response.headers.get("Content-Encoding") or "identity"
        for key in sizes:
            sizes[key] += row[key]
        files.append(row)
    return {"files": files, "bytes": sizes}


def _spread(values: list[float]) -> dict[str, float | None]:
    values = [value for value in values if value is not None]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def page(config: Config, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise BenchError(f"{CHROMIUM} is missing: apt-get install chromium")
    site = Site.create(fresh_dir(config.work / "page"))
    runs = config.page_runs
    with liveblog_server(site) as server:
        api = ApiClient(server.url).login(site.username, site.password)
        progress(f"page: seeding {config.page_posts} posts, every {PHOTO_EVERY}rd a photo")
        seed_blog(api, site.slug, config.page_posts, photo_every=PHOTO_EVERY,
                  photo_size=PHOTO_SIZE)
        url = f"{server.url}/liveblog/{site.slug}/"
        shell = shell_transfer(server.url)
        measured: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": [], "offline": []}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                for run in range(runs):
                    progress(f"page: run {run + 1}/{runs}, cold and warm (slow 3G, CPU ×4)")
                    measured["cold"].append(cold_run(browser, url))
                    warm = warm_runs(browser, url)
                    measured["warm"].append(warm["warm"])
                    measured["offline"].append(warm["offline"])
            finally:
                browser.close()
        issues = log_issues(server.log_path)
    return [_row(name, runs_, shell, issues) for name, runs_ in measured.items()]


def _row(name: str, runs: list[dict[str, Any]], shell: dict[str, Any],
         issues: dict[str, Any]) -> dict[str, Any]:
    posts = _spread([run["posts"] for run in runs])
    return {
        "scenario": "page", "server": "liveblog", "readers": None, "start": name,
        "latency_ms": {"p50": posts["median"], "p99": None, "max": posts["max"]},
        "posts_ms": posts, "fcp_ms": _spread([run["fcp"] for run in runs]),
        "lcp_ms": _spread([run["lcp"] for run in runs]), "target_ms": TARGETS_MS[name],
        "runs": runs, "shell": shell["bytes"], "shell_files": shell["files"],
        "shell_budget_bytes": SHELL_BUDGET_BYTES, "server_log": issues,
        "network": OFFLINE if name == "offline" else SLOW_3G, "cpu_slowdown": CPU_SLOWDOWN,
    }
