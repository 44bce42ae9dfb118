"""Clip index arithmetic: which frames make feature step ``t`` (pure functions, no decoding).

Frames are indexed ``0..N-1`` on the grid the features are computed on: the video's own frames, or frames
resampled to a fixed rate (:func:`resample_times`). With ``S`` = stride and ``W`` = window (both in frames),
clip ``i`` covers frames ``[i*S, i*S + W)``:

    T = floor((N - W) / S) + 1      for N >= W    (an incomplete tail is dropped)
    T = 1                           for 0 < N < W (the clip is padded by repeating the last frame)
    T = 0                           for N = 0

The feature of step ``t`` is centred at frame ``t*S + W/2``, i.e. at ``(t*S + W/2) / fps`` seconds: exactly the
convention of :mod:`rdfa_s6.data.coords` (``feat_stride = S``, ``num_frames = W``), so features written by
``rdfa-s6 extract`` need no further conversion.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np


def num_clips(num_frames: int, window: int, stride: int) -> int:
    """Number of clips (feature steps ``T``) of a video of ``num_frames`` frames."""
    _check(window, stride)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames == 0:
        return 0
    if num_frames < window:
        return 1
    return (num_frames - window) // stride + 1


def clip_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """First frame of every clip: ``[T]`` int64, ``i * stride``."""
    return np.arange(num_clips(num_frames, window, stride), dtype=np.int64) * stride


def clip_frame_indices(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Frame indices of every clip: ``[T, window]`` int64; clip ``i`` is ``i*S .. i*S + W - 1``, indices past the
    last frame (only when ``num_frames < window``) repeat the last frame."""
    starts = clip_starts(num_frames, window, stride)
    idx = starts[:, None] + np.arange(window, dtype=np.int64)[None, :]
    return np.minimum(idx, max(num_frames - 1, 0))


def used_frames(num_frames: int, window: int, stride: int) -> int:
    """Frames covered by the clips (the dropped tail excluded): ``(T - 1) * S + W`` for ``N >= W``, else ``N``."""
    t = num_clips(num_frames, window, stride)
    if t == 0 or num_frames < window:
        return num_frames
    return (t - 1) * stride + window


def step_centre_seconds(step, fps: float, window: int, stride: int):
    """Centre of feature step ``step`` in seconds: ``(step * S + W / 2) / fps`` (floats or arrays)."""
    _check(window, stride)
    return (step * stride + 0.5 * window) / fps


def resampled_count(duration: float, fps: float) -> int:
    """Frames of a video of ``duration`` seconds resampled to ``fps``: the ``j >= 0`` with ``j / fps < duration``.

    A tolerance of 1e-6 frames absorbs rounding, so 90 frames at 30 fps (3.0 s) resample to exactly 90 at 30 fps
    and 30 at 10 fps.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if duration <= 0:
        return 0
    return max(0, math.ceil(duration * fps - 1e-6))


def resample_times(duration: float, fps: float) -> np.ndarray:
    """Times (s) of the resampled frames: ``j / fps`` for ``j < resampled_count(duration, fps)``.

    Resampled frame ``j`` shows the last source frame that starts at or before ``j / fps`` (see
    :func:`pick_source_frames`).
    """
    return np.arange(resampled_count(duration, fps), dtype=np.float64) / fps


def pick_source_frames(source_times: np.ndarray, target_times: np.ndarray) -> np.ndarray:
    """For each target time, the index of the last source frame whose time is <= it (+1e-6 s tolerance); 0
    when the target precedes every source frame. ``source_times`` must be non-decreasing: ``[N]`` seconds."""
    idx = np.searchsorted(np.asarray(source_times, dtype=np.float64), np.asarray(target_times) + 1e-6,
                          side="right") - 1
    return np.maximum(idx, 0)


class ClipCutter:
    """The clip rule above, applied incrementally: frames go in one at a time (``push``), each clip comes out
    once, as soon as its last frame has arrived; ``finish()`` gives the padded clip of a video shorter than one
    window. The one home of the clip-cutting loop (``extract`` and ``watch`` both cut clips with it).

    Only the frames a later clip still needs are kept: at most ``window`` frames (plus the frames of a clip
    being stacked), whatever the video's length. Frames are ``[H, W, 3]`` uint8 arrays (any shape, all alike);
    a clip is their stack ``[window, H, W, 3]``.
    """

    def __init__(self, window: int, stride: int):
        _check(window, stride)
        self.window, self.stride = int(window), int(stride)
        self._buf: List[np.ndarray] = []  # frames from index ``_base`` on
        self._base = 0
        self._next_start = 0
        #: frames pushed so far (``N`` of the rule)
        self.frames = 0
        #: clips given out so far
        self.clips = 0

    def push(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """Add the next frame; the clip it completes (``[window, ...]``), else None. With ``stride > window`` the
        frames between clips are counted and dropped."""
        self._buf.append(frame)
        self.frames += 1
        if self.frames != self._next_start + self.window:
            self._trim()
            return None
        lo = self._next_start - self._base
        clip = np.stack(self._buf[lo : lo + self.window])
        self._next_start += self.stride
        self.clips += 1
        self._trim()
        return clip

    def _trim(self) -> None:
        """Drop the frames before the next clip's start (none are needed again)."""
        drop = min(self._next_start - self._base, len(self._buf))
        if drop > 0:
            del self._buf[:drop]
            self._base += drop

    def finish(self) -> Optional[np.ndarray]:
        """After the last frame: the one clip of a video shorter than ``window`` (padded by repeating its last
        frame), else None (an incomplete tail is dropped, as :func:`num_clips` says)."""
        if 0 < self.frames < self.window:
            self.clips += 1
            return np.stack(self._buf + [self._buf[-1]] * (self.window - self.frames))
        return None


def _check(window: int, stride: int) -> None:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive whole number of frames, got {window}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive whole number of frames, got {stride}")
