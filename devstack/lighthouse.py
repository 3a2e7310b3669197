"""Lighthouse 12.2.3 (node_modules, as package-lock.json pins it) driving Debian's Chromium
against a page of a real server: one run, its JSON report, and the audits that cost a category
points. Shared by e2e/test_lighthouse.py and `make lighthouse` (scripts/lighthouse.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from .common import REPO

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as e2e/conftest.py drives it
LIGHTHOUSE = REPO / "node_modules" / ".bin" / "lighthouse"
LIGHTHOUSE_VERSION = "12.2.3"  # as package.json pins it
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
# One run of one category takes about 10 s, all four about 25 s; this is slack for a loaded
# machine, not an expected duration.
RUN_TIMEOUT = 180


class LighthouseError(RuntimeError):
    """Lighthouse or its browser is missing, or a run did not finish."""


def stop(process: subprocess.Popen) -> None:
    """Interrupt Lighthouse, as Ctrl-C would: its launcher then kills the Chromium it started
    (a process group of its own, which killing node alone would leave running) and removes the
    browser profile; SIGKILL only if that does not end it."""
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


# Lighthouse's own transient failures (e.g. NO_NAVSTART: the trace missed the navigation's
# start) say this; the run is made once more, as the message asks, and only once.
RUN_AGAIN = "Please run Lighthouse again"


def run(url: str, output: Path, *, categories: tuple[str, ...] = CATEGORIES,
        headers: dict[str, str] | None = None) -> dict:
    """Lighthouse's JSON report for `url` (mobile, its default throttling), `categories` only;
    `headers` go with every request the page makes (a session cookie, for a signed-in page)."""
    try:
        return _run(url, output, categories, headers)
    except LighthouseError as error:
        if RUN_AGAIN not in str(error):
            raise
        return _run(url, output, categories, headers)


def _run(url: str, output: Path, categories: tuple[str, ...],
         headers: dict[str, str] | None) -> dict:
    if not CHROMIUM.exists():
        raise LighthouseError(f"{CHROMIUM} is missing: apt-get install chromium")
    if not LIGHTHOUSE.exists():
        raise LighthouseError(f"{LIGHTHOUSE} is missing: make node_modules/.installed")
    command = [str(LIGHTHOUSE), url, f"--only-categories={','.join(categories)}",
               "--output=json", f"--output-path={output}", "--quiet",
               "--chrome-flags=--headless=new --no-sandbox"]
    if headers:
        command.append(f"--extra-headers={json.dumps(headers)}")
    process = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, "CHROME_PATH": str(CHROMIUM)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(process)
        raise LighthouseError(f"lighthouse took over {RUN_TIMEOUT}s on {url}") from None
    except BaseException:  # a test's timeout or Ctrl-C: leave no browser behind either
        stop(process)
        raise
    if process.returncode != 0:
        raise LighthouseError(f"lighthouse exited {process.returncode} on {url}:\n{stderr}")
    return json.loads(output.read_text())


def failing_audits(report: dict, category: str) -> list[str]:
    """Every audit that counts towards the category and did not pass, as a readable line."""
    lines = []
    for ref in report["categories"][category]["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if ref["weight"] and audit["score"] != 1:
            detail = audit.get("displayValue") or audit.get("explanation") \
                or audit.get("errorMessage") or ""
            lines.append(f"{ref['id']} ({audit['title']}): score {audit['score']} {detail}")
    return lines
