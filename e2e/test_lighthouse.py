"""Lighthouse's SEO category on the blog list and a reader page: what a crawler sees of them
scores 1.00 (issue 16). Lighthouse 12.2.3 from package-lock.json, driving Debian's Chromium
against a real daphne process (devstack/lighthouse.py, shared with `make lighthouse`); a missing
browser or Lighthouse fails, never skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import lighthouse
from devstack.daphne import ApiClient, DaphneServer
from devstack.pages import seed_blog

pytestmark = pytest.mark.e2e

SLUG = "match"


def lighthouse_seo(url: str, output: Path) -> dict:
    """Lighthouse's JSON report for `url`, SEO category only."""
    try:
        return lighthouse.run(url, output, categories=("seo",))
    except lighthouse.LighthouseError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.mark.parametrize("path", ["/", f"/liveblog/{SLUG}/"], ids=["index", "reader"])
def test_seo_score_is_perfect(
    server: DaphneServer, api: ApiClient, tmp_path: Path, path: str
) -> None:
    seed_blog(api, SLUG)
    report = lighthouse_seo(f"{server.url}{path}", tmp_path / "report.json")
    assert report["lighthouseVersion"] == lighthouse.LIGHTHOUSE_VERSION
    assert not report.get("runtimeError"), report["runtimeError"]
    assert report["finalDisplayedUrl"] == f"{server.url}{path}"  # the page itself, no redirect
    score = report["categories"]["seo"]["score"]
    assert score == 1, f"SEO {score} on {path}:\n" + "\n".join(
        lighthouse.failing_audits(report, "seo"))
