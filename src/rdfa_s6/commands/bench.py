"""``rdfa-s6 bench``: whether bf16 (AMX/AVX512-BF16) is used here, which selective-scan backends run, and a
quick timing of each."""
from __future__ import annotations

import argparse

from ._common import HelpFormatter, in_range


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="show whether bf16 is used and the selective-scan backends available here; time them once",
        description="Say whether --precision auto uses bf16 here (AMX or AVX512-BF16 on CPU, bf16-capable CUDA) "
        "and why, list the selective-scan backends that run on this machine and time one forward+backward "
        "of each at the given size. The full benchmarks are benchmarks/scan.py and benchmarks/model.py in the "
        "source tree.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--batch", type=int, default=2, help="batch size b")
    parser.add_argument("--dim", type=int, default=512, help="channels d")
    parser.add_argument("--length", type=int, default=576, help="sequence length l")
    parser.add_argument("--state", type=int, default=16, help="state size n")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..precision import describe, devices_here
    from ..ssm.timing import time_backends

    in_range(args.batch, "--batch", 1, 64, "a batch size")
    in_range(args.dim, "--dim", 1, 4096, "a number of channels")
    in_range(args.length, "--length", 1, 16_384, "a sequence length")
    in_range(args.state, "--state", 1, 256, "a state size")
    for device in devices_here():
        print(describe(device))

    b, d, length, n = args.batch, args.dim, args.length, args.state
    for t in time_backends(b, d, length, n):
        if t.fwd_bwd_ms is None:
            print(f"{t.name:10s} {'available' if t.available else 'not available'}")
        else:
            print(f"{t.name:10s} forward+backward {t.fwd_bwd_ms:8.1f} ms at {b}x{d}x{length}, n={n}")
    return 0
