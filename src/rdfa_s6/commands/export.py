"""``rdfa-s6 export``: detections for annotation tools (CSV, SRT, WebVTT, ELAN, Label Studio, ActivityNet)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from ..messages import shown
from ._common import GRID_FPS, HelpFormatter, deprecated, in_range

FORMAT_NAMES = ["csv", "srt", "vtt", "eaf", "labelstudio", "activitynet"]


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="write detections for annotation tools: CSV, SRT, WebVTT, ELAN, Label Studio, ActivityNet JSON",
        description="Convert a results file (ActivityNet results JSON, e.g. from `rdfa-s6 infer`) so that the "
        "detections can be checked and corrected in an annotation tool. Times in seconds (milliseconds in SRT, "
        "WebVTT and ELAN; frames in Label Studio), labels as class names. csv: one row per detection "
        "(video_id,start_s,end_s,label,score; a video id or label that starts with =, +, -, @, a tab or a carriage "
        "return gets a leading ' so that spreadsheets do not run it as a formula, unless --raw-csv). srt, vtt: "
        "one cue per detection (label, then score). eaf: ELAN, "
        "one tier per class (further tiers '<class> 2', ... where detections of a class overlap, which an ELAN "
        "tier cannot hold). labelstudio: one task per video with the detections as TimelineLabels predictions "
        "(--model-version; or as annotations with --as annotations; frame ranges, so --fps is needed), plus OUT's "
        "labeling configuration as <OUT stem>.label_config.xml. "
        "activitynet: the results JSON of the accepted detections. srt, vtt and eaf hold one video: --out "
        "ending with .srt/.vtt/.eaf writes one file (one video in the results, or --video-ids ID), any other --out "
        "is a folder that gets <video_id>.<ext> per video (a video id that is not a plain file name gets a sanitised "
        "name plus 8 hex digits of its hash, so that distinct ids never share a file). No output may be the "
        "results file itself.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("results", metavar="RESULTS.json",
                        help='detections: {"results": {video: [{"segment", "label", "score"}]}}')
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES, help="output format")
    parser.add_argument("--out", required=True, type=Path, metavar="PATH", help="file (or folder, see above) to write")
    parser.add_argument("--min-score", type=float, default=0.0, help="keep the detections scored at least this")
    parser.add_argument("--video-ids", nargs="+", default=None, metavar="ID",
                        help="video ids: only these videos (default: all)")
    deprecated(parser, "--video", "--video-ids", dest="video_ids", nargs="+")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (labelstudio: the Video tag's frameRate; required there)")
    parser.add_argument("--video-url", default=None, metavar="TEMPLATE",
                        help="where the video is, with {video_id}: the task's data.video for labelstudio "
                        "(default {video_id}.mp4), the media file of an eaf (default none), e.g. "
                        "'/data/local-files/?d=videos/{video_id}.mp4'")
    parser.add_argument("--as", dest="write_as", choices=["predictions", "annotations"], default="predictions",
                        help="labelstudio: the detections as each task's predictions (pre-annotations that an "
                        "annotator corrects and submits, with a score per region and per prediction) or as its "
                        "annotations (finished labels, e.g. to review an annotation file)")
    parser.add_argument("--model-version", default="rdfa-s6", metavar="NAME",
                        help="labelstudio predictions: the model_version Label Studio shows and filters by")
    parser.add_argument("--raw-csv", action="store_true",
                        help="CSV cells as they are: video ids and labels written unchanged, for programs (by "
                        "default a cell that starts with =, +, -, @, a tab or a carriage return gets a leading ', "
                        "against spreadsheet formula injection)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..export import Options, export_results, formats
    from ..export.text import check_video_url
    from ..outputs import check_outputs

    # any finite number: results files of other tools may score outside [0, 1]
    in_range(args.min_score, "--min-score", -sys.float_info.max, sys.float_info.max, "a finite score")
    in_range(args.fps, "--fps", *GRID_FPS, "frames per second")
    if args.video_url is not None:
        check_video_url(args.video_url)
    if args.format == "labelstudio" and args.fps is None:
        raise UserError("--format labelstudio needs --fps: Label Studio's timeline counts frames (use the frameRate "
                        "of the videos)")
    if args.format != "labelstudio" and (args.write_as != "predictions" or args.model_version != "rdfa-s6"):
        raise UserError(f"--as and --model-version: only for --format labelstudio, not --format {args.format}")
    if not args.model_version.strip():
        raise UserError("--model-version: expected a name, e.g. rdfa-s6-v2")
    spec = formats()[args.format]
    kind = "file" if not spec.per_video or args.out.suffix.lower() == spec.extension else "folder"
    guard = check_outputs([(args.out, "--out", kind)], inputs=[(args.results, "RESULTS.json")])
    written = export_results(args.results, args.format, args.out, min_score=args.min_score, videos=args.video_ids,
                             options=Options(fps=args.fps, video_url=args.video_url, raw_csv=args.raw_csv,
                                             write_as=args.write_as, model_version=args.model_version),
                             guard=guard)
    if len(written) <= 3:
        print(f"{args.format}: " + ", ".join(shown(p) for p in written))
    else:
        print(f"{args.format}: {len(written)} files in {shown(args.out)}")
    return 0
