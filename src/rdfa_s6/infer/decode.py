"""Per-video candidate generation from the heads' outputs (docs/model.md §5.1) and the grid -> seconds step
(docs/model.md §2.4).

Units: the point rows ``(t, lo, hi, stride)`` hold level-0 feature steps ("grid units"), the regression
offsets are distances in units of the level's stride, and the decoded segments are in grid units. Seconds
appear only in :func:`to_seconds`, which delegates to :func:`rdfa_s6.data.coords.steps_to_seconds`.
"""
from __future__ import annotations

import logging
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from rdfa_s6.data.coords import steps_to_seconds
from rdfa_s6.errors import UserError

log = logging.getLogger(__name__)


def select_candidates(cls_logits: Sequence[Tensor], offsets: Sequence[Tensor], masks: Sequence[Tensor],
                      points: Sequence[Tensor], pre_nms_thresh: float = 0.001, pre_nms_topk: int = 2000,
                      duration_thresh: float = 0.05) -> Tuple[Tensor, Tensor, Tensor]:
    """Turn one video's pyramid outputs into scored candidate segments, as ActionFormer's inference.

    Args (one entry per pyramid level ``l``):
        cls_logits: ``[T_l, C]`` classification logits.
        offsets: ``[T_l, 2]`` (left, right) distances in multiples of the level stride (non-negative).
        masks: ``[T_l]`` bool, True on valid (non-padded) steps.
        points: ``[T_l, 4]`` rows ``(t, range_lo, range_hi, stride)``, ``t`` and ``stride`` in grid units.
        pre_nms_thresh: keep probabilities strictly above this.
        pre_nms_topk: keep at most this many (point, class) pairs **per level**, by decreasing probability
            (ties: lower flat index ``point * C + class`` first).
        duration_thresh: drop segments whose length (grid units) is ``<= duration_thresh``.

    Returns:
        ``segments [M, 2]`` (start, end) in grid units, ``scores [M]`` probabilities, ``labels [M]`` long class
        ids; levels concatenated in order, each level sorted by decreasing score.
    """
    if not len(cls_logits) == len(offsets) == len(masks) == len(points):
        raise ValueError(f"got {len(cls_logits)} cls_logits, {len(offsets)} offsets, {len(masks)} masks and "
                         f"{len(points)} points levels; they must be equal")
    segs_all, scores_all, labels_all = [], [], []
    for level, (logits, offs, mask, pts) in enumerate(zip(cls_logits, offsets, masks, points)):
        _check_level(level, logits, offs, mask, pts)
        num_classes = logits.shape[1]
        prob = (torch.sigmoid(logits) * mask[:, None].to(logits.dtype)).flatten()
        flat_idx = torch.nonzero(prob > pre_nms_thresh).flatten()
        prob = prob[flat_idx]
        prob, order = torch.sort(prob, descending=True, stable=True)
        prob, flat_idx = prob[:pre_nms_topk], flat_idx[order[:pre_nms_topk]]
        pt_idx = torch.div(flat_idx, num_classes, rounding_mode="floor")
        cls_idx = flat_idx % num_classes
        sel_offs, sel_pts = offs[pt_idx], pts[pt_idx]
        start = sel_pts[:, 0] - sel_offs[:, 0] * sel_pts[:, 3]
        end = sel_pts[:, 0] + sel_offs[:, 1] * sel_pts[:, 3]
        keep = (end - start) > duration_thresh
        segs_all.append(torch.stack((start, end), dim=-1)[keep])
        scores_all.append(prob[keep])
        labels_all.append(cls_idx[keep])
    if not segs_all:
        return torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long)
    segs, scores, labels = torch.cat(segs_all), torch.cat(scores_all), torch.cat(labels_all)
    log.debug("decode: %d candidates from %d levels", segs.shape[0], len(segs_all))
    return segs, scores, labels


def _check_level(level: int, logits: Tensor, offs: Tensor, mask: Tensor, pts: Tensor) -> None:
    t = logits.shape[0]
    if logits.dim() != 2:
        raise ValueError(f"level {level}: cls_logits must be [T, C], got {tuple(logits.shape)}")
    if tuple(offs.shape) != (t, 2):
        raise ValueError(f"level {level}: offsets must be [{t}, 2], got {tuple(offs.shape)}")
    if tuple(mask.shape) != (t,):
        raise ValueError(f"level {level}: mask must be [{t}], got {tuple(mask.shape)}")
    if pts.dim() != 2 or pts.shape[0] != t or pts.shape[1] != 4:
        raise ValueError(f"level {level}: points must be [{t}, 4], got {tuple(pts.shape)}")


def to_seconds(segments_grid, fps: float, feat_stride: float, num_frames: float,
               duration: Optional[float]):
    """Convert segments from grid units (level-0 feature steps) to seconds, clamped to ``[0, duration]``.

    ``feat_stride`` is in frames per feature step (already multiplied by any downsampling), ``num_frames`` the
    clip length in frames. Works on any shape; this is a thin wrapper so that the conversion lives in one place,
    :func:`rdfa_s6.data.coords.steps_to_seconds`. A UserError when the conversion would not give finite times
    (a NaN or infinite setting, or a frame rate so small that one step lasts longer than any float).
    """
    scales = (fps, feat_stride, num_frames, feat_stride / fps if fps else math.inf, num_frames / fps if fps else 0.0)
    if not all(math.isfinite(x) for x in scales) or (duration is not None and not math.isfinite(duration)):
        raise UserError(f"times in seconds would not be finite numbers: fps {fps}, feat_stride {feat_stride} frames, "
                        f"num_frames {num_frames} frames, duration {duration} s")
    return steps_to_seconds(segments_grid, fps, feat_stride, num_frames, duration)
