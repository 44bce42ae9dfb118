"""The pure-PyTorch selective scan: works on any device, differentiable by plain autograd.

The time axis of length L is cut into ``nc`` chunks of ``K`` steps (K about sqrt(L)). With the log-decay
``a_t = delta_t * A`` (<= 0 for the usual negative A):

1. within every chunk, all chunks at once, the local states from a zero start
   ``g_t = exp(a_t) g_{t-1} + delta_t u_t B_t`` (K vectorised steps);
2. the cumulative decay since the chunk start, in log space: ``P_t = exp(cumsum_{s<=t} a_s)``;
3. a short recurrence across chunks for the state entering each chunk: ``S_{c+1} = P_last(c) S_c + g_last(c)``;
4. the full state ``h_t = g_t + P_t S_c``, then ``y_t = <h_t, C_t> + D u_t`` and the gate.

Every factor is a decay in [0, 1], so nothing overflows: decays down to exp(-80) per step underflow to 0
cleanly. About K + nc Python steps instead of L, each on a whole [b, d, nc, n] slice.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def _chunk_len(length: int) -> int:
    return max(1, int(math.ceil(math.sqrt(length))))


def _sequential(decay: Tensor, drive: Tensor, dim: int, start: Optional[Tensor] = None) -> Tensor:
    """States of ``h_k = decay_k * h_{k-1} + drive_k`` along ``dim``; ``unbind`` keeps autograd O(steps)."""
    states = []
    h = start
    for a_k, x_k in zip(decay.unbind(dim), drive.unbind(dim)):
        h = x_k if h is None else a_k * h + x_k
        states.append(h)
    return torch.stack(states, dim)


def selective_scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                           z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                           delta_softplus: bool = False) -> Tensor:
    """:class:`~rdfa_s6.ssm.scan.ScanBackend` by chunks (see the module docstring)."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    if u.numel() == 0:
        return u.new_zeros(u.shape)
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    k = _chunk_len(length)
    nc = -(-length // k)
    pad = nc * k - length
    # [b, d, L, n] log-decays and inputs, padded with decay 1 (log 0) and input 0
    log_decay = delta.unsqueeze(-1) * A[None, :, None, :]
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)
    if pad:
        log_decay = F.pad(log_decay, (0, 0, 0, pad))
        drive = F.pad(drive, (0, 0, 0, pad))
    log_decay = log_decay.reshape(batch, dim, nc, k, nstate)
    drive = drive.reshape(batch, dim, nc, k, nstate)

    local = _sequential(torch.exp(log_decay), drive, dim=3)           # [b, d, nc, k, n]
    decay_since_start = torch.exp(torch.cumsum(log_decay, dim=3))    # [b, d, nc, k, n]
    if nc > 1:
        # state entering chunk c+1 from the chunk-level recurrence; chunk 0 starts at zero
        enter = _sequential(decay_since_start[:, :, :-1, -1], local[:, :, :-1, -1], dim=2)
        enter = F.pad(enter, (0, 0, 1, 0))                            # [b, d, nc, n]
        states = local + decay_since_start * enter.unsqueeze(3)
    else:
        states = local
    states = states.reshape(batch, dim, nc * k, nstate)[:, :, :length]
    y = torch.einsum("bdln,bnl->bdl", states, C)
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * F.silu(z)
    return y
