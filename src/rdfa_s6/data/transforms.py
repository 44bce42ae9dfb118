"""Training crops, fixed-length resizing and padding with masks (docs/model.md §2.6, 2.5, 2.7).

All lengths and segments here are in feature steps; features are [C, T] float32.
"""
from __future__ import annotations

import math
import random
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MAX_CROP_ATTEMPTS = 200


def random_crop(
    feats: Tensor,
    segments: np.ndarray,
    labels: np.ndarray,
    max_seq_len: int,
    trunc_thresh: float,
    crop_ratio: Optional[Sequence[float]],
    rng: random.Random,
) -> Tuple[Tensor, np.ndarray, np.ndarray]:
    """ActionFormer's ``truncate_feats``: a random window of at most ``max_seq_len`` steps.

    Args:
        feats: [C, T]; segments: [N, 2] feature steps; labels: [N].
        crop_ratio: [lo, hi]: a video no longer than ``max_seq_len`` is cropped to a random length in
            [round(lo T), round(hi T)] (None: left whole); longer videos get exactly ``max_seq_len``.
        rng: the random source (Python's ``random``, as the official code).
    Returns:
        The cropped features, the segments that keep at least ``trunc_thresh`` of their length inside the
        window (clipped to it and shifted to start at 0) and their labels. If no window in 200 attempts keeps
        a segment, the last window is used and may hold none.
    """
    length = feats.shape[1]
    if length <= max_seq_len:
        if crop_ratio is None:
            return feats, segments, labels
        lo = max(round(crop_ratio[0] * length), 1)
        hi = min(round(crop_ratio[1] * length), length)
        target = rng.randint(lo, max(lo, hi))
        if target >= length:
            return feats, segments, labels
    else:
        target = max_seq_len
    if len(segments) == 0:
        start = rng.randint(0, length - target)
        return feats[:, start : start + target], segments, labels
    seg_len = np.abs(segments[:, 1] - segments[:, 0])
    for _ in range(MAX_CROP_ATTEMPTS):
        start = rng.randint(0, length - target)
        end = start + target
        left = np.maximum(segments[:, 0], start)
        right = np.minimum(segments[:, 1], end)
        inter = np.clip(right - left, 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = inter / seg_len >= trunc_thresh  # zero-length segments never count (nan)
        if keep.any():
            break
    kept = np.stack([left, right], axis=1)[keep] - start
    return feats[:, start:end], kept, labels[keep]


def resize_to_length(feats: Tensor, length: int) -> Tensor:
    """Linear interpolation (``align_corners=False``) of [C, T] features to exactly ``length`` steps."""
    if feats.shape[1] == length:
        return feats
    return F.interpolate(feats[None], size=length, mode="linear", align_corners=False)[0]


def resized_stride(raw_length: int, feat_stride: float, num_frames: float, length: int) -> Tuple[float, float]:
    """Effective (feat_stride, num_frames) in frames after resizing ``raw_length`` steps to ``length``
    (docs/model.md §2.5)."""
    stride = ((raw_length - 1) * feat_stride + num_frames) / length
    return stride, stride


def padded_length(lengths: Sequence[int], max_seq_len: int, max_div_factor: int, training: bool) -> int:
    """Length every sample of a batch is padded to (docs/model.md §2.7).

    Training: exactly ``max_seq_len`` (samples must not be longer). Inference: ``max_seq_len`` when the
    longest sample fits, else the longest length rounded up to a multiple of ``max_div_factor``.
    """
    longest = max(lengths)
    if training:
        if longest > max_seq_len:
            raise ValueError(f"a training sample has {longest} steps, more than max_seq_len={max_seq_len}")
        return max_seq_len
    if longest <= max_seq_len:
        return max_seq_len
    return int(math.ceil(longest / max_div_factor) * max_div_factor)


def pad_batch(feats: List[Tensor], max_seq_len: int, max_div_factor: int, training: bool) -> Tuple[Tensor, Tensor]:
    """Right-pad [C, T_i] features with zeros. Returns feats [B, C, T] and mask [B, 1, T] (True = valid)."""
    lengths = [f.shape[1] for f in feats]
    target = padded_length(lengths, max_seq_len, max_div_factor, training)
    batch = feats[0].new_zeros(len(feats), feats[0].shape[0], target)
    mask = torch.zeros(len(feats), 1, target, dtype=torch.bool)
    for i, (f, n) in enumerate(zip(feats, lengths)):
        batch[i, :, :n] = f
        mask[i, :, :n] = True
    return batch, mask
