"""``rdfa-s6 bench``: which selective-scan backends run here, and a quick timing of each."""
from __future__ import annotations

import argparse
import time

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
    import torch

    from ..ssm import available_backends, selective_scan

    b, d, l, n = args.batch, args.dim, args.length, args.state
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, l, generator=gen)
    delta = torch.rand(b, d, l, generator=gen) * 0.1
    A = -torch.rand(d, n, generator=gen)
    B = torch.randn(b, n, l, generator=gen)
    C = torch.randn(b, n, l, generator=gen)
    for name, ok in available_backends().items():
        if not ok or name == "reference":
            print(f"{name:10s} {'available' if ok else 'not available'}")
            continue
        tensors = [t.clone().requires_grad_(True) for t in (u, delta, A, B, C)]
        start = time.perf_counter()
        selective_scan(*tensors, backend=name).sum().backward()
        print(f"{name:10s} forward+backward {1e3 * (time.perf_counter() - start):8.1f} ms at {b}x{d}x{l}, n={n}")
    return 0
