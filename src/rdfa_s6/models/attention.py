"""ActionFormer's transformer block with masked local (windowed) multi-head conv-attention.

Structure as in ActionFormer (``LocalMaskedMHCA`` + ``TransformerBlock``, ``happyharrycn/actionformer_release``):
depthwise convs (stride 2 when downsampling) -> channel LayerNorm -> 1x1 conv projections for q, k, v; each
query attends to the ``window_size`` keys centred on it (keys on padded steps or outside the sequence are
excluded); 1x1 output projection, masked. The block is pre-LN with a max-pooled skip when downsampling and a
4x MLP of 1x1 convs. The windowed attention is computed with one shifted product per window offset instead of
Longformer's chunked matmuls: the same function, any length T, no divisibility requirement.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import AffineDropPath, ChannelLayerNorm, MaskedConv1D


class LocalMaskedMHCA(nn.Module):
    """Local multi-head conv-attention: x [B, D, T], mask [B, 1, T] -> [B, D, T'], [B, 1, T'], T' = ceil(T/s).

    Args:
        dim: D; num_heads: heads (D must be divisible); window_size: odd window in (downsampled) steps;
        stride: 1 or 2 (queries, keys and values are downsampled together, as in ActionFormer).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, stride: int = 1) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if window_size < 3 or window_size % 2 != 1:
            raise ValueError(f"window_size must be odd and >= 3, got {window_size}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.half_window = window_size // 2
        self.scale = 1.0 / math.sqrt(self.head_dim)
        k = stride + 1 if stride > 1 else 3

        def dwconv() -> MaskedConv1D:
            return MaskedConv1D(dim, dim, k, stride=stride, padding=k // 2, groups=dim, bias=False)

        self.query_conv, self.key_conv, self.value_conv = dwconv(), dwconv(), dwconv()
        self.query_norm, self.key_norm = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.value_norm = ChannelLayerNorm(dim)
        self.query = nn.Conv1d(dim, dim, 1)
        self.key = nn.Conv1d(dim, dim, 1)
        self.value = nn.Conv1d(dim, dim, 1)
        self.proj = nn.Conv1d(dim, dim, 1)

    def _heads(self, x: Tensor) -> Tensor:  # [B, D, T] -> [B, h, T, d]
        b, _, t = x.shape
        return x.view(b, self.num_heads, self.head_dim, t).transpose(2, 3)

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        q, q_mask = self.query_conv(x, mask)
        k, kv_mask = self.key_conv(x, mask)
        v, _ = self.value_conv(x, mask)
        q = self._heads(self.query(self.query_norm(q))) * self.scale     # [B, h, T', d]
        k = self._heads(self.key(self.key_norm(k)))
        v = self._heads(self.value(self.value_norm(v)))
        batch, _, length, _ = q.shape
        w = self.half_window
        k_pad = F.pad(k, (0, 0, w, w))                                    # [B, h, T' + 2w, d]
        v_pad = F.pad(v, (0, 0, w, w))
        valid = F.pad(kv_mask[:, 0], (w, w), value=False)                # [B, T' + 2w]
        scores = torch.stack([(q * k_pad[:, :, j : j + length]).sum(-1) for j in range(2 * w + 1)], dim=-1)
        key_ok = torch.stack([valid[:, j : j + length] for j in range(2 * w + 1)], dim=-1)  # [B, T', W]
        scores = scores.masked_fill(~key_ok[:, None], torch.finfo(scores.dtype).min)
        att = scores.softmax(dim=-1) * q_mask[:, 0, None, :, None].to(scores.dtype)        # [B, h, T', W]
        out = sum(att[..., j : j + 1] * v_pad[:, :, j : j + length] for j in range(2 * w + 1))  # [B, h, T', d]
        out = out.transpose(2, 3).reshape(batch, -1, length)              # [B, D, T']
        return self.proj(out) * q_mask.to(out.dtype), q_mask


class TransformerBlock(nn.Module):
    """ActionFormer's pre-LN block: ``[B, D, T] -> [B, D, ceil(T / stride)]``.

    ``out = pool(x) * m' + DropPath(attn(LN1(x)))``; ``out = out + DropPath(MLP(LN2(out)) * m')``.
    As in ActionFormer, the drop paths (with their 1e-4 layer scales) are identities when ``drop_path`` is 0.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, stride: int = 1, mlp_ratio: int = 4,
                 drop_path: float = 0.1) -> None:
        super().__init__()
        self.ln1, self.ln2 = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.attn = LocalMaskedMHCA(dim, num_heads, window_size, stride)
        self.stride = stride
        self.pool_skip = nn.MaxPool1d(stride + 1, stride, (stride + 1) // 2) if stride > 1 else nn.Identity()
        self.mlp = nn.Sequential(nn.Conv1d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv1d(mlp_ratio * dim, dim, 1))
        if drop_path > 0:
            self.drop_path_attn: nn.Module = AffineDropPath(dim, drop_path)
            self.drop_path_mlp: nn.Module = AffineDropPath(dim, drop_path)
        else:
            self.drop_path_attn, self.drop_path_mlp = nn.Identity(), nn.Identity()

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        out, out_mask = self.attn(self.ln1(x), mask)
        m = out_mask.to(x.dtype)
        out = self.pool_skip(x) * m + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self.mlp(self.ln2(out)) * m)
        return out, out_mask


__all__ = ["LocalMaskedMHCA", "TransformerBlock"]
