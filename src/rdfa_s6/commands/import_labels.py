"""``rdfa-s6 import``: labels from annotation tools (Label Studio, ELAN, CSV, ActivityNet JSON) into the
annotation JSON that training reads (docs/import.md). The module cannot be called ``import``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from ..messages import listed, plural, printable, shown
from ._common import HelpFormatter, check_feature_grid, in_range

#: the most per-video lines the summary prints (the totals always count every change)
MAX_VIDEO_LINES = 50


def register(subparsers) -> argparse.ArgumentParser:
    from ..ingest import FROM_NAMES

    parser = subparsers.add_parser(
        "import",
        help="read labels from Label Studio, ELAN, CSV or ActivityNet JSON into an annotations.json for training",
        description="Turn labelled segments made in an annotation tool into the annotation JSON training reads "
        "({'database': {video: {subset, duration, fps, annotations: [{segment, label, label_id}]}}}); docs/import.md "
        "explains every rule. labelstudio: Label Studio's JSON, JSON-MIN or CSV export of a Video + TimelineLabels "
        "project (a task's latest annotation that was not cancelled; a file without annotations, such as the one "
        "`export --format labelstudio` writes, is read from its predictions), frame numbers read at --fps or the "
        "video's own rate. elan: .eaf files or folders of them, one tier per class (or --tier NAME: its annotation "
        "values are the classes). csv: a header and video_id,start,end,label rows, seconds (frames with --fps). "
        "activitynet: annotation JSON files, to merge or split again. Video ids: the media file name without "
        "extension (Label Studio's upload prefix '<8 hex>-' removed under /data/upload/), as `extract` names the "
        "feature files. Durations and frame rates: extraction.json (--data-root or --extraction), else the video in "
        "--videos, else the feature file's length. Segments: reversed ones are swapped, zero-length ones and those "
        "outside the video dropped, those partly outside clipped to [0, duration], exact duplicates kept once, "
        "overlaps of one class kept; every change is counted in the summary. Class ids: --labels, else the ids of "
        "--into and of ActivityNet sources are kept and new classes numbered after them in name order (0, 1, ... "
        "by name when none is known). Subsets: --subset, or --split-fractions by video with every class in the "
        "first (training) subset, or the source's own (activitynet), else 'training'.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE",
                        help="files to read (elan: .eaf files or folders of them)")
    parser.add_argument("--from", dest="from_format", required=True, choices=FROM_NAMES, metavar="FORMAT",
                        help=f"format of the sources: {', '.join(FROM_NAMES)}")
    parser.add_argument("--out", required=True, type=Path, help="annotation JSON to write (never a source or --into)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos: the rate frame numbers are read at (Label Studio's "
                        "Video frameRate; with --from csv the times are then frames), and of the feature grid")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder: DIR/extraction.json (durations, frame rates) and DIR/features/ "
                        "(durations from the feature length)")
    parser.add_argument("--extraction", type=Path, default=None, metavar="FILE",
                        help="extraction.json of `rdfa-s6 extract` (default: the one in --data-root)")
    parser.add_argument("--videos", type=Path, default=None, metavar="DIR",
                        help="folder of the video files, named <video_id>.mp4 (or another video extension): "
                        "durations and frame rates of the videos extraction.json does not list")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between consecutive rows of the feature files (default: extraction.json's)")
    parser.add_argument("--window", type=float, default=None,
                        help="frames per feature clip (default: extraction.json's)")
    parser.add_argument("--tier", default=None, metavar="NAME",
                        help="elan: read only this tier; its annotation values are the classes")
    parser.add_argument("--subset", default=None, help="subset of every imported video (e.g. training)")
    parser.add_argument("--split-fractions", default=None, metavar="NAME=F,...",
                        help="split the imported videos into subsets by these fractions, e.g. "
                        "training=0.8,validation=0.1,test=0.1; the first is the training subset and gets a video of "
                        "every class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (--split-fractions)")
    parser.add_argument("--into", type=Path, default=None, metavar="FILE",
                        help="an annotation JSON to add the imported videos to (a video it holds is refused)")
    parser.add_argument("--labels", type=Path, default=None, metavar="FILE",
                        help="the class ids: one class name per line (ids 0, 1, ... in order) or a JSON object "
                        "{name: id}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..ingest import ReadOptions
    from ..ingest.build import import_labels
    from ..ingest.media import MediaSources
    from ..ingest.split import parse_fractions
    from ..outputs import check_outputs
    from ._progress import video_bar

    check_feature_grid(args, window_may_be_zero=False)
    in_range(args.seed, "--seed", 0, 2**32 - 1, "a seed")
    if args.subset is not None and args.split_fractions is not None:
        raise UserError("--subset and --split-fractions: give one (one subset for every video, or a split)")
    if args.subset is not None and not args.subset.strip():
        raise UserError("--subset: expected a subset name such as training")
    if args.tier is not None and args.from_format != "elan":
        raise UserError(f"--tier: only for --from elan, not --from {args.from_format}")
    fractions = parse_fractions(args.split_fractions) if args.split_fractions is not None else None
    extraction = args.extraction
    if extraction is None and args.data_root is not None and (args.data_root / "extraction.json").is_file():
        extraction = args.data_root / "extraction.json"
    inputs = [(p, "SOURCE") for p in args.sources] + [(args.into, "--into"), (args.labels, "--labels"),
                                                      (extraction, "--extraction")]
    check_outputs([(args.out, "--out", "file")], inputs=[(p, o) for p, o in inputs if p is not None])
    media = MediaSources(extraction=extraction, videos_dir=args.videos,
                         features_dir=args.data_root / "features" if args.data_root is not None else None,
                         fps=args.fps, stride=args.stride, window=args.window)
    options = ReadOptions(tier=args.tier, frames=args.from_format == "csv" and args.fps is not None)
    doc, report = import_labels(args.sources, args.from_format, media, options, subset=args.subset,
                                fractions=fractions, seed=args.seed, into=args.into, labels=args.labels,
                                progress=video_bar("import", not args.no_progress))
    from ..atomic import atomic_write_bytes
    from ..export.text import json_bytes

    atomic_write_bytes(args.out, json_bytes(doc))  # class names as written (UTF-8), finite numbers only
    for line in summary_lines(report, args.out):
        print(line)
    return 0


def summary_lines(report, out: Path) -> List[str]:
    """The summary ``import`` prints: totals, subsets, classes, then every change per video."""
    lines = [f"import: {plural(report.videos, 'video')}, {plural(report.segments, 'segment')}, "
             f"{plural(len(report.classes), 'class', 'classes')} -> {printable(out)}"
             + (f" ({plural(report.merged, 'video')} of --into kept)" if report.merged else "")]
    if report.subsets:
        lines.append("subsets: " + ", ".join(f"{shown(k)} {v}" for k, v in sorted(report.subsets.items())))
    lines.append("class ids: " + ", ".join(f"{i} {shown(n)}" for n, i in report.classes.items()))
    totals: dict = {}
    for counts in report.changes.values():
        for reason, n in counts.items():
            totals[reason] = totals.get(reason, 0) + n
    if totals:
        lines.append(f"segments changed or left out, in {plural(len(report.changes), 'video')}: "
                     + "; ".join(f"{reason}: {n}" for reason, n in totals.items()))
        for k, (vid, counts) in enumerate(report.changes.items()):
            if k == MAX_VIDEO_LINES:
                lines.append(f"  ... and {plural(len(report.changes) - k, 'more video')} with changes (counted above)")
                break
            lines.append(f"  video {shown(vid)}: " + "; ".join(f"{reason}: {n}" for reason, n in counts.items()))
    else:
        lines.append("changes: none (every segment kept as read)")
    if report.left_out:
        lines.append(f"left out: {plural(len(report.left_out), 'video')} not imported: "
                     + "; ".join(f"{shown(v)} ({why})" for v, why in list(report.left_out.items())[:MAX_VIDEO_LINES])
                     + (" ..." if len(report.left_out) > MAX_VIDEO_LINES else ""))
    if report.no_duration:
        lines.append(f"no duration: {plural(len(report.no_duration), 'video')} (segments not clipped at the end; "
                     f"give --data-root, --extraction or --videos): {listed(report.no_duration)}")
    if report.from_predictions:
        lines.append(f"from predictions: {plural(len(report.from_predictions), 'video')} read from Label Studio "
                     f"predictions (the file holds no annotation): check them before training")
    return lines
