"""The plain sequential selective scan: the test oracle, never used for training.

Semantics and shapes follow ``mamba_ssm.ops.selective_scan_interface.selective_scan_ref`` (real A only):

    delta' = softplus(delta + delta_bias)            (bias and softplus optional)
    h_t    = exp(delta'_t * A) * h_{t-1} + delta'_t * u_t * B_t        h_{-1} = 0, h: [b, d, n]
    y_t    = <h_t, C_t> + D * u_t
    out    = y * silu(z)                              (gate optional)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_scan_reference(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                             z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                             delta_softplus: bool = False) -> Tensor:
    """:class:`~rdfa_s6.ssm.scan.ScanBackend` as the sequential recurrence, differentiable by autograd (slow:
    O(L) Python steps). The recurrence runs in float32 or wider."""
    dtype_in = u.dtype
    compute = torch.float64 if dtype_in == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    dA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    dBu = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        h = dA[:, :, t] * h + dBu[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u * D.to(compute)[:, None]
    if z is not None:
        y = y * F.silu(z.to(compute))
    return y.to(dtype_in)
