"""What the Python API feeds the network: user features (arrays, tensors or feature files) made into model
inputs, and the same-length groups they are batched in (:class:`rdfa_s6.api.Detector` uses these).

Units: ``fps`` frames per second of the video; ``stride`` frames between two rows of the feature array; ``window``
frames per clip. Row ``t`` is centred at ``(t * stride + window / 2) / fps`` seconds (docs/custom-data.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..config.schema import DataConfig
from ..data.batch import Batch, VideoMeta
from ..data.coords import covered_seconds
from ..data.dataset import model_input
from ..data.features import EXTENSIONS, FeatureReader
from ..data.transforms import padded_length
from ..errors import DataError, UserError
from ..filenames import utf8_id
from ..messages import shown

#: what :meth:`rdfa_s6.api.Detector.predict` accepts: a ``[T, C]`` numpy array or tensor, or a feature file's path
FeatureInput = Union[np.ndarray, Tensor, str, Path]


@dataclass
class Prepared:
    """One video made ready for the network: ``feats`` [C, T'] (after downsampling/resizing) and its meta."""

    video_id: str
    feats: Tensor
    meta: VideoMeta


def prepare_video(video_id: str, feats: FeatureInput, data: DataConfig, input_dim: int, fps: Optional[float],
                  stride: Optional[float], window: Optional[float]) -> Prepared:
    """The model input of one video, as the dataset builds it in training (downsampling by
    ``data.downsample_rate``, :func:`rdfa_s6.data.dataset.model_input`). ``fps`` is required (UserError);
    ``stride``/``window`` default to ``data.feat_stride``/``data.num_frames``."""
    utf8_id(video_id)
    if fps is None:
        raise UserError(f"video '{shown(video_id)}': fps is required: the model's config has no data.default_fps and "
                        f"its training videos had no common frame rate")
    for name, value, allow_zero in (("fps", fps, False), ("stride", stride, False), ("window", window, True)):
        if value is not None and not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
            raise UserError(f"video '{shown(video_id)}': {name} must be a positive number, got {value}")
    file_stride = float(stride if stride is not None else data.feat_stride)
    clip = float(window if window is not None else data.num_frames)
    tensor = as_features(video_id, feats, input_dim)  # [C, T] float32, every row of the file
    duration = covered_seconds(tensor.shape[1], fps, file_stride, clip)
    if not math.isfinite(duration):  # then every time in seconds (clamped to [0, duration]) is finite too
        raise UserError(f"video '{shown(video_id)}': its {tensor.shape[1]} feature steps at fps {fps}, stride "
                        f"{file_stride} and window {clip} frames would end at a time that is not a finite number")
    rate = data.downsample_rate
    tensor = tensor[:, ::rate]  # as FeatureReader does with data.downsample_rate in training
    tensor, eff_stride, num_frames = model_input(tensor, data, file_stride * rate, clip)
    return Prepared(video_id, tensor, VideoMeta(video_id, float(fps), duration, eff_stride, num_frames))


def as_features(video_id: str, feats: FeatureInput, input_dim: int) -> Tensor:
    """``[C, T]`` float32 on the CPU from a ``[T, C]`` array/tensor or a feature file; DataError naming the video
    when the shape, the dtype or the values are wrong."""
    if isinstance(feats, (str, Path)):
        path = Path(feats)
        if path.suffix not in EXTENSIONS:
            raise UserError(f"{path}: feature files must end in {', '.join(EXTENSIONS)}")
        if not path.is_file():
            raise DataError(f"feature file {path} not found")
        return FeatureReader(path.parent, "", "", path.suffix, 1, input_dim).load(path.stem)
    array = feats.detach().cpu() if isinstance(feats, Tensor) else torch.as_tensor(np.asarray(feats))
    if array.dim() != 2 or array.shape[0] == 0:
        raise DataError(f"video '{shown(video_id)}': features must be a [T, C] array with T > 0, got shape "
                        f"{tuple(array.shape)}")
    if array.shape[1] != input_dim:
        raise DataError(f"video '{shown(video_id)}': features have C={array.shape[1]} channels but the model expects "
                        f"{input_dim} ([T, C] arrays; a [C, T] array must be transposed)")
    if not array.dtype.is_floating_point:
        raise DataError(f"video '{shown(video_id)}': features must be floating point, got {array.dtype}")
    array = array.float()
    if not torch.isfinite(array).all():
        raise DataError(f"video '{shown(video_id)}': features contain NaN or Inf")
    return array.t().contiguous()


def same_length_groups(prepared: List[Prepared], batch_size: int, max_seq_len: int,
                       max_div_factor: int) -> List[List[Prepared]]:
    """Groups of at most ``batch_size`` videos that pad to the same length, in input order within a group."""
    groups: Dict[int, List[List[Prepared]]] = {}
    order: List[Tuple[int, int]] = []
    for p in prepared:
        length = padded_length([p.feats.shape[1]], max_seq_len, max_div_factor, training=False)
        bins = groups.setdefault(length, [[]])
        if len(bins[-1]) == batch_size:
            bins.append([])
        if not bins[-1]:
            order.append((length, len(bins) - 1))
        bins[-1].append(p)
    return [groups[length][i] for length, i in order]


def batch_rows(batch: Batch, chosen: List[Prepared], group: List[Prepared]) -> Batch:
    """The rows of ``batch`` (built from ``group``) that belong to ``chosen``."""
    return batch.rows([group.index(p) for p in chosen])
