"""``rdfa-s6 test CHECKPOINT_OR_RUN_DIR --data-root DIR``: run a trained model over a split and evaluate it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import HelpFormatter, add_precision_argument, check_label_names, output_dir, output_file


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "test",
        help="run a trained model over a dataset split and evaluate it",
        description="Load a checkpoint folder (or a run folder: its final/ model, else its newest checkpoint), "
        "run it over --split of the dataset in --data-root, write the detections (ActivityNet results JSON) and "
        "the metrics (same JSON shape as `rdfa-s6 evaluate --json`), and print mAP per tIoU.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder or run folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides for inference only, e.g. infer.nms_sigma=0.75 eval.tiou_thresholds=[0.5]")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder (DIR/annotations.json, DIR/features/) unless the config names the paths")
    parser.add_argument("--split", default=None, help="subset to evaluate (default: the config's data.test_split)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for results_<split>.json and metrics_<split>.json (default: the checkpoint's folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the metrics to this file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_precision_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import atomic_write_json, load_detector, read_label_names
    from ..config import apply_override, config_from_dict, config_to_dict
    from ..data.prepare import prepare_data
    from ..errors import ConfigError
    from ..eval.report import format_table
    from ..infer.runner import evaluate_split
    from ..train.state import resolve_model_dir

    output_dir(args.out, "--out")
    output_file(args.json, "--json")
    model_dir = resolve_model_dir(args.checkpoint)
    model, cfg = load_detector(model_dir, device=args.device)
    model_names = read_label_names(model_dir, model.num_classes)
    if args.overrides:
        raw = config_to_dict(cfg)
        for item in args.overrides:
            if not item.split("=", 1)[0].startswith(("infer.", "eval.")):
                raise ConfigError(f"{item}: only infer.* and eval.* can be overridden when testing a trained model")
            apply_override(raw, item)
        cfg = config_from_dict(raw, source="overrides")
    split = args.split or cfg.data.test_split
    data = prepare_data(cfg.data, args.data_root, [split])
    if data.num_classes != model.num_classes:
        raise ConfigError(f"the dataset has {data.num_classes} classes but the model in {model_dir} predicts "
                          f"{model.num_classes}")
    if not cfg.data.class_agnostic:
        check_label_names(data.annotations.label_names, model_names, data.annotations.path, model_dir)
    results, metrics = evaluate_split(model, cfg, data, split, progress=not args.no_progress,
                                      precision=args.precision)
    out = args.out or model_dir
    atomic_write_json(Path(out) / f"results_{split}.json", results)
    atomic_write_json(Path(out) / f"metrics_{split}.json", metrics)
    if args.json:
        atomic_write_json(args.json, metrics)
    print(format_table(metrics))
    print(f"results: {Path(out) / f'results_{split}.json'}\nmetrics: {Path(out) / f'metrics_{split}.json'}")
    return 0
