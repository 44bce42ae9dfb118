"""``rdfa-s6 view``: an interactive HTML page of detections (and ground truth), one self-contained file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..messages import plural, printable, shown
from ._common import MAX_TIOU, HelpFormatter, in_range
from .evaluate import DEFAULT_TIOU


def register(subparsers) -> argparse.ArgumentParser:
    from ..eval.groundtruth import EVALUATE_GT_POLICY, GT_POLICIES

    parser = subparsers.add_parser(
        "view",
        help="an interactive HTML viewer of detections (one file, opens offline in any browser)",
        description="Write one self-contained HTML file (scripts, styles and data inlined; nothing fetched from "
        "a network): an index of the videos (sortable by name, number of detections, per-video AP), a timeline "
        "per video with one lane per class (ground truth above detections, opacity = score), a live score "
        "threshold, hover details (with the tIoU of the best-matching ground-truth event), zoom (mouse wheel) "
        "and pan (drag). With --gt it also shows the numbers of `rdfa-s6 evaluate` (mAP per tIoU, per-class AP, "
        "false-positive breakdown). With --videos, each video file found there is linked by relative path (not "
        "embedded) and played above its timeline: clicking a detection seeks to its start. A time beyond 1e12 s "
        "is refused (times are stored as integer milliseconds); scores beyond +-1e9 are shown as +-1e9, in "
        "their order. --out may not be --pred or --gt.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--pred", required=True, metavar="RESULTS.json",
                        help='detections, e.g. from `rdfa-s6 infer`: '
                        '{"results": {video: [{"segment", "label", "score"}]}}')
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT.html", help="HTML file to write")
    parser.add_argument("--gt", default=None, metavar="ANNOTATIONS.json",
                        help="ground-truth annotations: show the ground truth and the evaluation")
    parser.add_argument("--subset", default="test", help="split of the annotations (with --gt; case-insensitive)")
    parser.add_argument("--videos", default=None, type=Path, metavar="DIR",
                        help="folder of the video files, named <video_id>.mp4 (or .webm, .m4v, .mov, .mkv, .ogv, "
                        ".avi; also one sub-folder down); linked relative to --out, so keep both where they are")
    parser.add_argument("--threshold", type=float, default=0.1, help="initial score threshold of the page")
    parser.add_argument("--title", default=None, help="page title (default: the results file name)")
    parser.add_argument("--tiou", default=DEFAULT_TIOU, metavar="START:STOP:STEP|T1,T2,...",
                        help=f"tIoU thresholds: of the evaluation, as in `rdfa-s6 evaluate` (each in (0, 1], "
                        f"at most {MAX_TIOU})")
    parser.add_argument("--gt-policy", default=EVALUATE_GT_POLICY, choices=GT_POLICIES,
                        help="ground-truth handling, as in `rdfa-s6 evaluate`")
    parser.add_argument("--error-tiou", type=float, default=0.5,
                        help="tIoU threshold of the false-positive breakdown")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..outputs import check_outputs
    from ..report import write_report
    from .evaluate import parse_tiou

    in_range(args.threshold, "--threshold", 0.0, 1.0, "a score")
    in_range(args.error_tiou, "--error-tiou", 0.0, 1.0, "a tIoU", lo_open=True)
    if args.videos is not None and not args.videos.is_dir():
        raise UserError(f"--videos {shown(args.videos)}: not a folder")
    check_outputs([(args.out, "--out", "file")], inputs=[(args.pred, "--pred"), (args.gt, "--gt")])
    thresholds = parse_tiou(args.tiou) if args.gt else None
    info = write_report(args.pred, args.out, gt=args.gt, subset=args.subset, tiou_thresholds=thresholds,
                        gt_policy=args.gt_policy, error_tiou=args.error_tiou, videos_dir=args.videos,
                        title=args.title, threshold=args.threshold)
    linked = f", {plural(info.num_linked, 'video file')} linked" if args.videos is not None else ""
    print(f"{plural(info.num_detections, 'detection')} of {plural(info.num_videos, 'video')}{linked}: "
          f"{printable(info.path)} "
          f"({info.size / 1024:.0f} KiB)")
    if info.metrics is not None:
        from ..eval import format_table

        print(format_table(info.metrics))
    return 0
