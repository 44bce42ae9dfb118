"""``rdfa-s6 bench``: whether bf16 (AMX/AVX512-BF16) is used here, which selective-scan backends run, and a
quick timing of each."""
from __future__ import annotations

import argparse
import time

from ._common import HelpFormatter


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
    import torch

    from ..precision import describe
    from ..ssm import available_backends, selective_scan

    print(describe("cpu"))
    if torch.cuda.is_available():
        print(describe("cuda"))

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
