"""``rdfa-s6 synth OUT_DIR``: write the built-in synthetic dataset (annotations.json + features/*.npy)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    from ..data.synth import SynthSpec

    d = SynthSpec()
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic demo dataset",
        description="Write a synthetic TAL dataset in the standard layout (OUT_DIR/annotations.json, "
        "OUT_DIR/features/<video>.npy with [T, C] float32): class-specific temporal patterns with onsets and "
        "offsets, background noise, drift and distractor bursts. Subsets: training, validation, test.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out_dir", type=Path, help="folder to write")
    parser.add_argument("--videos", type=int, default=d.train_videos, help="training videos")
    parser.add_argument("--val-videos", type=int, default=d.val_videos, help="validation videos")
    parser.add_argument("--test-videos", type=int, default=d.test_videos, help="test videos")
    parser.add_argument("--classes", type=int, default=d.num_classes, help="number of action classes (1..8)")
    parser.add_argument("--dim", type=int, default=d.dim, help="feature channels C")
    parser.add_argument("--min-len", type=int, default=d.min_len, help="shortest video, feature steps")
    parser.add_argument("--max-len", type=int, default=d.max_len, help="longest video, feature steps")
    parser.add_argument("--noise", type=float, default=d.noise, help="background noise std")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..data.synth import SynthSpec, generate
    from ..errors import UserError

    try:
        spec = SynthSpec(train_videos=args.videos, val_videos=args.val_videos, test_videos=args.test_videos,
                         num_classes=args.classes, dim=args.dim, min_len=args.min_len, max_len=args.max_len,
                         noise=args.noise, seed=args.seed)
        counts = generate(args.out_dir, spec)
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"wrote {sum(counts.values())} videos ({', '.join(f'{k} {v}' for k, v in counts.items())}) to {args.out_dir}")
    return 0
