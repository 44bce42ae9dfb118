"""``rdfa-s6 synth OUT_DIR``: write the built-in synthetic dataset (annotations.json + features/*.npy)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..messages import shown
from ._common import HelpFormatter, deprecated, in_range


def register(subparsers) -> argparse.ArgumentParser:
    from ..data.synth import SynthSpec

    d = SynthSpec()
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic demo dataset",
        description="Write a synthetic TAL dataset in the standard layout (OUT_DIR/annotations.json, "
        "OUT_DIR/features/<video>.npy with [T, C] float32): class-specific temporal patterns with onsets and "
        "offsets, background noise, drift and distractor bursts. Subsets: training, validation, test.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("out_dir", type=Path, help="output folder: the dataset (annotations.json, features/)")
    parser.add_argument("--train-videos", type=int, default=d.train_videos, help="training videos")
    deprecated(parser, "--videos", "--train-videos", dest="train_videos", type=int)
    parser.add_argument("--val-videos", type=int, default=d.val_videos, help="validation videos")
    parser.add_argument("--test-videos", type=int, default=d.test_videos, help="test videos")
    parser.add_argument("--classes", type=int, default=d.num_classes, help="number of action classes (1..8)")
    parser.add_argument("--dim", type=int, default=d.dim, help="feature channels C (at least 3 * classes + 4)")
    parser.add_argument("--min-len", type=int, default=d.min_len, help="shortest video, feature steps (>= 8)")
    parser.add_argument("--max-len", type=int, default=d.max_len, help="longest video, feature steps")
    parser.add_argument("--noise", type=float, default=d.noise, help="background noise std")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the synthetic data")
    parser.set_defaults(func=run)
    return parser


def check_options(args: argparse.Namespace) -> None:
    """UserError naming the option for every value the generator cannot use."""
    from ..data.synth import CLASS_NAMES, SynthSpec
    from ..errors import UserError

    for option, value in (("--train-videos", args.train_videos), ("--val-videos", args.val_videos),
                          ("--test-videos", args.test_videos)):
        in_range(value, option, 0, 100_000, "a number of videos")
    if args.train_videos + args.val_videos + args.test_videos == 0:
        raise UserError("--train-videos, --val-videos and --test-videos are all 0: expected at least one video")
    if not 1 <= args.classes <= len(CLASS_NAMES):
        raise UserError(f"--classes must be in 1..{len(CLASS_NAMES)}, got {args.classes}")
    if args.dim < 3 * args.classes + 4:
        raise UserError(f"--dim must be at least 3 * classes + 4 = {3 * args.classes + 4}, got {args.dim}")
    shortest = SynthSpec().action_len[0] + 2
    if args.min_len < shortest:
        raise UserError(f"--min-len must be at least {shortest} feature steps, got {args.min_len}")
    if args.max_len < args.min_len:
        raise UserError(f"--max-len must be >= --min-len ({args.min_len}), got {args.max_len}")
    in_range(args.noise, "--noise", 0.0, 100.0, "a standard deviation")
    in_range(args.dim, "--dim", 1, 4096, "a number of channels")
    in_range(args.max_len, "--max-len", 1, 100_000, "a number of feature steps")
    in_range(args.seed, "--seed", 0, 2**32 - 1, "a seed")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise UserError(f"{args.out_dir}: exists and is not a folder; expected a folder to write the dataset into")


def run(args: argparse.Namespace) -> int:
    from ..data.synth import SynthSpec, generate
    from ..errors import UserError

    check_options(args)
    try:
        spec = SynthSpec(train_videos=args.train_videos, val_videos=args.val_videos, test_videos=args.test_videos,
                         num_classes=args.classes, dim=args.dim, min_len=args.min_len, max_len=args.max_len,
                         noise=args.noise, seed=args.seed)
        counts = generate(args.out_dir, spec)
    except ValueError as err:
        raise UserError(str(err)) from None
    except OSError as err:
        raise UserError(f"{args.out_dir}: cannot write the dataset ({err})") from None
    print(f"wrote {sum(counts.values())} videos ({', '.join(f'{k} {v}' for k, v in counts.items())}) "
          f"to {shown(args.out_dir)}")
    return 0
