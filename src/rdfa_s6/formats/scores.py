"""External video-level class scores (for score fusion, docs/model.md §5.3), read and checked once.

    {"results": {"<video_id>": [s_1, ..., s_K]}}     or     {"<video_id>": [[s_1, ..., s_K]]}

The index of a score is the class id (the annotation file's ``label_id``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

import numpy as np

from ..errors import DataError
from .jsonfile import read_json, where

WHAT = "external score file"


def load_external_scores(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """Read an external score file into ``{video_id: scores [K] float64}``; a one-line DataError naming the
    file (and the video) when it is missing or malformed."""
    data, name = read_json(Path(path), WHAT)
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        data = data["results"]
    if not isinstance(data, dict) or not data:
        raise DataError(f"{WHAT} {name}: expected a non-empty object {{video_id: scores}} "
                        f"(optionally under \"results\")")
    return {str(vid): score_vector(value, where(WHAT, name, vid)) for vid, value in data.items()}


def score_vector(value: Any, at: str) -> np.ndarray:
    """One video's class scores from JSON as float64 [K]: a non-empty list of finite numbers, or
    ``[[s_1, ..., s_K]]``; a DataError naming ``at`` otherwise."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # {vid: [[s_1..s_K]]}
    if not isinstance(value, list) or not value:
        raise DataError(f"{at}: expected a non-empty list of class scores [s_1, ..., s_K] or [[s_1, ..., s_K]]")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise DataError(f"{at}: class scores must be numbers")
    scores = np.asarray(value, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise DataError(f"{at}: class scores must be finite")
    return scores


def score_array(value: Any, at: str) -> np.ndarray:
    """Class scores given in memory (a sequence, an array or a tensor) as float64 [K], flattened; a DataError
    naming ``at`` unless they are a non-empty set of finite numbers."""
    scores = np.asarray(value, dtype=np.float64).reshape(-1)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DataError(f"{at}: expected a non-empty list of finite class scores")
    return scores
