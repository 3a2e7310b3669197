"""Lighthouse's SEO category on the blog list and a reader page: what a crawler sees of them
scores 1.00 (issue 16). Lighthouse 12.2.3 from package-lock.json, driving Debian's Chromium
against a real daphne process; a missing browser or Lighthouse fails, never skips."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from devstack.common import REPO
from devstack.daphne import ApiClient, DaphneServer

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as e2e/conftest.py drives it
LIGHTHOUSE = REPO / "node_modules" / ".bin" / "lighthouse"
LIGHTHOUSE_VERSION = "12.2.3"  # as package.json pins it
SLUG = "match"
# One run takes about 10 s; this is slack for a loaded CI machine, not an expected duration.
RUN_TIMEOUT = 90


def small_jpeg() -> bytes:
    image = Image.new("RGB", (320, 240), (30, 110, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def seed_blog(api: ApiClient) -> None:
    """A reader page as a newsroom's would look: a description, a key event, a linked post and
    a photo with its alt text (so `image-alt` and the link audits have something to judge)."""
    status, answer = api.request("PATCH", f"/api/liveblog/{SLUG}/", {
        "description": "Every kick of the cup final at Wembley, as it happens.",
    })
    assert status == 200, answer
    api.post(SLUG, "Kick-off at Wembley: the final is under way", key_event=True)
    api.post(SLUG, "Both sides unchanged. [The team sheets](https://example.com/team-sheets)")
    api.post_photo(SLUG, small_jpeg(), alt="Fans fill the stands before kick-off")
    api.post(SLUG, "A quiet spell in midfield")


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


def lighthouse_seo(url: str, output: Path) -> dict:
    """Lighthouse's JSON report for `url`, SEO category only."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    if not LIGHTHOUSE.exists():
        pytest.fail(f"{LIGHTHOUSE} is missing: make node_modules/.installed", pytrace=False)
    process = subprocess.Popen(
        [str(LIGHTHOUSE), url, "--only-categories=seo", "--output=json",
         f"--output-path={output}", "--quiet",
         "--chrome-flags=--headless=new --no-sandbox"],
        cwd=REPO, env={**os.environ, "CHROME_PATH": str(CHROMIUM)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail(f"lighthouse took over {RUN_TIMEOUT}s on {url}", pytrace=False)
    except BaseException:  # pytest-timeout or Ctrl-C: leave no browser behind either
        stop(process)
        raise
    assert process.returncode == 0, f"lighthouse exited {process.returncode}:\n{stderr}"
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


@pytest.mark.parametrize("path", ["/", f"/liveblog/{SLUG}/"], ids=["index", "reader"])
def test_seo_score_is_perfect(
    server: DaphneServer, api: ApiClient, tmp_path: Path, path: str
) -> None:
    seed_blog(api)
    report = lighthouse_seo(f"{server.url}{path}", tmp_path / "report.json")
    assert report["lighthouseVersion"] == LIGHTHOUSE_VERSION
    assert not report.get("runtimeError"), report["runtimeError"]
    assert report["finalDisplayedUrl"] == f"{server.url}{path}"  # the page itself, no redirect
    score = report["categories"]["seo"]["score"]
    assert score == 1, f"SEO {score} on {path}:\n" + "\n".join(failing_audits(report, "seo"))
