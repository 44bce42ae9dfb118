"""Regenerate docs/img/viewer.png: the viewer on a demo folder's test detections, in headless Chromium.

    python scripts/viewer_screenshot.py DEMO_OUT [VIDEO_ID] [--out docs/img/viewer.png]

The synthetic demo has features but no videos: a stand-in video is made for VIDEO_ID (a coloured square in
the class's colour while a ground-truth event is on, a moving marker), linked with --videos, seeked by
clicking a detection, and the detection is hovered. Saved as a 256-colour PNG.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from rdfa_s6.eval import load_ground_truth
from rdfa_s6.report import write_report
from rdfa_s6.viz.colors import class_colors


def stand_in_video(path: Path, events, labels, duration: float, fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(int(duration * fps)):
            t = i / fps
            img = np.full((180, 320, 3), (40, 40, 60), np.uint8)
            x = int(t / duration * 300)
            img[150:170, x:x + 20] = 200
            for ev in events:
                if ev["segment"][0] <= t < ev["segment"][1]:
                    col = class_colors(labels)[ev["label"]]  # the page's colour of the class
                    img[40:140, 100:220] = [int(col[k:k + 2], 16) for k in (1, 3, 5)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path)
    parser.add_argument("video", nargs="?", default="synth_test_0001")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img" / "viewer.png")
    args = parser.parse_args()
    ann = args.demo / "data" / "annotations.json"
    entry = json.loads(ann.read_text())["database"][args.video]
    work = Path(tempfile.mkdtemp(prefix="rdfa-shot-"))
    (work / "videos").mkdir()
    stand_in_video(work / "videos" / f"{args.video}.mp4", entry["annotations"], load_ground_truth(ann).labels,
                   entry["duration"])
    write_report(args.demo / "results.json", work / "report.html", gt=ann, videos_dir=work / "videos",
                 title="rdfa-s6 demo: test detections", threshold=0.2)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((work / "report.html").as_uri() + "#video=" + args.video)
        page.wait_for_selector("html[data-ready]")
        page.wait_for_timeout(800)
        rect = page.locator("#timeline rect.det[data-k='1']")
        rect.click()
        page.wait_for_timeout(800)
        rect.hover()
        page.wait_for_timeout(300)
        page.screenshot(path=str(work / "shot.png"))
        browser.close()
    image = Image.open(work / "shot.png").convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
