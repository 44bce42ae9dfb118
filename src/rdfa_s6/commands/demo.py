"""``rdfa-s6 demo``: synthetic data -> train the ``demo`` preset -> test -> a report folder, on a CPU in minutes."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ._common import HelpFormatter, add_precision_argument

MARKER = ".rdfa-s6-demo"
#: the quick variant: the same data, half the epochs (about 45 s on 2 idle cores). Fewer or shorter training
#: videos save little (batches are padded to max_seq_len) and make the result depend much more on the seed.
QUICK_OVERRIDES = ["train.epochs=15", "train.warmup_epochs=1"]


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="generate synthetic data, train, test and write a report (minutes on a CPU)",
        description="End to end on built-in synthetic data: writes OUT/data (the dataset), OUT/run (the training "
        "run with its checkpoints), OUT/results.json (test-split detections), OUT/metrics.json (same shape as "
        "`rdfa-s6 evaluate --json`), OUT/report.md (tables), OUT/report.html (interactive viewer: open it in a "
        "browser) and OUT/figures/*.png (timelines, training curve, per-class AP, error breakdown). The model is "
        "selected on nothing: the final EMA model is tested.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"),
                        help="report folder (replaced if it holds an earlier demo)")
    parser.add_argument("--quick", action="store_true", help="15 instead of 30 epochs: under a minute")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_precision_argument(parser)
    parser.add_argument("--video", action="store_true",
                        help="start from video files: render synthetic MP4s (OUT/videos), extract weight-free "
                        "colour-motion features with `rdfa-s6 extract` (OUT/data), then train, test and report; "
                        "OUT/example.srt holds one test video's detections as subtitles")
    parser.set_defaults(func=run)
    return parser


def _prepare_out(out: Path) -> None:
    """Empty ``out`` (held by this process) if it holds an earlier demo; refuse any other non-empty folder."""
    from ..errors import UserError
    from ..runlock import LOCK_FILE

    entries = [p for p in out.iterdir() if p.name != LOCK_FILE] if out.is_dir() else []
    if entries and not (out / MARKER).is_file():
        raise UserError(f"{out} exists and is not an earlier demo folder; choose another --out")
    for path in entries:  # the lock file stays: it is what keeps other processes out
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(out / MARKER, b"written by rdfa-s6 demo\n")


def run(args: argparse.Namespace) -> int:
    """Holds --out (a second process on it is refused) and writes the demo into it."""
    from ..errors import UserError
    from ..runlock import hold_folder

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder")
    with hold_folder(args.out):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_bytes, atomic_write_json
    from ..config import load_config
    from ..data.synth import SynthSpec, generate
    from ..eval.report import format_table
    from ..infer.runner import evaluate_split
    from ..train.loop import Trainer, TrainOptions
    from ..train.signals import stop_on_signals
    from ._progress import TrainBars

    if getattr(args, "video", False):
        from ._demo_video import run_video

        return run_video(args)
    start = time.perf_counter()
    out = args.out
    _prepare_out(out)
    spec = SynthSpec(seed=args.seed)
    overrides: List[str] = []
    if args.quick:
        overrides += QUICK_OVERRIDES
    print(f"[1/4] synthetic dataset -> {out / 'data'}")
    generate(out / "data", spec)
    cfg = load_config("demo", overrides=overrides)
    print(f"[2/4] training the 'demo' preset for {cfg.train.epochs} epochs -> {out / 'run'}")
    trainer = Trainer(cfg, TrainOptions(out_dir=out / "run", data_root=out / "data", progress=not args.no_progress,
                                        validate=False))  # the demo tests the final model instead
    with stop_on_signals(trainer.request_stop):
        result = trainer.run(progress=TrainBars(cfg.train.epochs))
    train_seconds = time.perf_counter() - start
    print("[3/4] testing the final EMA model on the test split")
    model, cfg = result.model.eval(), result.config
    results, metrics = evaluate_split(model, cfg, result.data, cfg.data.test_split, precision=args.precision)
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "metrics.json", metrics)
    print("[4/4] report")
    figures = _figures(out, results, metrics)
    _viewer(out, cfg.data.test_split, metrics)
    total = time.perf_counter() - start
    report = _report(metrics, cfg.train.epochs, train_seconds, total, figures, args.quick)
    atomic_write_bytes(out / "report.md", report.encode("utf-8"))
    print(format_table(metrics))
    print(f"\ndone in {total:.0f} s. Report: {out / 'report.md'}\n  metrics: {out / 'metrics.json'}\n"
          f"  detections: {out / 'results.json'}\n  viewer: {out / 'report.html'} (open in a browser)\n"
          f"  model: {out / 'run' / 'final'}\n  figures: {out / 'figures'}")
    return 0


def _viewer(out: Path, split: str, metrics: Dict[str, Any], videos_dir: Optional[Path] = None) -> Path:
    """OUT/report.html: the interactive viewer of the test detections with their ground truth and evaluation
    (the numbers of metrics.json: same evaluator, thresholds and ground-truth policy); ``videos_dir``: video
    files to link."""
    from ..report import write_report

    return write_report(out / "results.json", out / "report.html", gt=out / "data" / "annotations.json",
                        subset=split, tiou_thresholds=metrics["tiou_thresholds"], gt_policy=metrics["gt_policy"],
                        videos_dir=videos_dir,
                        title="rdfa-s6 demo: test detections").path


def _figures(out: Path, results: Dict[str, Any], metrics: Dict[str, Any]) -> List[Path]:
    """PNG figures; skipped with a note when matplotlib is not installed."""
    import logging

    try:
        import matplotlib  # noqa: F401  (only whether it is installed)
    except ImportError:
        logging.getLogger(__name__).warning("matplotlib is not installed: no figures (pip install 'rdfa-s6[viz]')")
        return []
    from ..formats.annotations import read_annotations
    from ..viz import plot_class_ap, plot_error_breakdown, plot_training_curve
    from ..viz.timeline import plot_timeline

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    files = [plot_training_curve(out / "run" / "metrics.jsonl", fig_dir / "training_curve.png"),
             plot_class_ap(metrics, fig_dir / "class_ap.png"),
             plot_error_breakdown(metrics, fig_dir / "error_breakdown.png")]
    annotations = read_annotations(out / "data" / "annotations.json")
    test_videos = [v for v, video in annotations.videos.items() if video.subset == "test"][:3]
    for vid in test_videos:
        video = annotations.videos[vid]
        gt = [(e.start, e.end, e.label) for e in video.events]
        preds = [(d["segment"][0], d["segment"][1], d["label"], d["score"]) for d in results["results"].get(vid, [])]
        files.append(plot_timeline(vid, gt, preds, video.duration, fig_dir / f"timeline_{vid}.png"))
    return [Path(f) for f in files]


def _report(metrics: Dict[str, Any], epochs: int, train_seconds: float, total: float, figures: List[Path],
            quick: bool) -> str:
    thr = metrics["tiou_thresholds"]
    lines = ["# rdfa-s6 demo report", "",
             f"Synthetic data ({'quick' if quick else 'full'} demo), `demo` preset, {epochs} epochs; final EMA model "
             f"tested on the test split. Training {train_seconds:.0f} s, total {total:.0f} s.", "",
             "| tIoU | " + " | ".join(f"{t:.2f}" for t in thr) + " | Avg |",
             "|---" * (len(thr) + 2) + "|",
             "| mAP (%) | " + " | ".join(f"{100 * v:.1f}" for v in metrics["mAP"])
             + f" | {100 * metrics['average_mAP']:.1f} |", "", "| class | AP (%) averaged over tIoU |", "|---|---|"]
    for label, aps in metrics["per_class_AP"].items():
        lines.append(f"| {label} | {100 * sum(aps) / len(aps):.1f} |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    return "\n".join(lines) + "\n"
