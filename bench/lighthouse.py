"""`make lighthouse` (`python -m bench.lighthouse`): Lighthouse 12.2.3 (mobile, its default
throttling: simulated slow 4G, 4× CPU) on the blog list, a reader page of 30 posts with photos
and the author console (signed in: the session cookie goes with `--extra-headers`), every
category, against a real daphne process. Prints a table of scores (medians of `--runs`, with
their spread) and exits 1 when a category is below its gate: 0.95, and 1.00 for accessibility.

The console is `noindex` on purpose (an author's page: no search engine should list it), which
fails the SEO audit `is-crawlable`; its SEO gate is the SEO category without that one audit
(Lighthouse's own weighted mean of the other audits), and the table shows both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from devstack import lighthouse
from devstack.daphne import ApiClient, Site
from devstack.pages import seed_blog

from .page import PHOTO_EVERY, PHOTO_SIZE
from .processes import liveblog_server

RESULTS = Path(__file__).resolve().parent / "results"  # the JSON reports (ignored by git)
GATE = 0.95
GATES = {"accessibility": 1.0}
POSTS = 30
# The console must stay out of search engines: this audit fails there by design.
NOT_GATED = {"console": {"seo": {"is-crawlable"}}}
SCORE_MODES = {"binary", "numeric", "metricSavings"}


def pages(slug: str) -> list[tuple[str, str, bool]]:
    """(name, path, signed in) of each page measured."""
    return [("blog list", "/", False), ("reader", f"/liveblog/{slug}/", False),
            ("console", f"/liveblog/{slug}/write/", True)]


def category_score(report: dict, category: str, leave_out: set[str] = frozenset()) -> float:
    """The category's score as Lighthouse computes it (the weighted mean of its scored audits),
    without the audits in `leave_out`."""
    total = weights = 0.0
    for ref in report["categories"][category]["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if ref["id"] in leave_out or not ref["weight"] or audit["score"] is None \
                or audit["scoreDisplayMode"] not in SCORE_MODES:
            continue
        total += audit["score"] * ref["weight"]
        weights += ref["weight"]
    return round(total / weights, 2) if weights else 1.0


def scores(report: dict, name: str) -> dict[str, dict]:
    """Per category: Lighthouse's score, the gated score and the failing audits."""
    result = {}
    for category in lighthouse.CATEGORIES:
        score = report["categories"][category]["score"]
        left_out = NOT_GATED.get(name, {}).get(category, set())
        gated = category_score(report, category, left_out) if left_out else score
        result[category] = {"score": score, "gated": gated, "left_out": sorted(left_out),
                            "failing": lighthouse.failing_audits(report, category)}
    return result


def measure(runs: int, work: Path) -> dict[str, list[dict[str, dict]]]:
    RESULTS.mkdir(exist_ok=True)
    (work / "site").mkdir()
    site = Site.create(work / "site")
    measured: dict[str, list[dict[str, dict]]] = {}
    with liveblog_server(site) as server:
        api = ApiClient(server.url).login(site.username, site.password)
        seed_blog(api, site.slug, POSTS, photo_every=PHOTO_EVERY, photo_size=PHOTO_SIZE)
        author = ApiClient(server.url).login(site.username, site.password)  # a session of its own
        cookie = "; ".join(f"{c.name}={c.value}" for c in author.cookies
                           if c.name in ("sessionid", "csrftoken"))
        for run in range(runs):
            for name, path, signed_in in pages(site.slug):
                print(f"[{run + 1}/{runs}] {name}: {path}", file=sys.stderr, flush=True)
                output = RESULTS / f"lighthouse-{name.replace(' ', '-')}-{run + 1}.json"
                report = lighthouse.run(f"{server.url}{path}", output,
                                        headers={"Cookie": cookie} if signed_in else None)
                if report.get("runtimeError"):
                    raise lighthouse.LighthouseError(f"{name}: {report['runtimeError']}")
                if report["finalDisplayedUrl"] != f"{server.url}{path}":
                    raise lighthouse.LighthouseError(
                        f"{name}: ended at {report['finalDisplayedUrl']} (not signed in?)")
                measured.setdefault(name, []).append(scores(report, name))
    return measured


def _cell(values: list[float]) -> str:
    median = statistics.median(values)
    spread = f" ({min(values):.2f}–{max(values):.2f})" if min(values) != max(values) else ""
    return f"{median:.2f}{spread}"


def table(measured: dict[str, list[dict[str, dict]]]) -> tuple[list[str], list[str]]:
    """The lines of the score table, and the gates that failed."""
    header = ["page", *lighthouse.CATEGORIES]
    rows, failed = [header], []
    for name, runs in measured.items():
        row = [name]
        for category in lighthouse.CATEGORIES:
            values = [run[category]["score"] for run in runs]
            gated = [run[category]["gated"] for run in runs]
            cell = _cell(values)
            if runs[0][category]["left_out"]:
                cell += f" [{_cell(gated)} without {', '.join(runs[0][category]['left_out'])}]"
            row.append(cell)
            gate = GATES.get(category, GATE)
            if statistics.median(gated) < gate:
                failing = sorted({line for run in runs for line in run[category]["failing"]})
                failed.append(f"{name} {category} {statistics.median(gated):.2f} < {gate:.2f}:\n"
                              + "\n".join(f"    {line}" for line in failing))
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lighthouse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3,
                        help="Lighthouse runs per page; the table gives medians (3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="liveblog-lighthouse-") as work:
        try:
            measured = measure(args.runs, Path(work))
        except lighthouse.LighthouseError as error:
            print(f"lighthouse: {error}", file=sys.stderr)
            return 1
    lines, failed = table(measured)
    print(f"\nLighthouse {lighthouse.LIGHTHOUSE_VERSION}, mobile; medians of {args.runs} runs "
          "(min–max when they differ)\n")
    print("\n".join(lines))
    if failed:
        print("\nbelow the gate (0.95; accessibility 1.00):\n" + "\n".join(failed))
        return 1
    print("\nevery category at or above its gate (0.95; accessibility 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
