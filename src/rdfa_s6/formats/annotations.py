"""The annotation JSON (ActivityNet style, docs/model.md §2.1), read and checked once for training and evaluation.

    {"database": {"<video_id>": {"subset": "Validation", "duration": 180.2, "fps": 30.0,
                                 "annotations": [{"label": "HighJump", "segment": [12.1, 15.9], "label_id": 11}]}}}

This reader checks the shape and the types of every field of every video (``duration``, ``fps`` and ``label_id``
may be absent or null; ``annotations`` may be absent or null, meaning none) and returns the records as written,
times in seconds. The policies sit on top of the same records: training (:mod:`rdfa_s6.data.annotations`)
requires ``label_id``, ordered segments and positive durations; evaluation (:mod:`rdfa_s6.eval.groundtruth`)
keeps every event as the official code does or drops them as ActionFormer does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import DataError
from .jsonfile import Source, optional_number, parse_segment, preview, read_json, where

#: the largest ``label_id`` accepted (class ids index int32/int64 arrays)
MAX_LABEL_ID = 2**31 - 1


@dataclass(frozen=True)
class Event:
    """One annotated action: ``label`` (class name), ``start``/``end`` in seconds as written (not ordered),
    ``label_id`` the integer class id where the file gives one."""

    label: str
    start: float
    end: float
    label_id: Optional[int]


@dataclass(frozen=True)
class AnnotatedVideo:
    """One video entry: ``duration`` (seconds) and ``fps`` as written (None when absent), events in file order."""

    video_id: str
    subset: str
    duration: Optional[float]
    fps: Optional[float]
    events: Tuple[Event, ...]


@dataclass(frozen=True)
class AnnotationFile:
    """Every video of an annotation file, in file order. ``what`` and ``name`` name it in error messages."""

    name: str
    videos: Dict[str, AnnotatedVideo]
    what: str = "annotation file"

    def at(self, video: Any = None, item: Optional[str] = None, field: Optional[str] = None) -> str:
        """The location of a field for an error message (:func:`rdfa_s6.formats.jsonfile.where`)."""
        return where(self.what, self.name, video, item, field)


def read_annotations(source: Source, what: str = "annotation file") -> AnnotationFile:
    """Read and check an annotation file (a path, or its decoded JSON). ``what`` names it in messages
    (``"annotation file"``, ``"ground truth"``). Raises a one-line DataError naming the file, video and field."""
    data, name = read_json(source, what)
    return parse_annotation_file(data, name, what)


def parse_annotation_file(data: Any, name: str = "<dict>", what: str = "annotation file") -> AnnotationFile:
    """:func:`read_annotations` on JSON that is already decoded."""
    if not isinstance(data, Mapping) or not isinstance(data.get("database"), Mapping):
        raise DataError(f"{what} {name}: expected a JSON object with a 'database' object of videos")
    videos = {str(vid): _video(str(vid), entry, name, what) for vid, entry in data["database"].items()}
    return AnnotationFile(name=name, videos=videos, what=what)


def _video(vid: str, entry: Any, name: str, what: str) -> AnnotatedVideo:
    if not isinstance(entry, Mapping):
        raise DataError(f"{where(what, name, vid)}: expected an object, got {type(entry).__name__}")
    subset = entry.get("subset")
    if not isinstance(subset, str):
        raise DataError(f"{where(what, name, vid, field='subset')}: expected a string such as 'test', "
                        f"got {preview(subset)}")
    duration = optional_number(entry.get("duration"), where(what, name, vid, field="duration"))
    fps = optional_number(entry.get("fps"), where(what, name, vid, field="fps"))
    anns = entry.get("annotations")
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        raise DataError(f"{where(what, name, vid, field='annotations')}: expected a list, got {type(anns).__name__}")
    events = tuple(_event(ann, where(what, name, vid, f"annotations[{i}]")) for i, ann in enumerate(anns))
    return AnnotatedVideo(video_id=vid, subset=subset, duration=duration, fps=fps, events=events)


def _event(ann: Any, at: str) -> Event:
    if not isinstance(ann, Mapping):
        raise DataError(f"{at}: expected an object with 'label', 'segment' and 'label_id'")
    start, end = parse_segment(ann.get("segment"), f"{at}, field 'segment'")
    label = ann.get("label")
    if not isinstance(label, str) or not label:
        raise DataError(f"{at}, field 'label': expected a class name, got {preview(label)}")
    label_id = ann.get("label_id")
    if label_id is not None and (isinstance(label_id, bool) or not isinstance(label_id, int)
                                 or not 0 <= label_id <= MAX_LABEL_ID):
        raise DataError(f"{at}, field 'label_id': expected a non-negative integer class id for {label!r}, "
                        f"got {preview(label_id)}")
    return Event(label=label, start=start, end=end, label_id=label_id)


def video_durations(source: Source, what: str = "ground truth") -> Dict[str, float]:
    """Each video's ``duration`` (seconds) where the annotation file gives a positive one."""
    videos = read_annotations(source, what).videos
    return {vid: v.duration for vid, v in videos.items() if v.duration is not None and v.duration > 0}
