"""The embedding: ``n`` x (Conv1d k3 no bias -> mask -> LayerNorm over channels -> ReLU) (docs/model.md §3.2).

Parameter names follow the official code: ``conv_1, ln_1, conv_2, ln_2, ...`` (``nn.Conv1d`` and
``nn.LayerNorm``). The same module is the embedding of the ActionFormer and ActionMamba baselines (their
``MaskedConv1D`` + channel LayerNorm + ReLU with ``with_ln=True`` compute the same function).
"""
from __future__ import annotations

from typing import Tuple

from torch import Tensor, nn


class EmbeddingModule(nn.Module):
    """Input projection ``[B, C_in, T] -> [B, D, T]``; the mask passes through unchanged.

    Args:
        input_dim: C_in, channels of the input features.
        embed_dim: D.
        num_layers: number of conv + LayerNorm + ReLU layers (official 2).
        kernel_size: odd temporal kernel (official 3, padding 1).
    """

    def __init__(self, input_dim: int, embed_dim: int, num_layers: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"the embedding kernel size must be odd, got {kernel_size}")
        self.num_layers = num_layers
        for i in range(1, num_layers + 1):
            c_in = input_dim if i == 1 else embed_dim
            setattr(self, f"conv_{i}", nn.Conv1d(c_in, embed_dim, kernel_size, padding=kernel_size // 2, bias=False))
            setattr(self, f"ln_{i}", nn.LayerNorm(embed_dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """x: [B, C_in, T] float, mask: [B, 1, T] bool -> ([B, D, T], mask)."""
        m = mask.to(x.dtype)
        for i in range(1, self.num_layers + 1):
            x = getattr(self, f"conv_{i}")(x) * m
            x = getattr(self, f"ln_{i}")(x.transpose(1, 2)).transpose(1, 2).relu()
        return x, mask
