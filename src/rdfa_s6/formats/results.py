"""Detection results in ActivityNet's results format, read and checked once (``rdfa-s6 evaluate``, ``export``,
``visualize`` and the viewer read them through here).

    {"results": {"<video_id>": [{"segment": [start_s, end_s], "label": "HighJump" or label_id, "score": 0.93}]}}

``version`` and ``external_data`` are allowed and ignored; ``label_id`` next to ``label`` is ignored too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np

from ..errors import DataError
from .jsonfile import Source, parse_number, parse_segment, preview, read_json, where


@dataclass
class Predictions:
    """Parsed detections as flat arrays, in file order.

    ``videos``: video ids in order of first appearance; ``video``: int64 [P] index into ``videos``;
    ``start``, ``end``: float64 [P] seconds; ``score``: float64 [P]; ``labels``: [P] label names (str) or
    label ids (int) as written in the file.
    """

    videos: List[str]
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray
    labels: List[Union[str, int]]
    source: str = "<dict>"
    #: how the detections were computed (``{"precision": "fp32", "device": "cpu"}``), when the file says so
    computed_with: Optional[Dict[str, str]] = None

    def __len__(self) -> int:
        return int(self.video.shape[0])


def read_results(source: Source, what: str = "predictions") -> Predictions:
    """Parse a results JSON (a path, or its decoded JSON). Any malformation raises a one-line DataError naming
    the file, the video and the field; nothing else is raised for JSON-like input."""
    data, name = read_json(source, what)
    if not isinstance(data, Mapping) or "results" not in data:
        raise DataError(f"{what} {name}: missing top-level field 'results'")
    results = data["results"]
    if not isinstance(results, Mapping):
        raise DataError(f"{where(what, name, field='results')}: expected an object {{video_id: [detections]}}, "
                        f"got {type(results).__name__}")
    videos: List[str] = []
    vid_col: List[int] = []
    starts: List[float] = []
    ends: List[float] = []
    scores: List[float] = []
    labels: List[Union[str, int]] = []
    for vid, dets in results.items():
        if not isinstance(dets, list):
            raise DataError(f"{where(what, name, vid)}: expected a list of detections, got {type(dets).__name__}")
        vidx = len(videos)
        videos.append(str(vid))
        for i, det in enumerate(dets):
            at = where(what, name, vid, f"detection {i}")
            if not isinstance(det, Mapping):
                raise DataError(f"{at}: expected an object with 'segment', 'label', 'score'")
            for key in ("segment", "label", "score"):
                if key not in det:
                    raise DataError(f"{at}: missing field '{key}'")
            s, e = parse_segment(det["segment"], f"{at}, field 'segment'")
            score = parse_number(det["score"], f"{at}, field 'score'")
            lab = det["label"]
            if isinstance(lab, bool) or not isinstance(lab, (str, int)):
                raise DataError(f"{at}, field 'label': expected a class name or an integer label_id, "
                                f"got {preview(lab)}")
            vid_col.append(vidx)
            starts.append(s)
            ends.append(e)
            scores.append(score)
            labels.append(lab)
    return Predictions(
        videos=videos,
        video=np.array(vid_col, dtype=np.int64),
        start=np.array(starts, dtype=np.float64),
        end=np.array(ends, dtype=np.float64),
        score=np.array(scores, dtype=np.float64),
        labels=labels,
        source=name,
        computed_with=_computed_with(data.get("computed_with")),
    )


def _computed_with(value: Any) -> Optional[Dict[str, str]]:
    """The optional top-level ``computed_with`` of a results file (written by rdfa-s6: precision and device of
    the forward passes): kept when it is an object of short strings, ignored otherwise (it only labels tables)."""
    if not isinstance(value, Mapping):
        return None
    kept = {str(k): str(v)[:40] for k, v in value.items() if k in ("precision", "device") and isinstance(v, str)}
    return kept or None

