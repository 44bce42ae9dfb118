"""The branch: a pyramid of residual Bi-S6 blocks, each followed by 2x downsampling (docs/model.md §3.5).

Per block l = 1..L on x [B, D, T_{l-1}] with mask m:

    x = x + DropPath_l( gamma_l * (BiS6_l( LN_l(x) ) * m) )      pre-LN residual, single kernel (official k=4)
    x, m = MaxPool1d(3, 2, 1)(x) * m_ds, m_ds                     T_l = ceil(T_{l-1} / 2)

Level 0 is the stem output; the pyramid has L + 1 levels with strides 1, 2, ..., 2^L feature steps.
:class:`MambaBlock` is also ActionMamba's ``MaskMambaBlock`` (DBM): the baseline reuses it.
Module names match the official state dict: ``blocks.{l}.{mamba, ln, drop_path}``.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from torch import Tensor, nn

from ..ssm.bis6 import MixerFactory
from .blocks import AffineDropPath, Downsample


class MambaBlock(nn.Module):
    """Pre-LN residual Bi-S6 block with optional 2x downsampling: ``[B, D, T] -> [B, D, ceil(T/2)]``.

    Args:
        dim: D, channels.
        kernel_size: the single causal conv size of the Bi-S6 mixer (official 4).
        make_mixer: builds the mixer, e.g. a bound :func:`rdfa_s6.ssm.bis6.make_bis6`.
        drop_path: drop probability of the residual branch (official 0.3).
        downsample: ``maxpool`` (official), ``avgpool`` or None (no downsampling, ActionMamba's stem blocks).
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        make_mixer: MixerFactory,
        drop_path: float = 0.3,
        layerscale_init: float = 1e-4,
        downsample: Optional[str] = "maxpool",
    ) -> None:
        super().__init__()
        self.mamba = make_mixer(dim, (kernel_size,))
        self.ln = nn.LayerNorm(dim)
        self.drop_path = AffineDropPath(dim, drop_path, layerscale_init)
        self.downsample = Downsample(downsample) if downsample else None

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """x: [B, D, T], mask: [B, 1, T] bool -> ([B, D, T'], [B, 1, T']), T' = ceil(T/2) or T."""
        y = self.mamba(self.ln(x.transpose(1, 2))).transpose(1, 2) * mask.to(x.dtype)
        x = x + self.drop_path(y)
        if self.downsample is not None:
            x, mask = self.downsample(x, mask)
        return x, mask


class BranchModule(nn.Module):
    """``levels`` downsampling :class:`MambaBlock` s; returns every pyramid level, finest first.

    ``forward(x, mask)`` -> (feats, masks): lists of L + 1 tensors [B, D, T_l] and [B, 1, T_l] bool, with
    ``T_0 = T`` (the input itself) and ``T_l = ceil(T_{l-1} / 2)``.
    """

    def __init__(
        self,
        dim: int,
        levels: int,
        kernel_size: int,
        make_mixer: MixerFactory,
        drop_path: float = 0.3,
        layerscale_init: float = 1e-4,
        downsample: str = "maxpool",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            MambaBlock(dim, kernel_size, make_mixer, drop_path, layerscale_init, downsample) for _ in range(levels)
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        return pyramid(self.blocks, x, mask)


def pyramid(blocks: Iterable[nn.Module], x: Tensor, mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
    """Level 0 = ``(x, mask)``, then one level per block (each maps ``(x, mask)`` to the next, downsampled):
    lists of features [B, C, T_l] and masks [B, 1, T_l], finest first."""
    feats, masks = [x], [mask]
    for block in blocks:
        x, mask = block(x, mask)
        feats.append(x)
        masks.append(mask)
    return feats, masks
