"""Label assignment: ActionFormer's center-sampled point assignment (docs/model.md §4.1).

All coordinates are level-0 feature steps. ``points``: [M, 4] rows ``(t, range_lo, range_hi, stride)``,
the concatenation of every pyramid level's points.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor

MIN_LEN_TOLERANCE = 1e-3


@torch.no_grad()
def assign_video(points: Tensor, segments: Tensor, labels: Tensor, num_classes: int,
                 center_sample_radius: float = 1.5) -> Tuple[Tensor, Tensor]:
    """Targets for one video.

    Args:
        points: [M, 4]; segments: [N, 2] ground truth (feature steps); labels: [N] class ids.
    Returns:
        cls_targets [M, num_classes] float in {0, 1} (multi-hot when GTs of equal minimal length overlap),
        reg_targets [M, 2] (left, right) distances divided by the point's stride (zero for negatives).
    """
    num_points = points.shape[0]
    if segments.numel() == 0:
        return points.new_zeros(num_points, num_classes), points.new_zeros(num_points, 2)
    segments = segments.to(points.dtype)
    t, lo, hi, stride = points[:, 0:1], points[:, 1:2], points[:, 2:3], points[:, 3:4]   # [M, 1]
    starts, ends = segments[:, 0][None], segments[:, 1][None]                             # [1, N]
    lengths = (ends - starts).expand(num_points, -1)                                      # [M, N]
    left, right = t - starts, ends - t                                                    # [M, N]

    center = 0.5 * (starts + ends)
    radius = stride * center_sample_radius
    inner_left = t - torch.maximum(center - radius, starts)
    inner_right = torch.minimum(center + radius, ends) - t
    inside = torch.minimum(inner_left, inner_right) > 0

    reach = torch.maximum(left, right)
    in_range = (reach >= lo) & (reach <= hi)

    candidate_len = lengths.masked_fill(~(inside & in_range), float("inf"))
    min_len, best = candidate_len.min(dim=1)                                              # [M]
    positive = torch.isfinite(min_len)
    # every GT within +1e-3 of the minimal length also gives its class (multi-label positives)
    ties = (candidate_len <= (min_len[:, None] + MIN_LEN_TOLERANCE)) & positive[:, None]
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).to(points.dtype)   # [N, K]
    cls_targets = (ties.to(points.dtype) @ onehot).clamp_(max=1.0)
    idx = torch.arange(num_points, device=points.device)
    reg = torch.stack([left[idx, best], right[idx, best]], dim=1) / stride
    reg_targets = torch.where(positive[:, None], reg, torch.zeros_like(reg))
    return cls_targets, reg_targets


def assign_batch(points: List[Tensor], segments: Sequence[Tensor], labels: Sequence[Tensor], num_classes: int,
                 center_sample_radius: float = 1.5) -> Tuple[Tensor, Tensor]:
    """Targets for a batch: ``points`` per level [M_l, 4] (on the model's device), ``segments[b]`` [N_b, 2] and
    ``labels[b]`` [N_b] per video -> cls [B, M, K], reg [B, M, 2] with M = sum of M_l."""
    pts = torch.cat(points)
    cls_t, reg_t = zip(*(assign_video(pts, seg.to(pts.device), lab.to(pts.device), num_classes, center_sample_radius)
                         for seg, lab in zip(segments, labels)))
    return torch.stack(cls_t), torch.stack(reg_t)
