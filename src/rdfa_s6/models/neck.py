"""The neck: ``FPNIdentity``, one channel LayerNorm per pyramid level, no top-down path (docs/model.md §3.6)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from torch import Tensor, nn

from .blocks import ChannelLayerNorm


class FPNIdentity(nn.Module):
    """Normalise each level's channels; masks pass through and features are not re-masked (official).

    ``forward(feats, masks)``: lists of [B, D, T_l] and [B, 1, T_l] -> the same shapes. Parameters are
    ``fpn_norms.{l}.weight/bias`` shaped (1, D, 1).
    """

    def __init__(self, dim: int, num_levels: int) -> None:
        super().__init__()
        self.fpn_norms = nn.ModuleList(ChannelLayerNorm(dim) for _ in range(num_levels))

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        if len(feats) != len(self.fpn_norms):
            raise ValueError(f"the neck expects {len(self.fpn_norms)} levels, got {len(feats)}")
        return [norm(x) for norm, x in zip(self.fpn_norms, feats)], list(masks)
