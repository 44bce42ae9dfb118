"""``rdfa-s6 visualize``: PNG plots of detections against the ground truth, of their evaluation and of a
training run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DataError, MetricsError, UserError
from ..messages import listed, plural, printable, shown
from ._common import DEFAULT_TIOU, MAX_TIOU, HelpFormatter, deprecated, in_range, parse_tiou


def register(subparsers) -> argparse.ArgumentParser:
    from ..eval.groundtruth import EVALUATE_GT_POLICY, GT_POLICIES

    parser = subparsers.add_parser(
        "visualize",
        help="plot detections, their evaluation and a training run as PNG files",
        description="Draw PNG plots into --out: a timeline per video (ground truth and the top detections of "
        "each class, opacity = score), precision-recall curves per class at one tIoU, per-class AP averaged "
        "over the tIoU thresholds, the false-positive breakdown, and the training curve of a run folder. "
        "Without --gt (e.g. on `infer` output): timelines of the detections alone (and the --metrics and --run "
        "plots when given). Needs matplotlib (pip install 'rdfa-s6[viz]').",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--gt", default=None, metavar="ANNOTATIONS.json",
                        help='ground-truth annotations: {"database": {video: {"subset", "duration", "annotations"}}} '
                        "(without it: detections only)")
    parser.add_argument("--pred", required=True, metavar="RESULTS.json",
                        help='detections: {"results": {video: [{"segment", "label", "score"}]}}')
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the PNG files into (created)")
    parser.add_argument("--subset", default="test", help="split of the annotations to draw (case-insensitive)")
    parser.add_argument("--video-ids", nargs="+", default=None, metavar="ID",
                        help="video ids: the videos to draw timelines for (default: the first --num-videos videos of "
                        "the split that have ground-truth events; without --gt, of the results file)")
    deprecated(parser, "--videos", "--video-ids", dest="video_ids", nargs="+")
    parser.add_argument("--num-videos", type=int, default=5,
                        help="number of timelines drawn when --video-ids is not given")
    parser.add_argument("--top-k", type=int, default=3, help="detections drawn per class in a timeline")
    parser.add_argument("--error-tiou", type=float, default=0.5,
                        help="tIoU threshold of the false-positive breakdown (when the metrics are computed here) and "
                        "of the precision-recall curves")
    parser.add_argument("--metrics", metavar="METRICS.json", default=None,
                        help="metrics written by 'rdfa-s6 evaluate --json' for the AP and error plots "
                        "(default: evaluate --pred against --gt here)")
    parser.add_argument("--tiou", default=DEFAULT_TIOU, metavar="START:STOP:STEP|T1,T2,...",
                        help="tIoU thresholds: of the evaluation computed when --metrics is not given, as in "
                        f"`rdfa-s6 evaluate` (each in (0, 1], at most {MAX_TIOU})")
    deprecated(parser, "--eval-tiou", "--tiou", dest="tiou")
    parser.add_argument("--gt-policy", default=EVALUATE_GT_POLICY, choices=GT_POLICIES,
                        help="ground-truth handling, as in 'rdfa-s6 evaluate'")
    parser.add_argument("--run", metavar="RUN_DIR", default=None,
                        help="training run folder (or its metrics.jsonl): also plot its training curve")
    parser.set_defaults(func=run)
    return parser


def _timeline_paths(out: Path, chosen: Sequence[str]) -> Dict[str, Path]:
    """``timeline_<stem>.png`` per video, the stems from :func:`rdfa_s6.filenames.file_stems` (distinct ids,
    distinct files)."""
    from ..filenames import file_stems

    stems = file_stems(chosen)
    return {vid: out / f"timeline_{stems[vid]}.png" for vid in chosen}


def _guard(args: argparse.Namespace, out: Path):
    """The --out folder and every file written into it may not be an input (--pred, --gt, --metrics, --run)."""
    from ..outputs import check_outputs

    run: Optional[Path] = None
    if args.run:
        run = Path(args.run) / "metrics.jsonl" if Path(args.run).is_dir() else Path(args.run)
    return check_outputs([(out, "--out", "folder")], inputs=[(args.pred, "--pred"), (args.gt, "--gt"),
                                                             (args.metrics, "--metrics"), (run, "--run")])


def _check_all(guard, paths: Sequence[Path]) -> None:
    for path in paths:
        guard.check(path, "--out")


def _check_options(args: argparse.Namespace) -> None:
    in_range(args.num_videos, "--num-videos", 1, 10_000, "a number of videos")
    in_range(args.top_k, "--top-k", 1, 1000, "a number of detections")
    in_range(args.error_tiou, "--error-tiou", 0.0, 1.0, "a tIoU", lo_open=True)
    if args.tiou != DEFAULT_TIOU and ":" not in args.tiou and "," not in args.tiou:
        import sys

        print("rdfa-s6 visualize: note: --tiou names the evaluation's thresholds, as in evaluate and view; the "
              "precision-recall curves' threshold is --error-tiou (it was --tiou before)", file=sys.stderr)


def _training_metrics(run_dir: str) -> Path:
    path = Path(run_dir)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"--run {shown(run_dir)}: no metrics.jsonl found (expected a training run folder)")
    return path


def _metrics_plot(plot, metrics, out_png: Path, source) -> Path:
    """``plot(metrics, out_png)``; its errors about a malformed metrics dict name the --metrics file."""
    try:
        return plot(metrics, out_png)
    except MetricsError as err:  # the fields, not the message text, say what is wrong and where
        raise DataError(f"{'--metrics ' + shown(source) if source else 'metrics'}: {err.detail}") from None


def run(args: argparse.Namespace) -> int:
    from ..eval import align_predictions, evaluate, load_ground_truth, load_predictions
    from ..eval.predictions import check_usable
    from ..formats.annotations import video_durations
    from ..viz import (
        load_metrics,
        plot_class_ap,
        plot_error_breakdown,
        plot_pr_curves,
        plot_timeline,
        plot_training_curve,
    )
    from ..viz.mpl import pyplot

    _check_options(args)
    pyplot()  # fail early, before any work, when matplotlib is missing
    out = Path(args.out)
    guard = _guard(args, out)
    run_metrics = _training_metrics(args.run) if args.run else None
    metrics = load_metrics(args.metrics) if args.metrics else None
    thresholds = parse_tiou(args.tiou, "--tiou") if metrics is None else None

    if args.gt is None:
        return _print_written(_detections_only(args, out, metrics, run_metrics, guard), out)
    gt = load_ground_truth(args.gt, subset=args.subset, gt_policy=args.gt_policy)
    if gt.num_gt == 0:
        raise DataError(f"ground truth {shown(gt.source)}: subset '{shown(args.subset)}' has videos but no events")
    preds = load_predictions(args.pred)
    check_usable(preds, gt, args.subset)
    if metrics is None:
        # evaluate first: it logs the alignment warnings (unknown videos or labels) once, the plots' own
        # alignment below stays quiet
        metrics = evaluate(args.pred, args.gt, subset=args.subset, tiou_thresholds=thresholds,
                           gt_policy=args.gt_policy, error_tiou=args.error_tiou, strict=True)
        aligned, _warnings = align_predictions(preds, gt, log_warnings=False)
    else:
        aligned, _warnings = align_predictions(preds, gt)
    durations = video_durations(args.gt)

    vindex = {v: i for i, v in enumerate(gt.videos)}
    if args.video_ids:
        missing = [v for v in args.video_ids if v not in vindex]
        if missing:
            raise UserError(f"--video-ids: {listed(missing)} "
                            f"not in subset '{shown(args.subset)}' of {shown(gt.source)}")
        chosen = list(dict.fromkeys(args.video_ids))
    else:
        with_gt = set(gt.video.tolist())
        chosen = [v for i, v in enumerate(gt.videos) if i in with_gt][: args.num_videos]

    id_to_name = {lid: lab for lab, lid in gt.label_ids.items()}
    pred_by_video: Dict[str, List[Tuple[float, float, str, float]]] = {}
    wanted = set(chosen)
    for k in range(len(preds)):
        vid = preds.videos[int(preds.video[k])]
        if vid not in wanted:
            continue
        lab = preds.labels[k]
        name = id_to_name.get(lab, str(lab)) if isinstance(lab, int) else lab
        pred_by_video.setdefault(vid, []).append(
            (float(preds.start[k]), float(preds.end[k]), name, float(preds.score[k])))

    timelines = _timeline_paths(out, chosen)
    pr_png = out / f"pr_curves_tiou{args.error_tiou:.2f}.png"
    _check_all(guard, list(timelines.values()) + [pr_png, out / "class_ap.png", out / "error_breakdown.png"]
               + [out / "training_curve.png"] * (run_metrics is not None))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {shown(out)}: cannot create the folder: {shown(err)}") from None
    written: List[Path] = []
    for vid in chosen:
        rows = (gt.video == vindex[vid]).nonzero()[0]
        segments = [(float(gt.start[i]), float(gt.end[i]), gt.labels[int(gt.label[i])]) for i in rows]
        written.append(plot_timeline(vid, segments, pred_by_video.get(vid, []), durations.get(vid),
                                     timelines[vid], top_k_per_class=args.top_k, class_names=gt.labels))
    written.append(plot_pr_curves(gt, aligned, pr_png, tiou=args.error_tiou))
    written.append(_metrics_plot(plot_class_ap, metrics, out / "class_ap.png", args.metrics))
    written.append(_metrics_plot(plot_error_breakdown, metrics, out / "error_breakdown.png", args.metrics))
    if run_metrics is not None:
        written.append(plot_training_curve(run_metrics, out / "training_curve.png"))

    return _print_written(written, out)


def _print_written(written: List[Path], out: Path) -> int:
    print(f"{plural(len(written), 'file')} written to {printable(out)}:")
    for path in written:
        print(f"  {printable(path)}")
    return 0


def _detections_only(args: argparse.Namespace, out: Path, metrics, run_metrics, guard) -> List[Path]:
    """Without ground truth: timelines of the detections alone, plus the --metrics and --run plots."""
    from ..eval import load_predictions
    from ..viz import plot_class_ap, plot_error_breakdown, plot_timeline, plot_training_curve

    preds = load_predictions(args.pred)
    if not preds.videos:
        raise DataError(f"predictions {shown(preds.source)}: no videos")
    if args.video_ids:
        missing = [v for v in args.video_ids if v not in preds.videos]
        if missing:
            raise UserError(f"--video-ids: {listed(missing)} "
                            f"not in {shown(preds.source)}")
        chosen = list(dict.fromkeys(args.video_ids))
    else:
        chosen = preds.videos[: args.num_videos]
    by_video: Dict[str, List[Tuple[float, float, str, float]]] = {v: [] for v in chosen}
    for k in range(len(preds)):
        vid = preds.videos[int(preds.video[k])]
        if vid in by_video:
            by_video[vid].append((float(preds.start[k]), float(preds.end[k]), str(preds.labels[k]),
                                  float(preds.score[k])))
    timelines = _timeline_paths(out, chosen)
    _check_all(guard, list(timelines.values())
               + [out / "class_ap.png", out / "error_breakdown.png"] * (metrics is not None)
               + [out / "training_curve.png"] * (run_metrics is not None))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {shown(out)}: cannot create the folder: {shown(err)}") from None
    names = sorted({str(lab) for lab in preds.labels})
    written: List[Path] = []
    for vid in chosen:
        written.append(plot_timeline(vid, None, by_video[vid], None, timelines[vid],
                                     top_k_per_class=args.top_k, class_names=names))
    if metrics is not None:
        written.append(_metrics_plot(plot_class_ap, metrics, out / "class_ap.png", args.metrics))
        written.append(_metrics_plot(plot_error_breakdown, metrics, out / "error_breakdown.png", args.metrics))
    if run_metrics is not None:
        written.append(plot_training_curve(run_metrics, out / "training_curve.png"))
    return written
