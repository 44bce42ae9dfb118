"""``rdfa-s6 train PRESET --data-root DIR --out RUN_DIR [key=value ...]``: train a detector."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..messages import printable, shown
from ..precision import TRAIN_CHOICES
from ._common import HelpFormatter, add_device_argument, in_range

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
    parser.add_argument("--precision", choices=TRAIN_CHOICES, default="fp32",
                        help="forward precision of training: bf16 autocast of the matmuls, fp16 autocast with a "
                        "gradient scaler (training only), or exact fp32 (the default: low precision changes what is "
                        "learnt, so it is asked for); auto = bf16 where the hardware has fast bfloat16 "
                        "(AMX/AVX512-BF16 CPUs, CUDA compute 8.0+), else fp32. The selective scan always runs in "
                        "float32")
    add_device_argument(parser)
    parser.add_argument("--on-nonfinite", choices=["stop", "skip"], default="stop",
                        help="what to do when the loss or gradients become NaN/Inf")
    parser.add_argument("--max-skipped", type=int, default=20,
                        help="with --on-nonfinite skip: stop when this many steps in a row were non-finite")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also save a resume point every N iterations (0: at the end of each epoch only)")
    parser.add_argument("--log-every", type=int, default=10,
                        help="write a training record to metrics.jsonl every N iterations")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (the line per epoch, loss and seconds, stays)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import UserError
    from ..outputs import check_outputs
    from ..train.dist import device_of, hold_run_folder, process_group

    in_range(args.max_skipped, "--max-skipped", 1, 10**6, "a number of steps")
    in_range(args.checkpoint_every, "--checkpoint-every", 0, 10**9, "a number of iterations")
    in_range(args.log_every, "--log-every", 1, 10**9, "a number of iterations")
    if args.precision == "auto":  # the one auto rule (rdfa_s6.precision), for the device this run trains on
        from ..precision import resolve_precision

        args.precision = resolve_precision("auto", device_of(args.device))
    cfg = load_config(args.preset, overrides=args.overrides)
    check_outputs([(args.out, "--out", "folder")])  # a folder, writable (the run's files are its own names)
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
                        device=args.device, nonfinite=args.on_nonfinite,
                        max_skipped=args.max_skipped,
                        checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    trainer = Trainer(cfg, opts)
    try:  # validation on the preset's validation split is the trainer's (rdfa_s6.train.validation)
        with stop_on_signals(trainer.request_stop):  # the process is the CLI's: its signals too
            result = trainer.run(progress=TrainBars(trainer.cfg.train.epochs, bars=not args.no_progress))
    except TrainingInterrupted as stop:
        # one line, no traceback; the status is the shell's for the signal (130 SIGINT, 143 SIGTERM)
        if stop.folder is not None:
            print(f"rdfa-s6 train: {stop.signame}: stopped at {stop.where}; resume point saved in "
                  f"{shown(stop.folder)}; continue with the same command and --resume", file=sys.stderr)
        return stop.status
    if result.final is not None:
        print(f"final EMA model: {printable(result.final)}")
    return 0
