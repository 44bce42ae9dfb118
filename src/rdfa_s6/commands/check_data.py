"""``rdfa-s6 check-data PRESET --data-root DIR``: validate a dataset before training.

Exit status: 0 when ``train`` and ``test`` can run (warnings may be listed), 2 when an error was found. The
report (a summary table per split, then the findings) goes to stdout; on errors one line on stderr names the
count and the first error (file, video, field, what was expected). See :mod:`rdfa_s6.data.checks` for what
is an error and what is a warning.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..messages import one_line
from ._common import HelpFormatter, in_range


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-data",
        help="validate a dataset (annotations and features) against a preset",
        description="Read the annotations and every feature file of the preset's train, validation and test "
        "splits and report them in a table. Errors (exit status 2): missing or unreadable feature files (wrong "
        "rank, dtype or C, NaN/Inf, zero steps), videos without fps, class ids beyond data.num_classes, empty "
        "splits, mixed feature dimensions. Warnings (exit status 0): feature lengths that disagree with the "
        "duration and fps (clips of data.num_frames every data.feat_stride frames), segments that end after the "
        "video's duration (kept for evaluation), segments that start after the last feature step (dropped in "
        "training) and zero-length segments. When the data root holds an extraction.json (rdfa-s6 extract), every "
        "feature file it records is compared with its recorded sha256, shape and dtype: a missing or changed file "
        "is an error (--no-verify skips this; an extraction.json written before checksums were recorded is not "
        "verified, and the report says so). Then how the config fits the data: video lengths against "
        "data.max_seq_len (cropped or padded in training), segments no pyramid level can assign (lost for "
        "training) and why, segments per class and split, and one line per problem (`fit: ...`) naming the config "
        "key and the value `rdfa-s6 init` would pick.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("preset", help="preset name (see docs/presets.md) or path to a YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder: DIR/annotations.json and DIR/features/, or the preset's "
                        "data.annotation_file and data.feature_dir taken under DIR when relative")
    parser.add_argument("--show", type=int, default=5, help="list at most this many videos per finding")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not compare the feature files with the sha256 and shape that the data root's "
                        "extraction.json records (hashing reads every file: slow on a large set)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def _listing(title: str, items: List[str], show: int) -> List[str]:
    if not items:
        return []
    more = [f"  ... and {len(items) - show} more"] if len(items) > show else []
    return [f"\n{title} ({len(items)}):"] + [f"  {item}" for item in items[:show]] + more


def _fit_section(annotations, reader, cfg, splits: List[str], data_root: Optional[Path]) -> Tuple[List[str], bool]:
    """The lines of the fit report (video lengths against data.max_seq_len, segments against the regression
    ranges, classes per split, verdicts naming the key and init's value) and whether it has a verdict."""
    from ..data.checks import fit_report, format_fit_report
    from ..errors import DataError
    from ..video.records import read_extraction

    if not splits or not annotations.split(splits[0]):
        return [], False
    try:
        extraction = None
        for folder in (Path(reader.feature_dir).parent, data_root):
            extraction = extraction or (read_extraction(folder) if folder is not None else None)
        report = fit_report(annotations, reader, cfg, splits, extraction)
    except DataError as err:  # an unreadable file: an error of the table above already
        return [f"\nfit of the config to the data: skipped ({err})"], False
    return format_fit_report(report), bool(report.verdicts)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data.annotations import load_annotations
    from ..data.checks import check_split, format_reports, mixed_dims_message
    from ..data.features import feature_reader
    from ..data.prepare import resolve_paths, skip_videos
    from ..errors import DataError

    in_range(args.show, "--show", 0, 10**9, "a number of videos")
    cfg = load_config(args.preset, overrides=args.overrides)
    ann_path, feat_dir = resolve_paths(cfg.data, args.data_root)
    annotations = load_annotations(ann_path, cfg.data.default_fps)
    if not feat_dir.is_dir():
        raise DataError(f"feature folder not found: {feat_dir} (expected DATA_ROOT/features or data.feature_dir)")
    reader = feature_reader(cfg.data, feat_dir)
    splits = [s for s in (cfg.data.train_split, cfg.data.val_split, cfg.data.test_split) if s]
    skip_videos(annotations, cfg.data, args.data_root, splits)
    reports = [check_split(annotations, reader, cfg.data, s) for s in dict.fromkeys(splits)]
    lines = [f"annotations: {ann_path}", f"features:    {feat_dir}",
             f"classes:     {annotations.num_classes} ({', '.join(annotations.label_names.values())})", "",
             format_reports(reports)]
    errors: List[str] = []
    for r in reports:
        errors += r.errors
        lines += _listing(f"{r.split}: errors", r.errors, args.show)
        lines += _listing(f"{r.split}: warning: feature length vs duration (check fps, feat_stride, num_frames)",
                          r.length_mismatch, args.show)
        lines += _listing(f"{r.split}: warning: videos with segments ending after the duration (kept for "
                          f"evaluation)", r.beyond_videos, args.show)
        lines += _listing(f"{r.split}: warning: videos with segments starting after the last feature step "
                          f"(dropped in training with data.gt_clip=upstream)", r.beyond_features, args.show)
        if r.zero_length:
            lines.append(f"\n{r.split}: warning: {r.zero_length} zero-length segment(s)")
    all_dims: Dict[int, int] = {}
    examples: Dict[int, str] = {}
    for r in reports:
        for c, n in r.input_dims.items():
            all_dims[c] = all_dims.get(c, 0) + n
            examples.setdefault(c, f"split {r.split!r}, {r.dim_examples[c]}")
    if len(all_dims) > 1 and not any(len(r.input_dims) > 1 for r in reports):
        msg = mixed_dims_message(all_dims, examples)
        errors.append(msg)
        lines.append(f"\nerror: {msg}")
    fit_lines, fit_warned = _fit_section(annotations, reader, cfg, splits, args.data_root)
    lines += fit_lines
    errors += _verify_block(args, feat_dir, lines)
    # file names and ids escaped (a name that is not UTF-8 cannot be printed), no line shortened
    print("\n".join(one_line(line, limit=10**7) for line in "\n".join(lines).split("\n")))
    if errors:
        print(f"\n{len(errors)} error(s): training or testing would fail")
        raise DataError(f"{len(errors)} problem(s) in the dataset, the first: {errors[0]}")
    warned = any(r.length_mismatch or r.beyond_videos or r.beyond_features or r.zero_length for r in reports)
    warned = warned or fit_warned
    print("\nok: training can start" + (" (warnings above)" if warned else ""))
    return 0


def _verify_block(args: argparse.Namespace, feat_dir: Path, lines: List[str]) -> List[str]:
    """The feature files against the checksums of ``extraction.json`` beside the feature folder (``rdfa-s6
    extract``'s layout): report lines appended to ``lines``; returns the errors (one line each, the file named)."""
    from ..data.checks import verify_feature_files
    from ..messages import plural
    from ._progress import video_bar

    if args.no_verify:
        return []
    bar = video_bar("verify", not args.no_progress)
    verified = verify_feature_files(feat_dir.parent, feat_dir, progress=bar)
    if verified is None:
        return []
    if verified.skipped:
        lines.append(f"\nnote: {verified.skipped}")
        return []
    lines.append(f"\nfeature files verified against extraction.json: {verified.checked} match"
                 + (f", {plural(len(verified.errors), 'problem')}" if verified.errors else "")
                 + (f"; {plural(verified.unrecorded, 'file')} recorded without a checksum (extracted by an older "
                    f"rdfa-s6) not verified" if verified.unrecorded else ""))
    lines += _listing("errors: feature files that differ from extraction.json", verified.errors, args.show)
    return verified.errors
