"""``rdfa-s6 check-data PRESET --data-root DIR``: validate a dataset before training."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-data",
        help="validate a dataset (annotations and features) against a preset",
        description="Read the annotations and every feature file of the preset's train, validation and test "
        "splits and report: missing or unreadable feature files, feature lengths that disagree with the "
        "duration and fps (clips of data.num_frames every data.feat_stride frames), segments beyond the "
        "duration, zero-length segments, videos without fps, empty splits and mixed feature dimensions. "
        "Exit status 0 when training can start, 2 otherwise.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("preset", help="preset name or YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    parser.add_argument("--data-root", type=Path, default=None, help="dataset folder")
    parser.add_argument("--show", type=int, default=5, help="list at most this many videos per problem")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data.annotations import load_annotations
    from ..data.checks import check_split, format_reports
    from ..data.dataset import feature_reader
    from ..data.prepare import resolve_paths
    from ..errors import DataError

    cfg = load_config(args.preset, overrides=args.overrides)
    ann_path, feat_dir = resolve_paths(cfg.data, args.data_root)
    annotations = load_annotations(ann_path, cfg.data.default_fps)
    if not feat_dir.is_dir():
        raise DataError(f"feature folder not found: {feat_dir}")
    reader = feature_reader(cfg.data, feat_dir)
    splits = [s for s in (cfg.data.train_split, cfg.data.val_split, cfg.data.test_split) if s]
    reports = [check_split(annotations, reader, cfg.data, s) for s in dict.fromkeys(splits)]
    print(f"annotations: {ann_path}\nfeatures:    {feat_dir}\nclasses:     {annotations.num_classes} "
          f"({', '.join(annotations.label_names.values())})\n")
    print(format_reports(reports))
    problems = 0
    for r in reports:
        for title, items in (("missing feature files", r.missing_features), ("unreadable feature files", r.unreadable),
                             ("videos without fps (set data.default_fps)", r.no_fps),
                             ("feature length vs duration (check fps, feat_stride, num_frames)", r.length_mismatch)):
            if items:
                print(f"\n{r.split}: {len(items)} {title}:")
                for item in items[: args.show]:
                    print(f"  {item}")
        if r.videos == 0:
            print(f"\n{r.split}: empty split (subsets found: {', '.join(annotations.subsets())})")
        if len(r.input_dims) > 1:
            print(f"\n{r.split}: feature files disagree on C: {r.input_dims}")
        problems += r.problems
    if problems:
        print(f"\n{problems} problem(s): training would fail")
        return 2
    print("\nok: training can start" + (" (warnings above)" if any(r.length_mismatch for r in reports) else ""))
    return 0
