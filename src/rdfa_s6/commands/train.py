"""``rdfa-s6 train PRESET --data-root DIR --out RUN_DIR [key=value ...]``: train a detector."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._common import HelpFormatter

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a detector on a dataset",
        description="Train PRESET (a preset name such as thumos14 or demo, or a YAML file) on the dataset in "
        "--data-root (DIR/annotations.json and DIR/features/ unless the preset names other paths). Writes the "
        "resolved config, metrics.jsonl, TensorBoard events (tb/), checkpoints/ and final/ (the EMA model) into "
        "--out. The test split is never used: evaluation during training uses the preset's validation split, if "
        "any. Multi-process: torchrun --nproc_per_node=N -m rdfa_s6 train ...",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("preset", help="preset name (see docs/presets.md) or path to a YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted config overrides, e.g. train.epochs=10 model.stem.recurrences=2")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder: DIR/annotations.json and DIR/features/, or the preset's "
                        "data.annotation_file and data.feature_dir taken under DIR when relative")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (or to resume)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest complete checkpoint (from the beginning "
                        "if it has none yet)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="autocast precision; the selective scan always runs in float32")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--on-nonfinite", choices=["stop", "skip"], default="stop",
                        help="what to do when the loss or gradients become NaN/Inf")
    parser.add_argument("--max-skipped", type=int, default=20,
                        help="with --on-nonfinite skip: stop when this many steps in a row were non-finite")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also save a resume point every N iterations (0: at the end of each epoch only)")
    parser.add_argument("--log-every", type=int, default=10,
                        help="write a training record to metrics.jsonl every N iterations")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import UserError
    from ..train.dist import device_of, hold_run_folder, process_group

    cfg = load_config(args.preset, overrides=args.overrides)
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder; expected a run folder")
    existing = next((p for p in args.out.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"--out {args.out}: {existing} is a file, not a folder")
    if args.resume and not args.out.is_dir():
        raise UserError(f"--resume: run folder {args.out} not found")
    # the run folder is this process's (rank 0's under torchrun) before anything is read or written
    with process_group(device_of(args.device)) as info, hold_run_folder(args.out, info):
        if not args.resume and (args.out / "checkpoints").exists():
            raise UserError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
        return _train(cfg, args)


def _train(cfg, args: argparse.Namespace) -> int:
    from ..train.loop import Trainer, TrainingInterrupted, TrainOptions
    from ..train.signals import stop_on_signals
    from ._progress import TrainBars

    opts = TrainOptions(out_dir=args.out, data_root=args.data_root, resume=args.resume, precision=args.precision,
                        device=args.device, progress=not args.no_progress, nonfinite=args.on_nonfinite,
                        max_skipped=args.max_skipped,
                        checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    trainer = Trainer(cfg, opts)
    try:  # validation on the preset's validation split is the trainer's (rdfa_s6.train.validation)
        with stop_on_signals(trainer.request_stop):  # the process is the CLI's: its signals too
            result = trainer.run(progress=TrainBars(trainer.cfg.train.epochs))
    except TrainingInterrupted as stop:
        # one line, no traceback; the status is the shell's for the signal (130 SIGINT, 143 SIGTERM)
        if stop.folder is not None:
            print(f"rdfa-s6 train: {stop.signame}: stopped at {stop.where}; resume point saved in {stop.folder}; "
                  f"continue with the same command and --resume", file=sys.stderr)
        return stop.status
    if result.final is not None:
        print(f"final EMA model: {result.final}")
    return 0
