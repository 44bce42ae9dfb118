"""One quick timing of every selective-scan backend available here (what ``rdfa-s6 bench`` prints).

The full benchmark, with baselines measured in the same run, is ``benchmarks/scan.py`` in the source tree."""
from __future__ import annotations

import time
from typing import List, NamedTuple, Optional

import torch

from .scan import available_backends, selective_scan


class BackendTiming(NamedTuple):
    name: str
    available: bool
    #: one forward+backward in milliseconds; None when the backend is unavailable or is the slow reference
    fwd_bwd_ms: Optional[float]


def time_backends(batch: int, dim: int, length: int, state: int, seed: int = 0) -> List[BackendTiming]:
    """Time one forward+backward of each backend on random ``[batch, dim, length]`` inputs, ``state`` wide."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, length, generator=gen)
    delta = torch.rand(batch, dim, length, generator=gen) * 0.1
    A = -torch.rand(dim, state, generator=gen)
    B = torch.randn(batch, state, length, generator=gen)
    C = torch.randn(batch, state, length, generator=gen)
    out = []
    for name, ok in available_backends().items():
        if not ok or name == "reference":
            out.append(BackendTiming(name, ok, None))
            continue
        leaves = [t.clone().requires_grad_(True) for t in (u, delta, A, B, C)]
        start = time.perf_counter()
        y = selective_scan(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], backend=name)
        torch.autograd.backward(y.sum())
        out.append(BackendTiming(name, True, 1e3 * (time.perf_counter() - start)))
    return out
