"""Anchor points of every pyramid level, in level-0 feature steps (docs/model.md §3.7).

Level l has stride ``s_l = 2^l``; its points are ``t = 0, s_l, 2 s_l, ...`` (no half-stride offset) and each
row is ``[t, range_lo_l, range_hi_l, s_l]``. A buffer of ``max_seq_len * max_buffer_len_factor`` level-0 steps
is precomputed (not saved in checkpoints); longer inputs get their points computed on the fly.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def make_points(length: int, stride: int, reg_range: Sequence[float], dtype: torch.dtype = torch.float32,
                device: Optional[torch.device] = None) -> Tensor:
    """Points of one level: [length, 4] rows ``[t, lo, hi, stride]``, t in level-0 feature steps."""
    t = torch.arange(length, dtype=dtype, device=device) * stride
    out = torch.empty(length, 4, dtype=dtype, device=device)
    out[:, 0] = t
    out[:, 1] = float(reg_range[0])
    out[:, 2] = float(reg_range[1])
    out[:, 3] = float(stride)
    return out


class PointGenerator(nn.Module):
    """``forward(lengths)`` -> one [T_l, 4] float32 tensor per level (rows ``[t, lo, hi, stride]``).

    Args:
        max_seq_len: training length in feature steps.
        max_buffer_len_factor: precomputed buffer = max_seq_len * factor level-0 steps (official 6.0).
        strides: per-level strides in feature steps (official 1, 2, ..., 32).
        regression_ranges: per-level [lo, hi] in level-0 feature steps.
    """

    def __init__(self, max_seq_len: int, max_buffer_len_factor: float, strides: Sequence[int],
                 regression_ranges: Sequence[Sequence[float]]) -> None:
        super().__init__()
        if len(strides) != len(regression_ranges):
            raise ValueError(f"{len(strides)} strides but {len(regression_ranges)} regression ranges")
        self.strides = [int(s) for s in strides]
        self.regression_ranges = [[float(v) for v in rr] for rr in regression_ranges]
        self.buffer_len = int(max_seq_len * max_buffer_len_factor)
        for level, (stride, rr) in enumerate(zip(self.strides, self.regression_ranges)):
            n = -(-self.buffer_len // stride)
            self.register_buffer(f"points_{level}", make_points(n, stride, rr), persistent=False)

    def forward(self, lengths: Sequence[int]) -> List[Tensor]:
        out = []
        for level, length in enumerate(lengths):
            buf: Tensor = getattr(self, f"points_{level}")
            if length <= buf.shape[0]:
                out.append(buf[:length])
            else:
                log.debug("level %d: %d points exceed the buffer of %d; computing them", level, length, buf.shape[0])
                out.append(make_points(length, self.strides[level], self.regression_ranges[level],
                                       buf.dtype, buf.device))
        return out
