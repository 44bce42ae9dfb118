"""``rdfa-s6 evaluate``: mAP of a detection results file with the ActivityNet protocol."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from ..messages import plural, printable, shown
from ._common import DEFAULT_TIOU, MAX_TIOU, HelpFormatter, in_range, output_file, parse_tiou


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically; the folder must exist."""
    from ..atomic import atomic_write_json

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"--json {path}: folder {folder} does not exist")
    atomic_write_json(path, data, indent=1)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="mAP of a detection results file at tIoU thresholds (ActivityNet protocol)",
        description="Evaluate temporal action detections (ActivityNet results JSON) against annotations: mAP "
        "per tIoU threshold and their average, per-class AP, average recall and a false-positive breakdown. "
        "The numbers match ActivityNet's Evaluation/eval_detection.py, which also scores reversed segments "
        "(end < start) as they are. Detections of videos outside the subset count as false positives and those "
        "with unknown labels are ignored, each with a warning; when none of the detections can match (no "
        "video of the subset, or no known label) it is an error.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--pred", required=True, metavar="RESULTS.json",
                        help='detections: {"results": {video: [{"segment", "label", "score"}]}}')
    parser.add_argument("--gt", required=True, metavar="ANNOTATIONS.json",
                        help='ground-truth annotations: {"database": {video: {"subset", "annotations"}}}')
    parser.add_argument("--subset", default="test", help="split of the annotations to evaluate on (case-insensitive)")
    parser.add_argument("--tiou", default=DEFAULT_TIOU, metavar="START:STOP:STEP|T1,T2,...",
                        help="tIoU thresholds: an inclusive range or a comma-separated list "
                        f"(ActivityNet: 0.5:0.95:0.05); each in (0, 1], at most {MAX_TIOU}")
    from ..eval.groundtruth import EVALUATE_GT_POLICY, GT_POLICIES

    parser.add_argument("--gt-policy", default=EVALUATE_GT_POLICY, choices=GT_POLICIES,
                        help="ground-truth handling: 'official' keeps every event, as ActivityNet's "
                        "eval_detection.py does; 'actionformer' drops zero-length events and same-label duplicates "
                        "(both boundaries within 1e-3 s), as the official RDFA-S6 and ActionFormer metric does. "
                        "'train' (validation), 'test' and 'demo' use the config key eval.gt_policy instead, "
                        "'actionformer' in every preset")
    parser.add_argument("--error-tiou", type=float, default=0.5,
                        help="tIoU threshold of the false-positive breakdown")
    parser.add_argument("--json", type=Path, metavar="METRICS.json", default=None,
                        help="also write the metrics to this JSON file (every metric; written atomically)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..eval import evaluate, format_table

    in_range(args.error_tiou, "--error-tiou", 0.0, 1.0, "a tIoU", lo_open=True)
    output_file(args.json, "--json", folder_must_exist=True, inputs=[(args.pred, "--pred"), (args.gt, "--gt")])
    metrics = evaluate(args.pred, args.gt, subset=args.subset, tiou_thresholds=parse_tiou(args.tiou),
                       gt_policy=args.gt_policy, error_tiou=args.error_tiou, strict=True)
    rec = metrics["recall"]
    print(f"{plural(metrics['num_predictions'], 'prediction')}, {plural(metrics['num_gt'], 'ground-truth event')} "
          f"in {plural(metrics['num_videos'], 'video')} of subset {shown(args.subset)!r} (gt policy {args.gt_policy})")
    print(format_table(metrics))
    print(f"AR@AN AUC {100 * rec['AUC']:.2f}%, R@1x (AN={rec['AN@1x']}) {100 * rec['R@1x']:.2f}%, "
          f"R@5x (AN={rec['AN@5x']}) {100 * rec['R@5x']:.2f}%")
    print(metrics["errors"]["summary"])
    if args.json:
        write_json_atomic(args.json, metrics)
        print(f"metrics written to {printable(args.json)}")
    return 0
