"""The stem: one Dual Bi-S6 block applied ``R`` times with shared weights (docs/model.md §3.4).

One application of the block (``kind="dual"``, the official one) on x [B, D, T] with mask m [B, 1, T]:

    t = T( LN(x) ) * m                         temporal FA-Bi-S6 along time (sequence length T)
    p = AdaptiveAvgPool1d_P(x)                 [B, D, P]: the raw x (no LN, no mask) pooled into P time bins
    c = Cm(p)                                  channel FA-Bi-S6: sequence = the D channels, features = P bins
    g = sigmoid(mean_P(c)) * m                 [B, D, 1] broadcast to [B, D, T]: an SE-style channel gate
    f(x) = DropPath(gamma * (t * g))

and the recurrence (``residual="anchored"``, official) is ``x_k = x_0 + f(x_{k-1})`` for k = 1..R, with the
residual anchored at the block input; ``"chained"`` is ``x_k = x_{k-1} + f(x_{k-1})``. R = 0 is the identity.

Ablation variants (``kind``):

- ``temporal``: no channel branch, ``f(x) = DropPath(gamma * t)`` (a plain residual FA-Bi-S6 block).
- ``channel``: no temporal branch; the gate multiplies the normalised input, ``f(x) = DropPath(gamma *
  (LN(x) * m * g))``. Using LN(x) rather than x keeps the branch's scale the same as the temporal branch it
  replaces, so gamma's 1e-4 initialisation means the same in both variants.
- ``none``: no stem at all (identity); ``recurrences`` is then irrelevant.

Module names match the official state dict: ``blocks.0.{ln, t_mamba, c_mamba, drop_path}``.
"""
from __future__ import annotations

from typing import Iterable, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ssm.bis6 import MixerFactory
from .blocks import AffineDropPath

BLOCK_KINDS = ("dual", "temporal", "channel")
#: the values of ``model.stem.kind``: a block kind, or "none" (a stem without blocks)
STEM_KINDS = BLOCK_KINDS + ("none",)
#: the values of ``model.stem.residual``
STEM_RESIDUALS = ("anchored", "chained")


class DualBiS6Block(nn.Module):
    """One Dual Bi-S6 block; ``forward`` returns the residual branch f(x) only (the stem adds the residual).

    Args:
        dim: D, channels.
        chan_pool_len: P, time bins of the channel branch (official 576 = 2304 // 4); the channel mixer's width.
        kernel_sizes: FA kernel sizes of both mixers (official (2, 3, 4)).
        make_mixer: builds the temporal (width D) and channel (width P) mixers, e.g. a bound
            :func:`rdfa_s6.ssm.bis6.make_bis6`.
        kind: ``dual | temporal | channel`` (see the module docstring).
        drop_path: drop probability of the residual branch (official 0.3).
        layerscale_init: initial value of the per-channel scale gamma (official 1e-4).
    """

    def __init__(
        self,
        dim: int,
        chan_pool_len: int,
        kernel_sizes: Sequence[int],
        make_mixer: MixerFactory,
        kind: str = "dual",
        drop_path: float = 0.3,
        layerscale_init: float = 1e-4,
    ) -> None:
        super().__init__()
        if kind not in BLOCK_KINDS:
            raise ValueError(f"stem block kind must be one of {BLOCK_KINDS}, got {kind!r}")
        self.kind, self.chan_pool_len = kind, chan_pool_len
        self.ln = nn.LayerNorm(dim)
        if kind in ("dual", "temporal"):
            self.t_mamba = make_mixer(dim, kernel_sizes)
        if kind in ("dual", "channel"):
            self.c_mamba = make_mixer(chan_pool_len, kernel_sizes)
        self.drop_path = AffineDropPath(dim, drop_path, layerscale_init)

    def channel_gate(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, D, T], mask [B, 1, T] -> gate [B, D, T] (constant over valid steps, 0 on padding)."""
        pooled = F.adaptive_avg_pool1d(x, self.chan_pool_len)        # [B, D, P]: D = sequence, P = features
        gate = torch.sigmoid(self.c_mamba(pooled).mean(dim=-1, keepdim=True))  # [B, D, 1]
        return gate * mask.to(x.dtype)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, D, T], mask: [B, 1, T] bool -> f(x): [B, D, T]."""
        m = mask.to(x.dtype)
        normed = self.ln(x.transpose(1, 2))                           # [B, T, D]
        if self.kind == "channel":
            y = normed.transpose(1, 2) * m * self.channel_gate(x, mask)
        else:
            y = self.t_mamba(normed).transpose(1, 2) * m               # [B, D, T]
            if self.kind == "dual":
                y = y * self.channel_gate(x, mask)
        return self.drop_path(y)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, chan_pool_len={self.chan_pool_len}"


class StemModule(nn.Module):
    """The recurrent stem ``[B, D, T] -> [B, D, T]``; the mask passes through unchanged.

    Args:
        blocks: the blocks in sequence (official: one :class:`DualBiS6Block`), each applied R times; none for
            ``kind="none"`` (the identity).
        recurrences: R, applications of each block (official 4); adds no parameters.
        residual: ``anchored`` (official, ``x_k = x_0 + f(x_{k-1})``) or ``chained``.
    """

    def __init__(self, blocks: Iterable[nn.Module], recurrences: int = 4, residual: str = "anchored") -> None:
        super().__init__()
        if residual not in STEM_RESIDUALS:
            raise ValueError(f"stem residual must be one of {STEM_RESIDUALS}, got {residual!r}")
        if recurrences < 0:
            raise ValueError(f"recurrences must be >= 0, got {recurrences}")
        self.recurrences, self.residual = recurrences, residual
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """x: [B, D, T], mask: [B, 1, T] bool -> ([B, D, T], mask)."""
        for block in self.blocks:
            anchor = x
            for _ in range(self.recurrences):
                base = anchor if self.residual == "anchored" else x
                x = base + block(x, mask)
        return x, mask

    def extra_repr(self) -> str:
        return f"recurrences={self.recurrences}, residual={self.residual!r}"
