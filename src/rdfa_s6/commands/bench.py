"""``rdfa-s6 bench``: which selective-scan backends run here, and a quick timing of each."""
from __future__ import annotations

import argparse

from ._common import HelpFormatter


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="show the selective-scan backends available here and time them once",
        description="List the selective-scan backends that run on this machine and time one forward+backward "
        "of each at the given size. The full benchmark is benchmarks/scan.py in the source tree.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--batch", type=int, default=2, help="batch size b")
    parser.add_argument("--dim", type=int, default=512, help="channels d")
    parser.add_argument("--length", type=int, default=576, help="sequence length l")
    parser.add_argument("--state", type=int, default=16, help="state size n")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..ssm.timing import time_backends

    b, d, l, n = args.batch, args.dim, args.length, args.state
    for t in time_backends(b, d, l, n):
        if t.fwd_bwd_ms is None:
            print(f"{t.name:10s} {'available' if t.available else 'not available'}")
        else:
            print(f"{t.name:10s} forward+backward {t.fwd_bwd_ms:8.1f} ms at {b}x{d}x{l}, n={n}")
    return 0
