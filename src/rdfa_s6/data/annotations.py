"""Annotations for training: ActionFormer-style annotation JSON (docs/model.md §2.1) as :class:`VideoRecord` objects.

    {"database": {"<video_id>": {"subset": "Validation", "duration": 180.2, "fps": 30.0,
                                 "annotations": [{"label": "HighJump", "segment": [12.1, 15.9], "label_id": 11}]}}}

The file is read and checked by :mod:`rdfa_s6.formats.annotations`; this module adds the training policy
(``label_id`` required, ordered segments, positive durations). Times stay in seconds here; conversion to feature
steps happens in :mod:`rdfa_s6.data.coords`. Every problem is reported as a :class:`~rdfa_s6.errors.DataError`
naming the file, the video and the field.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Union

import numpy as np

from ..errors import DataError
from ..formats.annotations import AnnotationFile, parse_annotation_file, read_annotations
from ..messages import shown

log = logging.getLogger(__name__)

DEFAULT_DURATION = 1e8  #: used when a video has no ``duration`` (as the official loader does)
WHAT = "annotation file"  #: how error messages name the file


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video. ``segments``: [N, 2] float64 seconds; ``labels``: [N] int64 class ids."""

    video_id: str
    subset: str
    duration: float
    fps: Optional[float]
    segments: np.ndarray
    labels: np.ndarray


@dataclass
class AnnotationSet:
    """All videos of an annotation file and the label map (class id -> name) built from ``label_id``.

    ``skipped``: ids left out of every split (``data.skip_videos_file``, :mod:`rdfa_s6.data.skiplist`); they stay
    in ``videos``, i.e. in the ground truth of the metric.
    """

    path: str
    videos: Dict[str, VideoRecord]
    label_names: Dict[int, str] = field(default_factory=dict)
    skipped: FrozenSet[str] = frozenset()

    def split(self, name: str) -> List[VideoRecord]:
        """Videos whose ``subset`` equals ``name`` ignoring case, in file order, without the skipped ones."""
        return [v for v in self.videos.values() if v.subset.lower() == name.lower() and v.video_id not in self.skipped]

    def subsets(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for v in self.videos.values():
            counts[v.subset.lower()] = counts.get(v.subset.lower(), 0) + 1
        return counts

    @property
    def num_classes(self) -> int:
        """Number of classes: one more than the largest ``label_id`` (ids are class indices)."""
        return max(self.label_names) + 1 if self.label_names else 0


#: seconds a segment may end after its video's duration before it counts as ending after the video
END_TOLERANCE = 1e-6


def ends_after_video(end: Any, duration: float) -> Any:
    """The one check of "a segment ends after the video": ``end`` (seconds, a number or an array) beyond
    ``duration``. Loading annotations warns about such segments once (:func:`load_annotations`); ``check-data``
    counts them (:mod:`rdfa_s6.data.checks`); training handles them as ``data.gt_clip`` says."""
    return end > duration + END_TOLERANCE


def late_segments(rec: "VideoRecord") -> np.ndarray:
    """The ``[N, 2]`` segments of ``rec`` that end after its duration (seconds)."""
    return rec.segments[ends_after_video(rec.segments[:, 1], rec.duration)]


def parse_annotations(data: Any, path: str = "<annotations>", default_fps: Optional[float] = None) -> AnnotationSet:
    """Validate a decoded annotation JSON for training. ``default_fps`` overrides every video's ``fps`` when set.

    On top of the format's checks (:mod:`rdfa_s6.formats.annotations`): every event has a ``label_id`` and each
    label one id (and each id one label), segments are ordered and start at 0 or later, durations and frame
    rates are positive (a missing duration is ``DEFAULT_DURATION``).
    """
    return _training_set(parse_annotation_file(data, path, WHAT), default_fps)


def _training_set(raw: AnnotationFile, default_fps: Optional[float]) -> AnnotationSet:
    videos: Dict[str, VideoRecord] = {}
    label_names: Dict[int, str] = {}
    name_to_id: Dict[str, int] = {}
    beyond = 0
    first_beyond = ""
    for vid, entry in raw.videos.items():
        duration = DEFAULT_DURATION if entry.duration is None else entry.duration
        if duration <= 0:
            raise DataError(f"{raw.at(vid, field='duration')}: expected a positive number of seconds, got {duration}")
        fps = default_fps
        if fps is None and entry.fps is not None:
            fps = entry.fps
            if fps <= 0:
                raise DataError(f"{raw.at(vid, field='fps')}: expected a positive frame rate, got {fps}")
        for i, ev in enumerate(entry.events):
            at = raw.at(vid, f"annotations[{i}]")
            if ev.end < ev.start:
                raise DataError(f"{at}, field 'segment': end {ev.end} is before start {ev.start}")
            if ev.start < 0:
                raise DataError(f"{at}, field 'segment': negative start {ev.start}")
            if ends_after_video(ev.end, duration):
                beyond += 1
                first_beyond = first_beyond or (f"video {shown(vid)!r}, annotations[{i}]: "
                                                f"[{ev.start:g}, {ev.end:g}] s, duration {duration:g} s")
            if ev.label_id is None:
                raise DataError(f"{at}, field 'label_id': expected a non-negative integer class id for "
                                f"{ev.label!r}, got None")
            if name_to_id.setdefault(ev.label, ev.label_id) != ev.label_id:
                raise DataError(f"{at}, field 'label_id': label {ev.label!r} has id {ev.label_id} here but "
                                f"{name_to_id[ev.label]} elsewhere")
            if label_names.setdefault(ev.label_id, ev.label) != ev.label:
                raise DataError(f"{at}, field 'label_id': id {ev.label_id} names both "
                                f"{label_names[ev.label_id]!r} and {ev.label!r}")
        videos[vid] = VideoRecord(
            video_id=vid, subset=entry.subset, duration=duration, fps=fps,
            segments=np.asarray([(ev.start, ev.end) for ev in entry.events], dtype=np.float64).reshape(-1, 2),
            labels=np.asarray([ev.label_id for ev in entry.events], dtype=np.int64),
        )
    if beyond:
        # common in real data (THUMOS-14): a warning, not an error. Evaluation keeps such segments as annotated
        # (as the official code does); training follows data.gt_clip (rdfa_s6.data.dataset.clip_upstream)
        log.warning("%s: %d segment(s) end after their video's duration (first: %s); kept for evaluation; "
                    "training handles them as data.gt_clip says", shown(raw.name), beyond, first_beyond)
    return AnnotationSet(path=raw.name, videos=videos, label_names=dict(sorted(label_names.items())))


def load_annotations(path: Union[str, Path], default_fps: Optional[float] = None) -> AnnotationSet:
    """Read and validate an annotation file (see the module docstring for the format)."""
    return _training_set(read_annotations(path, WHAT), default_fps)
