"""Classification and regression heads, shared across pyramid levels (docs/model.md §3.8).

Both heads: ``num_layers - 1`` x (MaskedConv1D k3 no bias -> channel LayerNorm -> ReLU), then an output
MaskedConv1D. Outputs are permuted to ``[B, T_l, K]``. Parameter names follow the official state dict
(``head.{i}.conv``, ``norm.{i}``, ``cls_head.conv`` / ``offset_head.conv``, ``scale.{l}.scale``).
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor, nn

from .blocks import ChannelLayerNorm, MaskedConv1D, Scale


class _Trunk(nn.Module):
    def __init__(self, dim: int, num_layers: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.head = nn.ModuleList(
            MaskedConv1D(dim, dim, kernel_size, padding=pad, bias=False) for _ in range(num_layers - 1)
        )
        self.norm = nn.ModuleList(ChannelLayerNorm(dim) for _ in range(num_layers - 1))

    def trunk(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.head, self.norm):
            x, _ = conv(x, mask)
            x = norm(x).relu()
        return x


class ClsHead(_Trunk):
    """Per-level class logits: lists of [B, D, T_l] feats and [B, 1, T_l] masks -> list of [B, T_l, C].

    The output bias starts at ``-log((1 - prior_prob) / prior_prob)`` (-4.595 for 0.01); classes listed in
    ``empty_cls`` start at ``-log((1 - 1e-6) / 1e-6)``.
    """

    def __init__(self, dim: int, num_classes: int, num_layers: int = 3, kernel_size: int = 3,
                 prior_prob: float = 0.01, empty_cls: Sequence[int] = ()) -> None:
        super().__init__(dim, num_layers, kernel_size)
        self.cls_head = MaskedConv1D(dim, num_classes, kernel_size, padding=kernel_size // 2, bias=True)
        with torch.no_grad():
            self.cls_head.conv.bias.fill_(-math.log((1 - prior_prob) / prior_prob))
            for c in empty_cls:
                if not 0 <= int(c) < num_classes:
                    raise ValueError(f"empty_cls entry {c} is not a class index in [0, {num_classes})")
                self.cls_head.conv.bias[int(c)] = -math.log((1 - 1e-6) / 1e-6)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> List[Tensor]:
        out = []
        for x, mask in zip(feats, masks):
            logits, _ = self.cls_head(self.trunk(x, mask), mask)
            out.append(logits.transpose(1, 2))
        return out


class RegHead(_Trunk):
    """Per-level (left, right) distances in units of the level stride: list of [B, T_l, 2], >= 0.

    The output conv's bias starts at ``bias_init`` (official: 0; ``model.head.offset_bias_init``); each level has
    its own learnable ``Scale`` (init 1.0), then ReLU.
    """

    def __init__(self, dim: int, num_levels: int, num_layers: int = 3, kernel_size: int = 3,
                 bias_init: float = 0.0) -> None:
        super().__init__(dim, num_layers, kernel_size)
        self.scale = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        self.offset_head = MaskedConv1D(dim, 2, kernel_size, padding=kernel_size // 2, bias=True)
        with torch.no_grad():
            self.offset_head.conv.bias.fill_(bias_init)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> List[Tensor]:
        if len(feats) != len(self.scale):
            raise ValueError(f"the regression head expects {len(self.scale)} levels, got {len(feats)}")
        out = []
        for scale, x, mask in zip(self.scale, feats, masks):
            offsets, _ = self.offset_head(self.trunk(x, mask), mask)
            out.append(torch.relu(scale(offsets)).transpose(1, 2))
        return out
