"""Viewer benchmark: size and load time of `rdfa-s6 view` pages for THUMOS-14-sized result sets.

    python benchmarks/viewer.py [SHARED_DATA] [--reps 3]

Builds the page for a synthetic set (212 videos x 200 detections, 20 classes, with ground truth) and, when
SHARED_DATA (default $RDFA_S6_SHARED_DATA or /work/shared/data) holds them, for the shared THUMOS-14 test
annotations with the `v-top200` evaluation case (the same size, real annotations). Prints the build time,
the HTML size (raw and gzipped) and the load time in headless Chromium (/usr/bin/chromium, offline): the
median over the repetitions of navigation start -> first timeline drawn, and its ratio to loading a minimal
static page in the same browser (the baseline, measured in the same run).
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _viewer_helpers import synthetic_results

from rdfa_s6.report import write_report

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def load_seconds(browser, html: Path, reps: int, ready: bool) -> tuple:
    """Median of (wall time of goto + first timeline drawn, the page's own performance.now() at that point)."""
    times, in_page = [], []
    for _ in range(reps):
        context = browser.new_context(viewport={"width": 1280, "height": 860}, offline=True)
        page = context.new_page()
        errors: list = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        start = time.perf_counter()
        page.goto(html.as_uri())
        if ready:
            page.wait_for_selector("html[data-ready]")
        times.append(time.perf_counter() - start)
        in_page.append(float(page.get_attribute("html", "data-ready")) / 1000.0)
        context.close()
        if errors:
            raise SystemExit(f"{html}: console errors: {errors}")
    return statistics.median(times), statistics.median(in_page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", default=os.environ.get("RDFA_S6_SHARED_DATA", "/work/shared/data"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="rdfa-viewer-bench-"))
    gt, res = synthetic_results(num_videos=212, dets_per_video=200, num_classes=20, seed=0, duration=220.0)
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "res.json").write_text(json.dumps(res))
    cases = [("synthetic 212 x 200, 20 classes", tmp / "res.json", tmp / "gt.json")]
    shared = Path(args.shared)
    if (shared / "evalcases" / "v-top200" / "predictions.json").is_file():
        cases.append(("THUMOS-14 test + v-top200 (212 x 200)", shared / "evalcases" / "v-top200" / "predictions.json",
                      shared / "thumos14.json"))
    (tmp / "blank.html").write_text("<!DOCTYPE html><html data-ready='0'><body>baseline</body></html>")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
        baseline, _ = load_seconds(browser, tmp / "blank.html", args.reps, ready=True)
        print(f"baseline (minimal static page): {1000 * baseline:.0f} ms")
        for name, pred, ann in cases:
            out = tmp / f"{len(name)}.html"
            start = time.perf_counter()
            info = write_report(pred, out, gt=ann)
            build = time.perf_counter() - start
            zipped = len(gzip.compress(out.read_bytes()))
            load, script = load_seconds(browser, out, args.reps, ready=True)
            print(f"{name}: {info.num_detections} detections, {info.num_videos} videos; HTML {info.size / 1e6:.2f} MB "
                  f"({zipped / 1e6:.2f} MB gzipped); build {build:.1f} s; load {1000 * load:.0f} ms "
                  f"= {load / baseline:.1f}x the baseline (page script done {1000 * script:.0f} ms after navigation "
                  f"start)")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
