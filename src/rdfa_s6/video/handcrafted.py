"""``colour-motion``: a weight-free clip feature (no training, no download), for demos and tests.

Each frame is average-pooled to a ``GRID x GRID`` grid of RGB cells (pixel values in [0, 1]). For a clip of
``W`` frames ``x [B, 3, W, GRID, GRID]`` the feature ``[B, 4 * 3 * GRID^2 + GRID^2]`` concatenates, per cell:

1. the mean colour over the clip (what is where),
2. the second half's mean minus the first half's (which way things move or change),
3. the standard deviation over time (how much changes),
4. the mean absolute frame-to-frame difference, averaged over RGB (motion energy),
5. the mean colour of the clip's middle frame (a sharp snapshot of where the action is at the clip's centre).

It sees colours, positions and motion of large shapes, which is what the synthetic demo videos are made of;
it knows nothing about people or objects, so on real videos use a trained network.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .backbones import Backbone, register

GRID = 4


class ColourMotion(nn.Module):
    """``[B, 3, W, H, W]`` (pixel values in [0, 1]) -> ``[B, 4 * 3 * GRID^2 + GRID^2]`` float32."""

    def __init__(self, grid: int = GRID):
        super().__init__()
        self.grid = grid

    def forward(self, x: Tensor) -> Tensor:
        b, c, t = x.shape[:3]
        cells = F.adaptive_avg_pool3d(x.float(), (t, self.grid, self.grid))  # [B, 3, W, g, g]
        half = max(t // 2, 1)
        mean = cells.mean(dim=2)
        change = cells[:, :, half:].mean(dim=2) - cells[:, :, :half].mean(dim=2) if t > 1 else torch.zeros_like(mean)
        spread = cells.std(dim=2, unbiased=False)
        if t > 1:
            energy = (cells[:, :, 1:] - cells[:, :, :-1]).abs().mean(dim=(1, 2))
        else:
            energy = torch.zeros_like(mean[:, 0])
        middle = cells[:, :, t // 2]
        return torch.cat([mean.flatten(1), change.flatten(1), spread.flatten(1), energy.flatten(1),
                          middle.flatten(1)], dim=1)


@register("colour-motion")
def colour_motion(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    dim = 4 * 3 * GRID * GRID + GRID * GRID
    return Backbone("colour-motion", ColourMotion(), dim, 32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
