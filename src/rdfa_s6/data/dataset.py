"""The TAL dataset: videos of one split -> samples in feature steps -> padded batches.

    sample = {"feats" [C, T] float32, "segments" [N, 2] float32 feature steps, "labels" [N] int64,
              "meta": VideoMeta (video_id, fps, duration (s), feat_stride, num_frames (frames, after any resize))}
    batch  = Batch (feats [B, C, T], mask [B, 1, T] bool, meta, segments/labels: lists), see data/batch.py
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config.schema import DataConfig
from ..errors import DataError
from ..keyed import CROPS, keyed_seed
from .annotations import AnnotationSet, VideoRecord
from .batch import Batch, VideoMeta
from .coords import seconds_to_steps
from .features import FeatureReader
from .transforms import random_crop, resize_to_length, resized_stride

log = logging.getLogger(__name__)


class SampleError(DataError):
    """A :class:`DataError` met while loading one sample, e.g. NaN in a feature file found mid-training; raised by
    :func:`load_batches` in the main process, with the one-line message of the original error."""


@dataclass(frozen=True)
class SampleFailure:
    """A sample that could not be loaded, as a value. A ``DataLoader`` worker sends it back like any sample (an
    exception would come back as PyTorch's traceback text), :class:`Collate` passes it on as the batch and
    :func:`load_batches` raises it."""

    message: str


class _Guarded(Dataset):
    """``dataset[index]``, or a :class:`SampleFailure` for a DataError."""

    def __init__(self, dataset: "TALDataset") -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except DataError as err:
            return SampleFailure(str(err))


def load_batches(dataset: "TALDataset", collate: "Collate", **loader_options: Any) -> Iterator[Batch]:
    """The batches of a ``DataLoader(dataset, collate_fn=collate, **loader_options)``; a sample's DataError, also
    in a worker process, is raised here as :class:`SampleError` with its one-line message."""
    for batch in DataLoader(_Guarded(dataset), collate_fn=collate, **loader_options):
        if isinstance(batch, SampleFailure):
            raise SampleError(batch.message)
        yield batch


def clip_upstream(segments: np.ndarray, labels: np.ndarray, length: int, feat_stride: float, num_frames: float,
                  trunc_thresh: float) -> Tuple[np.ndarray, np.ndarray]:
    """``data.gt_clip: upstream``: training targets limited to the features as video-mamba-suite's ActivityNet,
    HACS and FineAction loaders do.

    The cut is at ``limit = length + 0.5 * num_frames / feat_stride`` feature steps: the end of the last clip
    (the centre of step ``length - 1`` plus half a clip), with the effective stride and clip length (after
    ``downsample_rate`` or resizing). A segment starting at or after ``limit`` is dropped, one with less than
    ``trunc_thresh`` of its length before ``limit`` is dropped (zero-length segments too), the others end at
    ``min(end, limit)``. Such segments come from annotation errors or videos with missing frames.

    Args:
        segments: [N, 2] feature steps; labels: [N]; length: T of the features.
    Returns:
        (segments [M, 2], labels [M]), M <= N, in the input order.
    """
    limit = length + 0.5 * num_frames / feat_stride
    inside = np.minimum(segments[:, 1], limit) - segments[:, 0]
    seg_len = segments[:, 1] - segments[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (segments[:, 0] < limit) & (inside / seg_len >= trunc_thresh)  # 0/0 = nan: never kept
    segments = segments[keep].copy()
    segments[:, 1] = np.minimum(segments[:, 1], limit)
    return segments, labels[keep]


def model_input(feats: Tensor, cfg: DataConfig, feat_stride: float, num_frames: float) -> Tuple[Tensor, float, float]:
    """What the model sees of a video's [C, T] features and the effective stride and clip length in frames:
    with ``force_upsampling`` the features are resized to ``max_seq_len`` steps (docs/model.md §2.5), else unchanged.
    Shared by the dataset (train, test) and ``rdfa-s6 infer``."""
    if cfg.force_upsampling:
        feat_stride, num_frames = resized_stride(feats.shape[1], feat_stride, num_frames, cfg.max_seq_len)
        feats = resize_to_length(feats, cfg.max_seq_len)
    return feats, float(feat_stride), float(num_frames)


class TALDataset(Dataset):
    """Videos of one split. Training samples are randomly cropped (docs/model.md §2.6); ``seed`` fixes the crops.

    Args:
        records: the split's videos; reader: where their features are; cfg: the ``data`` config section.
        num_classes: with ``cfg.class_agnostic`` every label becomes 0.
    """

    def __init__(self, records: List[VideoRecord], reader: FeatureReader, cfg: DataConfig, training: bool,
                 seed: int = 0) -> None:
        self.records, self.reader, self.cfg, self.training = records, reader, cfg, training
        self.seed = seed
        self.epoch = 0  # segments that end after the video: warned about once, when the annotations are loaded

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Crops depend on (seed, epoch, index) only: identical across runs, workers and resumptions."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> Dict[str, Any]:
        rec = self.records[index]
        cfg = self.cfg
        try:
            feats = self.reader.load(rec.video_id)
        except DataError as err:
            raise SampleError(str(err)) from None
        fps = rec.fps
        if fps is None:
            raise SampleError(f"video {rec.video_id!r}: no 'fps' in the annotations and no data.default_fps set")
        feats, stride, num_frames = model_input(feats, cfg, cfg.feat_stride * cfg.downsample_rate, cfg.num_frames)
        labels = np.zeros_like(rec.labels) if cfg.class_agnostic else rec.labels.copy()
        segments = seconds_to_steps(rec.segments, fps, stride, num_frames).astype(np.float32)
        if self.training:
            if cfg.gt_clip == "upstream":
                segments, labels = clip_upstream(segments, labels, feats.shape[1], stride, num_frames,
                                                 cfg.trunc_thresh)
            # gt_clip "none" (official THUMOS-14 loader): segments stay as annotated. A crop drops those outside
            # its window; uncropped, the points of a segment beyond the features are padding, masked in the loss
            rng = random.Random(keyed_seed(CROPS, self.seed, self.epoch, index))
            feats, segments, labels = random_crop(feats, segments, labels, cfg.max_seq_len, cfg.trunc_thresh,
                                                  cfg.crop_ratio, rng)
        return {
            "feats": feats,
            "segments": torch.as_tensor(segments, dtype=torch.float32).reshape(-1, 2),
            "labels": torch.as_tensor(labels, dtype=torch.int64),
            "meta": VideoMeta(rec.video_id, float(fps), rec.duration, float(stride), float(num_frames)),
        }


class Collate:
    """Pads a list of samples into a batch (docs/model.md §2.7); picklable for DataLoader workers."""

    def __init__(self, max_seq_len: int, max_div_factor: int, training: bool) -> None:
        self.max_seq_len, self.max_div_factor, self.training = max_seq_len, max_div_factor, training

    def __call__(self, samples: List[Dict[str, Any]]) -> Any:
        """The :class:`Batch` of ``samples``, or the first :class:`SampleFailure` among them."""
        failed = [s for s in samples if isinstance(s, SampleFailure)]
        if failed:
            return failed[0]
        return Batch.pad([s["feats"] for s in samples], [s["meta"] for s in samples], self.max_seq_len,
                         self.max_div_factor, self.training, segments=[s["segments"] for s in samples],
                         labels=[s["labels"] for s in samples])


def split_records(annotations: AnnotationSet, split: str) -> List[VideoRecord]:
    """The videos of ``split``; an empty split is an error naming the splits that exist."""
    records = annotations.split(split)
    if not records:
        found = ", ".join(f"{k} ({v})" for k, v in sorted(annotations.subsets().items())) or "none"
        raise DataError(f"{annotations.path}: no video has subset {split!r}; subsets found: {found}")
    return records
