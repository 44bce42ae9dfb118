"""Ground truth of one split from an ActionFormer-style annotation JSON.

The file looks like ``{"database": {video_id: {"subset", "duration", "fps", "annotations": [{"label",
"segment": [start_s, end_s], "label_id"}]}}}``. Two policies decide which ground-truth events are kept:

``"official"``
    what ActivityNet's ``Evaluation/eval_detection.py`` does: every annotation of the split is kept as is,
    zero-length and duplicated events included; classes are the labels present in the split, in the order
    they are first seen.
``"actionformer"``
    what ActionFormer's evaluation does: events with ``end - start <= 0`` are dropped, as are duplicates
    (same label, both boundaries within 1e-3 s of an earlier event of the same video); classes are the
    sorted set of labels present in the split (sorted by ``label_id`` when every event has one, else by name).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

import numpy as np

from ..errors import DataError, UserError

log = logging.getLogger(__name__)

GT_POLICIES = ("official", "actionformer")
#: boundary tolerance (seconds) of the ActionFormer duplicate test
DUPLICATE_TOL = 1e-3


@dataclass
class GroundTruth:
    """Ground-truth events of one split as flat arrays.

    ``videos``: ids of every video of the split (annotated or not), index = video number.
    ``labels``: class names, index = class number. ``video``, ``label``: int64 [G]; ``start``, ``end``:
    float64 [G] seconds. ``label_ids``: the annotation file's integer ``label_id`` of each class name (where
    given), used to read predictions whose label is an integer.
    """

    videos: List[str]
    labels: List[str]
    video: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label_ids: Dict[str, int] = field(default_factory=dict)
    source: str = "<dict>"

    @property
    def num_gt(self) -> int:
        return int(self.video.shape[0])


def read_json(path_or_dict: Union[str, Path, Mapping[str, Any]], what: str) -> Tuple[Any, str]:
    """Return ``(data, name)``: the parsed JSON of a path, or a dict given directly (named ``<dict>``)."""
    if isinstance(path_or_dict, Mapping):
        return path_or_dict, "<dict>"
    if not isinstance(path_or_dict, (str, Path)):
        raise UserError(f"{what}: expected a path or a dict, got {type(path_or_dict).__name__}")
    path = Path(path_or_dict)
    try:
        with open(path, "r", encoding="utf-8") as fobj:
            return json.load(fobj), str(path)
    except FileNotFoundError:
        raise DataError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{what} file {path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{what} file {path}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except (ValueError, RecursionError) as err:  # e.g. a NUL byte in the path, absurdly deep nesting
        raise DataError(f"{what} file {path}: cannot read: {err}") from None


def preview(value: Any, limit: int = 40) -> str:
    """A short ``repr`` of a value for an error message (never raises)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - huge ints, absurd nesting: only the type is shown
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_number(value: Any, where: str) -> float:
    """A finite float from a JSON number (not a bool), or a DataError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: expected a number, got {type(value).__name__} {preview(value)}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise DataError(f"{where}: expected a finite number, got {preview(value)}")
    return out


def parse_segment(seg: Any, where: str) -> Tuple[float, float]:
    """``[start_s, end_s]`` as two floats, or a DataError naming ``where``."""
    if not isinstance(seg, (list, tuple)) or len(seg) != 2:
        raise DataError(f"{where}: expected a list [start, end] of two numbers, got {preview(seg, 60)}")
    return parse_number(seg[0], f"{where}[0]"), parse_number(seg[1], f"{where}[1]")


def _dedupe_actionformer(events: List[Tuple[str, float, float]]) -> List[Tuple[str, float, float]]:
    """Drop ``end - start <= 0`` and same-label events whose both boundaries are within 1e-3 s of a kept one."""
    kept: List[Tuple[str, float, float]] = []
    for lab, s, e in events:
        if e - s <= 0:
            continue
        if any(k[0] == lab and abs(k[1] - s) <= DUPLICATE_TOL and abs(k[2] - e) <= DUPLICATE_TOL for k in kept):
            continue
        kept.append((lab, s, e))
    return kept


def load_ground_truth(
    path_or_dict: Union[str, Path, Mapping[str, Any]], subset: str = "test", gt_policy: str = "official"
) -> GroundTruth:
    """Load the ground truth of ``subset`` (case-insensitive) with the given ``gt_policy``.

    Raises :class:`DataError` for a malformed file (naming the video and field) or a split without videos,
    :class:`UserError` for an unknown policy.
    """
    if gt_policy not in GT_POLICIES:
        raise UserError(f"gt_policy must be one of {', '.join(GT_POLICIES)}, got {gt_policy!r}")
    data, name = read_json(path_or_dict, "ground truth")
    if not isinstance(data, Mapping) or not isinstance(data.get("database"), Mapping):
        raise DataError(f"ground truth {name}: expected an object with a 'database' object of videos")
    want = str(subset).lower()
    videos: List[str] = []
    rows: List[Tuple[int, str, float, float]] = []
    label_ids: Dict[str, int] = {}
    subsets = set()
    for vid, entry in data["database"].items():
        where = f"ground truth {name}: video {vid}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("subset"), str):
            raise DataError(f"{where}: expected an object with a string field 'subset'")
        subsets.add(entry["subset"])
        if entry["subset"].lower() != want:
            continue
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            raise DataError(f"{where}: field 'annotations' must be a list")
        events: List[Tuple[str, float, float]] = []
        for i, ann in enumerate(anns):
            if not isinstance(ann, Mapping) or not isinstance(ann.get("label"), str):
                raise DataError(f"{where}: annotations[{i}].label: expected a string")
            s, e = parse_segment(ann.get("segment"), f"{where}: annotations[{i}].segment")
            lid = ann.get("label_id")
            if isinstance(lid, int) and not isinstance(lid, bool):
                label_ids.setdefault(ann["label"], lid)
            events.append((ann["label"], s, e))
        if gt_policy == "actionformer":
            events = _dedupe_actionformer(events)
        vidx = len(videos)
        videos.append(str(vid))
        rows.extend((vidx, lab, s, e) for lab, s, e in events)
    if not videos:
        raise DataError(f"ground truth {name}: no video of subset {subset!r} (subsets present: {sorted(subsets)})")
    seen: List[str] = list(dict.fromkeys(r[1] for r in rows))
    if gt_policy == "actionformer":
        if all(lab in label_ids for lab in seen):
            seen.sort(key=lambda lab: (label_ids[lab], lab))
        else:
            seen.sort()
    index = {lab: i for i, lab in enumerate(seen)}
    gt = GroundTruth(
        videos=videos,
        labels=seen,
        video=np.array([r[0] for r in rows], dtype=np.int64),
        label=np.array([index[r[1]] for r in rows], dtype=np.int64),
        start=np.array([r[2] for r in rows], dtype=np.float64),
        end=np.array([r[3] for r in rows], dtype=np.float64),
        label_ids={lab: lid for lab, lid in label_ids.items()},
        source=name,
    )
    log.debug("ground truth %s: %d videos, %d events, %d classes", name, len(videos), gt.num_gt, len(seen))
    return gt
