"""The contract between the data and the network: :class:`VideoMeta` (where a video's model input sits in time)
and :class:`Batch` (padded features, their mask, each video's meta and, for training, its targets).

Every batch is made by :meth:`Batch.pad`: the dataset's :class:`~rdfa_s6.data.dataset.Collate` (training, test,
validation) and the Python API (:class:`rdfa_s6.api.Detector`) alike.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .transforms import pad_batch


@dataclass(frozen=True)
class VideoMeta:
    """A video's model input in time. ``fps``: frames per second of the video; ``feat_stride`` and
    ``num_frames``: frames between two feature steps and frames per clip, as the model sees them (after
    ``downsample_rate`` or resizing); ``duration``: seconds (docs/model.md §2.3)."""

    video_id: str
    fps: float
    duration: float
    feat_stride: float
    num_frames: float


@dataclass(frozen=True)
class Batch:
    """Padded model inputs: ``feats`` [B, C, T] float, ``mask`` [B, 1, T] bool (True = a real feature step),
    ``meta`` one :class:`VideoMeta` per row; ``segments`` ([N_i, 2] float32, feature steps) and ``labels``
    ([N_i] int64) per row when the batch carries training targets, else None."""

    feats: Tensor
    mask: Tensor
    meta: List[VideoMeta]
    segments: Optional[List[Tensor]] = None
    labels: Optional[List[Tensor]] = None

    @classmethod
    def pad(cls, feats: Sequence[Tensor], meta: Sequence[VideoMeta], max_seq_len: int, max_div_factor: int,
            training: bool, segments: Optional[Sequence[Tensor]] = None,
            labels: Optional[Sequence[Tensor]] = None) -> "Batch":
        """Right-pad videos' [C, T_i] features with zeros to one length (docs/model.md §2.7,
        :func:`rdfa_s6.data.transforms.pad_batch`)."""
        padded, mask = pad_batch(list(feats), max_seq_len, max_div_factor, training)
        return cls(padded, mask, list(meta), None if segments is None else list(segments),
                   None if labels is None else list(labels))

    def __len__(self) -> int:
        return len(self.meta)

    def to(self, device: Union[str, torch.device]) -> "Batch":
        """The batch with ``feats`` and ``mask`` on ``device`` (targets stay where they are)."""
        return replace(self, feats=self.feats.to(device), mask=self.mask.to(device))

    def rows(self, index: Sequence[int]) -> "Batch":
        """The batch of rows ``index``, in that order."""
        if list(index) == list(range(len(self))):
            return self
        at = torch.tensor(list(index), device=self.feats.device)
        pick = [int(i) for i in index]
        return Batch(self.feats.index_select(0, at), self.mask.index_select(0, at), [self.meta[i] for i in pick],
                     None if self.segments is None else [self.segments[i] for i in pick],
                     None if self.labels is None else [self.labels[i] for i in pick])
