"""Reading ActionFormer-style annotation JSON (docs/model.md §2.1) into validated :class:`VideoRecord` objects.

    {"database": {"<video_id>": {"subset": "Validation", "duration": 180.2, "fps": 30.0,
                                 "annotations": [{"label": "HighJump", "segment": [12.1, 15.9], "label_id": 11}]}}}

Times stay in seconds here; conversion to feature steps happens in :mod:`rdfa_s6.data.coords`.
Every problem is reported as a :class:`~rdfa_s6.errors.DataError` naming the file, the video and the field.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Union

import numpy as np

from ..errors import DataError

log = logging.getLogger(__name__)

DEFAULT_DURATION = 1e8  #: used when a video has no ``duration`` (as the official loader does)


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


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise DataError(f"{where}: expected a finite number, got an integer with {len(str(value))} digits") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: expected a finite number, got {value}")
    return value


def read_json(path: Union[str, Path], what: str = "annotation file") -> Any:
    """Parse a JSON file, turning every I/O or syntax problem into a one-line :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read {what} ({err})") from None


def parse_annotations(data: Any, path: str = "<annotations>", default_fps: Optional[float] = None) -> AnnotationSet:
    """Validate a decoded annotation JSON. ``default_fps`` overrides every video's ``fps`` when set."""
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise DataError(f"{path}: expected a JSON object with a 'database' object of videos")
    videos: Dict[str, VideoRecord] = {}
    label_names: Dict[int, str] = {}
    name_to_id: Dict[str, int] = {}
    beyond = 0
    first_beyond = ""
    for vid, entry in data["database"].items():
        where = f"{path}: video {vid!r}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
        subset = entry.get("subset")
        if not isinstance(subset, str):
            raise DataError(f"{where}: field 'subset' must be a string such as 'test', got {subset!r}")
        duration = DEFAULT_DURATION if entry.get("duration") is None else _number(entry["duration"], f"{where}, field 'duration'")
        if duration <= 0:
            raise DataError(f"{where}, field 'duration': expected a positive number of seconds, got {duration}")
        fps = default_fps
        if fps is None and entry.get("fps") is not None:
            fps = _number(entry["fps"], f"{where}, field 'fps'")
            if fps <= 0:
                raise DataError(f"{where}, field 'fps': expected a positive frame rate, got {fps}")
        annotations = entry.get("annotations", [])
        if annotations is None:
            annotations = []
        if not isinstance(annotations, list):
            raise DataError(f"{where}: field 'annotations' must be a list")
        segments, labels = [], []
        for i, ann in enumerate(annotations):
            awhere = f"{where}, annotations[{i}]"
            if not isinstance(ann, dict):
                raise DataError(f"{awhere}: expected an object with 'label', 'segment' and 'label_id'")
            seg = ann.get("segment")
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise DataError(f"{awhere}, field 'segment': expected [start_s, end_s], got {seg!r}")
            start = _number(seg[0], f"{awhere}, field 'segment'[0]")
            end = _number(seg[1], f"{awhere}, field 'segment'[1]")
            if end < start:
                raise DataError(f"{awhere}, field 'segment': end {end} is before start {start}")
            if start < 0:
                raise DataError(f"{awhere}, field 'segment': negative start {start}")
            if end > duration + 1e-6:
                beyond += 1
                first_beyond = first_beyond or (f"video {vid!r}, annotations[{i}]: [{start:g}, {end:g}] s, "
                                                f"duration {duration:g} s")
            name = ann.get("label")
            if not isinstance(name, str) or not name:
                raise DataError(f"{awhere}, field 'label': expected a class name, got {name!r}")
            label_id = ann.get("label_id")
            if isinstance(label_id, bool) or not isinstance(label_id, int) or not 0 <= label_id < 2**31:
                raise DataError(f"{awhere}, field 'label_id': expected a non-negative integer class id for "
                                f"{name!r}, got {label_id!r}")
            if name_to_id.setdefault(name, label_id) != label_id:
                raise DataError(f"{awhere}, field 'label_id': label {name!r} has id {label_id} here but "
                                f"{name_to_id[name]} elsewhere")
            if label_names.setdefault(label_id, name) != name:
                raise DataError(f"{awhere}, field 'label_id': id {label_id} names both {label_names[label_id]!r} "
                                f"and {name!r}")
            segments.append((start, end))
            labels.append(label_id)
        videos[str(vid)] = VideoRecord(
            video_id=str(vid), subset=subset, duration=duration, fps=fps,
            segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
            labels=np.asarray(labels, dtype=np.int64),
        )
    if beyond:
        # common in real data (THUMOS-14): a warning, not an error. Evaluation keeps such segments as annotated
        # (as the official code does); training follows data.gt_clip (rdfa_s6.data.dataset.clip_upstream)
        log.warning("%s: %d segment(s) end after their video's duration (first: %s); kept for evaluation; "
                    "training handles them as data.gt_clip says", path, beyond, first_beyond)
    return AnnotationSet(path=path, videos=videos, label_names=dict(sorted(label_names.items())))


def load_annotations(path: Union[str, Path], default_fps: Optional[float] = None) -> AnnotationSet:
    """Read and validate an annotation file (see the module docstring for the format)."""
    return parse_annotations(read_json(path), str(path), default_fps)
