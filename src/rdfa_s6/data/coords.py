"""Seconds <-> feature steps: the only place where the two units meet (docs/model.md §2.4).

A video's features are one vector per clip of ``num_frames`` frames, taken every ``feat_stride`` frames
(``feat_stride`` already multiplied by any temporal downsampling). Feature step ``i`` is the clip whose centre
frame is ``i * feat_stride + num_frames / 2``. Hence

    step    = (seconds * fps - num_frames / 2) / feat_stride
    seconds = (step * feat_stride + num_frames / 2) / fps

Worked example (THUMOS-14: fps 30, feat_stride 4, num_frames 16): an action starting at 10.0 s starts at
step (10 * 30 - 8) / 4 = 73.0, and step 73.0 maps back to (73 * 4 + 8) / 30 = 10.0 s.

The video a file of ``T`` steps comes from: its last clip starts at frame ``(T - 1) * feat_stride`` and ends
``num_frames`` later, so the features cover ``((T - 1) * feat_stride + num_frames) / fps`` seconds
(:func:`covered_seconds`); :func:`expected_steps` is the inverse.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # the functions take tensors too; this module does not import torch
    import torch

#: a time or an array of times: the result has the input's type
Times = TypeVar("Times", float, npt.NDArray[np.floating[Any]], "torch.Tensor")


def seconds_to_steps(seconds: Times, fps: float, feat_stride: float, num_frames: float) -> Times:
    """Convert times in seconds to feature steps (grid units). Works on floats, numpy arrays and tensors.

    Small negative results (an action that starts before the first clip centre) are kept.
    """
    _check(fps, feat_stride)
    return (seconds * fps - 0.5 * num_frames) / feat_stride


def steps_to_seconds(
    steps: Times, fps: float, feat_stride: float, num_frames: float, duration: Optional[float] = None
) -> Times:
    """Convert feature steps to seconds; with ``duration`` the result is clamped to ``[0, duration]``.

    Works on floats, numpy arrays and torch tensors (the result has the input's type).
    """
    _check(fps, feat_stride)
    seconds = (steps * feat_stride + 0.5 * num_frames) / fps
    if duration is None:
        return seconds
    if isinstance(seconds, (float, int)):
        return float(min(max(seconds, 0.0), duration))
    return seconds.clip(0.0, duration)


def covered_seconds(num_steps: float, fps: float, feat_stride: float, num_frames: float) -> float:
    """Seconds covered by ``num_steps`` clips of ``num_frames`` frames taken every ``feat_stride`` frames.

    That is ``((num_steps - 1) * feat_stride + num_frames) / fps``: the end of the last clip, i.e. the centre of
    step ``num_steps - 1`` (:func:`steps_to_seconds`) plus half a clip. 0 for no steps.
    """
    _check(fps, feat_stride)
    if num_steps <= 0:
        return 0.0
    return ((num_steps - 1) * feat_stride + num_frames) / fps


def expected_steps(duration: float, fps: float, feat_stride: float, num_frames: float) -> float:
    """Feature steps a video of ``duration`` seconds yields (inverse of :func:`covered_seconds`, at least 0)."""
    _check(fps, feat_stride)
    return max(0.0, (duration * fps - num_frames) / feat_stride + 1)


def _check(fps: float, feat_stride: float) -> None:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not feat_stride > 0:
        raise ValueError(f"feat_stride must be positive, got {feat_stride}")
