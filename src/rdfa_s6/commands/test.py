"""``rdfa-s6 test CHECKPOINT_OR_RUN_DIR --data-root DIR``: run a trained model over a split and evaluate it.

A thin shell over :meth:`rdfa_s6.Detector.evaluate`: options, files and the printed table."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..messages import printable
from ._common import HelpFormatter, add_inference_arguments, add_model_argument


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "test",
        help="run a trained model over a dataset split and evaluate it",
        description="Load a checkpoint folder (or a run folder: its final/ model, else its newest checkpoint), "
        "run it over --split of the dataset in --data-root, write the detections (ActivityNet results JSON) and "
        "the metrics (same JSON shape as `rdfa-s6 evaluate --json`), and print mAP per tIoU. Ground truth is "
        "scored with the config's eval.gt_policy (the official metric's: zero-length and duplicated events "
        "dropped), which `rdfa-s6 evaluate --gt-policy` selects too.",
        formatter_class=HelpFormatter,
    )
    add_model_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides: for inference only, e.g. infer.nms_sigma=0.75 "
                        "eval.tiou_thresholds=[0.5]")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder (DIR/annotations.json, DIR/features/) unless the config names the paths")
    parser.add_argument("--split", default=None, help="subset to evaluate (default: the config's data.test_split)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for results_<split>.json and metrics_<split>.json (default: the checkpoint's "
                        "folder; for a checkpoint of an unfinished run, which training prunes: "
                        "RUN/tests/<checkpoint>/)")
    parser.add_argument("--json", type=Path, metavar="METRICS.json", default=None,
                        help="also write the metrics to this JSON file (the shape of `rdfa-s6 evaluate --json`)")
    add_inference_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..api import Detector
    from ..atomic import atomic_write_json
    from ..checkpoint import resolve_model_dir, results_folder
    from ..eval.report import format_table
    from ..outputs import check_outputs
    from ._progress import video_bar

    model_dir = resolve_model_dir(args.model)
    inputs = [(p, "CHECKPOINT") for p in sorted(model_dir.iterdir()) if p.is_file()]
    check_outputs([(args.out, "--out", "folder"), (args.json, "--json", "file")], inputs)
    det = Detector.from_pretrained(model_dir, device=args.device, precision=args.precision).with_overrides(
        args.overrides)
    split = args.split or det.config.data.test_split
    out = Path(args.out) if args.out is not None else results_folder(model_dir)
    check_outputs([(out / f"results_{split}.json", "--out", "file"),
                           (out / f"metrics_{split}.json", "--out", "file"), (args.json, "--json", "file")],
                          inputs + _data_files(det.config, args.data_root))
    bar = video_bar(f"predict {split}", not args.no_progress, disable=False)
    results, metrics = det.evaluate(args.data_root, split, progress=bar or False)
    atomic_write_json(out / f"results_{split}.json", results)
    atomic_write_json(out / f"metrics_{split}.json", metrics)
    if args.json:
        atomic_write_json(args.json, metrics)
    print(format_table(metrics))
    print(f"results: {printable(out / f'results_{split}.json')}\n"
          f"metrics: {printable(out / f'metrics_{split}.json')}")
    return 0


def _data_files(cfg, data_root):
    """(path, option) of the data files ``test`` reads: the annotation file and the external score file."""
    from ..data.prepare import resolve_paths, under_root
    from ..errors import DataError

    try:
        annotations, _ = resolve_paths(cfg.data, data_root)
    except DataError:  # no data given: evaluate says so
        return []
    files = [(annotations, "the annotation file")]
    if cfg.infer.ext_score_file:
        files.append((under_root(cfg.infer.ext_score_file, data_root), "infer.ext_score_file"))
    return files
