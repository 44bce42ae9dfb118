"""``rdfa-s6 demo``: synthetic data -> train the ``demo`` preset -> test -> a report folder, on a CPU in minutes.

One pipeline (:func:`_run`) for both demos; only the data stage differs. ``demo --video`` starts from video
files: the backbone is ``colour-motion``, a weight-free feature (per-cell colour means, changes and motion energy
on a 4 x 4 grid; ``rdfa_s6.video.handcrafted``): it needs no download, so the demo is honest about what it shows
(the video path works end to end and the detector learns from what the features carry), and it is cheap enough
for a few minutes on 2 cores; a random-init 3D CNN would cost seconds per clip here and carry no learned meaning
(docs/results.md). ``--backbone hf:FOLDER`` / ``py:FILE.py:FACTORY`` run the same demo on another backbone (the
tests use a tiny random VideoMAE from :func:`rdfa_s6.video.hf.write_random_model`).
"""
from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ._common import BACKBONE_HELP, HelpFormatter, add_precision_argument, add_trust_remote_code_argument, in_range

MARKER = ".rdfa-s6-demo"
#: the quick variant: the same data, half the epochs (about 45 s on 2 idle cores). Fewer or shorter training
#: videos save little (batches are padded to max_seq_len) and make the result depend much more on the seed.
QUICK_OVERRIDES = ["train.epochs=15", "train.warmup_epochs=1"]
#: the quick video demo: fewer and shorter videos, half the epochs (CI runs it)
VIDEO_QUICK_SPEC: Dict[str, Any] = {"train_videos": 40, "val_videos": 4, "test_videos": 8}
VIDEO_QUICK_OVERRIDES = ["train.epochs=16", "train.warmup_epochs=1"]
VIDEO_BACKBONE = "colour-motion"


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
    parser.add_argument("--quick", action="store_true",
                        help="a shorter run: half the epochs (the feature demo about 70 s on 2 cores; with --video, "
                        "fewer and shorter videos too, a few minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (the line per epoch, loss and seconds, stays)")
    add_precision_argument(parser)
    parser.add_argument("--video", action="store_true",
                        help="start from video files: render synthetic MP4s (OUT/videos), extract weight-free "
                        "colour-motion features with `rdfa-s6 extract` (OUT/data), then train, test and report; "
                        "OUT/example.srt holds one test video's detections as subtitles")
    parser.add_argument("--backbone", default=VIDEO_BACKBONE,
                        help=f"{BACKBONE_HELP}; with --video only, and of the torchvision ones none (they need "
                        f"weights: use `rdfa-s6 extract`)")
    add_trust_remote_code_argument(parser)
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

    in_range(args.seed, "--seed", 0, 2**32 - 1, "a seed")
    backbone = getattr(args, "backbone", VIDEO_BACKBONE)
    if backbone != VIDEO_BACKBONE and not getattr(args, "video", False):
        raise UserError(f"--backbone {backbone}: only with --video (the feature demo has no videos)")
    if backbone != VIDEO_BACKBONE and not backbone.startswith(("hf:", "py:")):
        raise UserError(f"--backbone {backbone}: the demo takes {VIDEO_BACKBONE}, hf:FOLDER or py:FILE.py:FACTORY "
                        f"(a torchvision backbone needs weights: extract with `rdfa-s6 extract`)")
    from ..outputs import check_outputs
    from ..video.backbones import backbone_path

    source = backbone_path(backbone)
    if source is not None:  # --out is emptied: the backbone's folder or file must not be in it
        check_outputs([(args.out, "--out", "folder")], [(source, "--backbone")])
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder")
    with hold_folder(args.out):
        return _run(args)


@dataclass
class DemoData:
    """What a data stage made: the dataset folder, the video files (None for the feature demo), the report's
    description of the data and the config overrides of its training (``--quick``)."""

    root: Path
    videos: Optional[Path] = None
    description: str = "Synthetic data"
    overrides: List[str] = field(default_factory=list)


def _run(args: argparse.Namespace) -> int:
    """The one demo pipeline: data stage (features, or videos + ``extract``) -> train -> test -> report."""
    start = time.perf_counter()
    out = args.out
    _prepare_out(out)
    video = bool(getattr(args, "video", False))
    stages = 5 if video else 4
    data = _video_data(args, out) if video else _feature_data(args, out)
    data_seconds = time.perf_counter() - start
    trained = _train(args, out, data, stages)
    train_seconds = time.perf_counter() - start - data_seconds
    split = trained.config.data.test_split
    results, metrics = _test(args, out, trained, split, stages)
    print(f"[{stages}/{stages}] report")
    example = _example(out, args.precision, getattr(args, "trust_remote_code", False)) if video else None
    figures = _figures(out, results, metrics, split)
    write_viewer(out, split, metrics, videos_dir=data.videos)
    total = time.perf_counter() - start
    report = _report(metrics, trained.config.train.epochs, train_seconds, total, figures, args.quick, split)
    report = report.replace("Synthetic data", data.description, 1)
    if example is not None:
        report += (f"\nOne command from a video file to detections: `rdfa-s6 infer {out / 'run'} {example} "
                   f"--srt {out / 'example.srt'}`\n")
    _write_report(out, report)
    _summary(out, metrics, total, example)
    return 0


def _feature_data(args: argparse.Namespace, out: Path) -> DemoData:
    """Stage 1 of the feature demo: the synthetic feature dataset."""
    from ..data.synth import SynthSpec, generate

    print(f"[1/4] synthetic dataset -> {out / 'data'}")
    generate(out / "data", SynthSpec(seed=args.seed))
    return DemoData(out / "data", overrides=list(QUICK_OVERRIDES) if args.quick else [])


def _video_data(args: argparse.Namespace, out: Path) -> DemoData:
    """Stages 1-2 of the video demo: render synthetic MP4s, extract weight-free features, label them."""
    from ..video.extract import ExtractOptions, extract
    from ..video.synth import VideoSynthSpec, generate_videos, load_ground_truth
    from ._progress import video_bar

    start = time.perf_counter()
    spec = VideoSynthSpec(seed=args.seed, **(VIDEO_QUICK_SPEC if args.quick else {}))
    n_videos = spec.train_videos + spec.val_videos + spec.test_videos
    print(f"[1/5] rendering {n_videos} synthetic videos (MP4, {spec.size}x{spec.size}, {spec.fps} fps) -> "
          f"{out / 'videos'}")
    generate_videos(out / "videos", spec)
    backbone = getattr(args, "backbone", VIDEO_BACKBONE)
    kind = " (weight-free)" if backbone == VIDEO_BACKBONE else ""
    print(f"[2/5] extracting {backbone} features{kind} -> {out / 'data'}")
    summary = extract([out / "videos"], ExtractOptions(out=out / "data", backbone=backbone, workers=1,
                                                       device="cpu",
                                                       trust_remote_code=getattr(args, "trust_remote_code", False)),
                      progress=video_bar("extract", not args.no_progress))
    _label(out / "data" / "annotations.json", load_ground_truth(out / "videos"))
    seconds = time.perf_counter() - start
    rate = summary.video_seconds / max(summary.seconds, 1e-9)
    return DemoData(out / "data", out / "videos",
                    f"Synthetic videos ({n_videos} MP4 files, {backbone} features extracted in {seconds:.0f} s "
                    f"at {rate:.0f} video-s/s)", list(VIDEO_QUICK_OVERRIDES) if args.quick else [])


def _train(args: argparse.Namespace, out: Path, data: DemoData, stages: int) -> Any:
    """Train the ``demo`` preset on ``data`` into OUT/run (no validation: the demo tests the final model); returns
    the :class:`~rdfa_s6.train.loop.TrainResult`. Ctrl-C or SIGTERM saves a resume point, as in ``train``."""
    from ..config import load_config
    from ..train.loop import Trainer, TrainOptions
    from ..train.signals import stop_on_signals
    from ._progress import TrainBars

    cfg = load_config("demo", overrides=data.overrides)
    print(f"[{stages - 2}/{stages}] training the 'demo' preset for {cfg.train.epochs} epochs -> {out / 'run'}")
    trainer = Trainer(cfg, TrainOptions(out_dir=out / "run", data_root=data.root, validate=False))
    with stop_on_signals(trainer.request_stop):
        return trainer.run(progress=TrainBars(cfg.train.epochs, bars=not args.no_progress))


def _test(args: argparse.Namespace, out: Path, trained: Any, split: str, stages: int) -> Tuple[dict, dict]:
    """The one test stage: the final EMA model on ``split`` in ``--precision``; OUT/results.json, metrics.json."""
    from ..atomic import atomic_write_json
    from ..infer.runner import evaluate_split

    print(f"[{stages - 1}/{stages}] testing the final EMA model on the {split} split")
    results, metrics = evaluate_split(trained.model.eval(), trained.config, trained.data, split,
                                      precision=args.precision)
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "metrics.json", metrics)
    return results, metrics


def _write_report(out: Path, report: str) -> None:
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(out / "report.md", report.encode("utf-8"))


def _summary(out: Path, metrics: Dict[str, Any], total: float, example: Optional[Path]) -> None:
    from ..eval.report import format_table

    print(format_table(metrics))
    lines = [f"\ndone in {total:.0f} s. Report: {out / 'report.md'}", f"  metrics: {out / 'metrics.json'}",
             f"  detections: {out / 'results.json'}", f"  viewer: {out / 'report.html'} (open in a browser)",
             f"  model: {out / 'run' / 'final'}"]
    if example is not None:
        lines += [f"  videos: {out / 'videos'}", f"  subtitles of {example.name}: {out / 'example.srt'}"]
    else:
        lines += [f"  figures: {out / 'figures'}"]
    print("\n".join(lines))


def _label(ann_path: Path, ground_truth: dict) -> None:
    """Put the rendered ground truth (subsets, actions) into the annotation file ``extract`` wrote."""
    from ..atomic import atomic_write_json
    from ..formats.jsonfile import read_json

    ann, _ = read_json(ann_path, "annotation file")
    for vid, entry in ann["database"].items():
        entry["subset"] = ground_truth[vid]["subset"]
        entry["annotations"] = ground_truth[vid]["annotations"]
    atomic_write_json(ann_path, ann)


def _example(out: Path, precision: str, trust_remote_code: bool = False) -> Path:
    """Detections of the first test video straight from its MP4 (the run's recorded extraction, backbone in the
    recorded precision), as subtitles; the detector runs in ``precision``, as in the test stage."""
    from ..api import Detector
    from ..export import export_results
    from ..infer.results import results_document

    video = sorted((out / "videos").glob("synthvid_test_*.mp4"))[0]
    dets = Detector.from_pretrained(out / "run", precision=precision).predict_video(
        video, trust_remote_code=trust_remote_code)
    export_results(results_document({video.stem: dets[:10]}), "srt", out / "example.srt")  # the 10 best
    return video


def write_viewer(out: Path, split: str, metrics: Dict[str, Any], videos_dir: Optional[Path] = None) -> Path:
    """OUT/report.html: the interactive viewer of the test detections with their ground truth and evaluation
    (the numbers of metrics.json: same evaluator, thresholds and ground-truth policy); ``videos_dir``: video
    files to link."""
    from ..report import write_report

    return write_report(out / "results.json", out / "report.html", gt=out / "data" / "annotations.json",
                        subset=split, tiou_thresholds=metrics["tiou_thresholds"], gt_policy=metrics["gt_policy"],
                        videos_dir=videos_dir,
                        title="rdfa-s6 demo: test detections").path


def _figures(out: Path, results: Dict[str, Any], metrics: Dict[str, Any], split: str) -> List[Path]:
    """PNG figures (timelines of three videos of ``split``); skipped with a note when matplotlib is not
    installed."""
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
    test_videos = [v for v, video in annotations.videos.items() if video.subset.lower() == split.lower()][:3]
    for vid in test_videos:
        video = annotations.videos[vid]
        gt = [(e.start, e.end, e.label) for e in video.events]
        preds = [(d["segment"][0], d["segment"][1], d["label"], d["score"]) for d in results["results"].get(vid, [])]
        files.append(plot_timeline(vid, gt, preds, video.duration, fig_dir / f"timeline_{vid}.png"))
    return [Path(f) for f in files]


def _report(metrics: Dict[str, Any], epochs: int, train_seconds: float, total: float, figures: List[Path],
            quick: bool, split: str = "test") -> str:
    from ..eval.report import computed_with_text

    thr = metrics["tiou_thresholds"]
    lines = ["# rdfa-s6 demo report", "",
             f"Synthetic data ({'quick' if quick else 'full'} demo), `demo` preset, {epochs} epochs; final EMA model "
             f"tested on the {split} split. Training {train_seconds:.0f} s, total {total:.0f} s.", "",
             "| tIoU | " + " | ".join(f"{t:.2f}" for t in thr) + " | Avg |",
             "|---" * (len(thr) + 2) + "|",
             "| mAP (%) | " + " | ".join(f"{100 * v:.2f}" for v in metrics["mAP"])
             + f" | {100 * metrics['average_mAP']:.2f} |", "", *([computed_with_text(metrics).capitalize() + ".", ""]
                                                               if "computed_with" in metrics else []),
             "| class | AP (%) averaged over tIoU |", "|---|---|"]
    for label, aps in metrics["per_class_AP"].items():
        lines.append(f"| {label} | {100 * sum(aps) / len(aps):.2f} |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    return "\n".join(lines) + "\n"
