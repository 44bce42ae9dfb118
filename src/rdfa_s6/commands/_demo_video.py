"""``rdfa-s6 demo --video``: synthetic MP4s -> ``extract`` -> train -> test -> report, end to end on a CPU.

The backbone is ``colour-motion``, a weight-free feature (per-cell colour means, changes and motion energy on a
4 x 4 grid; ``rdfa_s6.video.handcrafted``): it needs no download, so the demo is honest about what it shows (the
video path works end to end and the detector learns from what the features carry), and it is cheap enough for
a few minutes on 2 cores; a random-init 3D CNN would cost seconds per clip here and carry no learned meaning
(docs/results.md).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, List

#: the quick variant: fewer and shorter videos, half the epochs (CI runs it)
QUICK_SPEC: Dict[str, Any] = {"train_videos": 40, "val_videos": 4, "test_videos": 8}
QUICK_OVERRIDES = ["train.epochs=16", "train.warmup_epochs=1"]
BACKBONE = "colour-motion"


def run_video(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_bytes, atomic_write_json
    from ..config import load_config
    from ..eval.report import format_table
    from ..infer.runner import evaluate_split
    from ..train.loop import Trainer, TrainOptions
    from ..video.extract import ExtractOptions, extract
    from ..video.synth import VideoSynthSpec, generate_videos, load_ground_truth
    from ._progress import TrainBars, video_bar
    from .demo import _figures, _prepare_out, _report, _viewer

    start = time.perf_counter()
    out: Path = args.out
    _prepare_out(out)
    spec = VideoSynthSpec(seed=args.seed, **(QUICK_SPEC if args.quick else {}))
    n_videos = spec.train_videos + spec.val_videos + spec.test_videos
    print(f"[1/5] rendering {n_videos} synthetic videos (MP4, {spec.size}x{spec.size}, {spec.fps} fps) -> "
          f"{out / 'videos'}")
    generate_videos(out / "videos", spec)
    print(f"[2/5] extracting {BACKBONE} features (weight-free) -> {out / 'data'}")
    summary = extract([out / "videos"], ExtractOptions(out=out / "data", backbone=BACKBONE, workers=1, device="cpu"),
                      progress=video_bar("extract", not args.no_progress))
    _label(out / "data" / "annotations.json", load_ground_truth(out / "videos"))
    extract_seconds = time.perf_counter() - start
    overrides: List[str] = list(QUICK_OVERRIDES) if args.quick else []
    cfg = load_config("demo", overrides=overrides)
    print(f"[3/5] training the 'demo' preset for {cfg.train.epochs} epochs -> {out / 'run'}")
    trainer = Trainer(cfg, TrainOptions(out_dir=out / "run", data_root=out / "data", progress=not args.no_progress))
    trainer.run(progress=TrainBars(cfg.train.epochs))
    train_seconds = time.perf_counter() - start - extract_seconds
    print("[4/5] testing the final EMA model on the test split")
    results, metrics = evaluate_split(trainer.ema.module.eval(), trainer.cfg, trainer.data, trainer.cfg.data.test_split)
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "metrics.json", metrics)
    print("[5/5] report")
    example = _example(out)
    figures = _figures(out, results, metrics)
    _viewer(out, trainer.cfg.data.test_split, metrics, videos_dir=out / "videos")
    total = time.perf_counter() - start
    report = _report(metrics, trainer.cfg.train.epochs, train_seconds, total, figures, args.quick)
    report = report.replace("Synthetic data", f"Synthetic videos ({n_videos} MP4 files, {BACKBONE} features "
                            f"extracted in {extract_seconds:.0f} s at "
                            f"{summary.video_seconds / max(summary.seconds, 1e-9):.0f} "
                            f"video-s/s)", 1)
    atomic_write_bytes(out / "report.md", (report + f"\nOne command from a video file to detections: `rdfa-s6 infer "
                                   f"{out / 'run'} {example} --srt {out / 'example.srt'}`\n").encode("utf-8"))
    print(format_table(metrics))
    print(f"\ndone in {total:.0f} s. Report: {out / 'report.md'}\n  metrics: {out / 'metrics.json'}\n"
          f"  detections: {out / 'results.json'}\n  viewer: {out / 'report.html'} (open in a browser)\n"
          f"  model: {out / 'run' / 'final'}\n  videos: {out / 'videos'}\n"
          f"  subtitles of {example.name}: {out / 'example.srt'}")
    return 0


def _label(ann_path: Path, ground_truth: dict) -> None:
    """Put the rendered ground truth (subsets, actions) into the annotation file ``extract`` wrote."""
    from ..atomic import atomic_write_json
    from ..formats.jsonfile import read_json

    ann, _ = read_json(ann_path, "annotation file")
    for vid, entry in ann["database"].items():
        entry["subset"] = ground_truth[vid]["subset"]
        entry["annotations"] = ground_truth[vid]["annotations"]
    atomic_write_json(ann_path, ann)


def _example(out: Path) -> Path:
    """Detections of the first test video straight from its MP4 (the run's recorded extraction), as subtitles."""
    from ..api import Detector
    from ..export import export_results
    from ..infer.results import results_document

    video = sorted((out / "videos").glob("synthvid_test_*.mp4"))[0]
    dets = Detector.from_pretrained(out / "run").predict_video(video)
    export_results(results_document({video.stem: dets[:10]}), "srt", out / "example.srt")  # the 10 best
    return video
