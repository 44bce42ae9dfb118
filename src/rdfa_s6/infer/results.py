"""Detections to files: the ActivityNet results JSON and a CSV table (times in seconds, labels by name)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

from ..atomic import atomic_write_bytes
from ..csvtable import CSV_COLUMNS, detections_csv
from ..errors import DataError
from ..messages import shown

if TYPE_CHECKING:
    from ..api import Detection

CSV_HEADER = CSV_COLUMNS


def results_document(detections: Mapping[str, List["Detection"]],
                     computed_with: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``{"version", "external_data", "results": {video_id: [{"segment", "label", "label_id", "score"}]}}``:
    ActivityNet's results format, what ``rdfa-s6 evaluate`` reads; with ``computed_with`` (``{"precision",
    "device"}``) also that key, which ``evaluate`` shows beside its tables."""
    doc: Dict[str, Any] = {"version": "rdfa-s6", "external_data": {},
                           "results": {vid: [d.to_dict() for d in dets] for vid, dets in detections.items()}}
    if computed_with:
        doc["computed_with"] = dict(computed_with)
    return doc


def check_finite(detections: Mapping[str, List["Detection"]]) -> None:
    """DataError naming the video when a detection's start, end or score is NaN or infinite: JSON has no such
    numbers (Python would write ``NaN``/``Infinity``, which other readers refuse), and neither has a timeline."""
    for vid, dets in detections.items():
        for d in dets:
            if not all(math.isfinite(x) for x in (d.start, d.end, d.score)):
                raise DataError(f"video '{shown(vid)}': a detection holds a non-finite number (segment "
                                f"[{d.start}, {d.end}], score {d.score}); check the frame rate, stride and window "
                                f"given for it")


def write_results_json(path: Union[str, Path], detections: Mapping[str, List["Detection"]],
                       computed_with: Optional[Mapping[str, str]] = None) -> None:
    """Write :func:`results_document` atomically (a crash never leaves half a file under ``path``); strict JSON:
    a non-finite number is a DataError naming its video (:func:`check_finite`) and nothing is written."""
    check_finite(detections)
    text = json.dumps(results_document(detections, computed_with), indent=2, allow_nan=False)
    atomic_write_bytes(Path(path), (text + "\n").encode("utf-8"))


def write_results_csv(path: Union[str, Path], detections: Mapping[str, List["Detection"]], raw: bool = False) -> None:
    """One row per detection: ``video_id,start_s,end_s,label,score``, written atomically by the one CSV writer
    (:func:`rdfa_s6.csvtable.detections_csv`, shared with ``export --format csv``): text cells that a
    spreadsheet would run as a formula get a leading ``'`` unless ``raw``. Non-finite numbers: DataError."""
    check_finite(detections)
    rows = ((vid, d.start, d.end, d.label, d.score) for vid, dets in detections.items() for d in dets)
    atomic_write_bytes(Path(path), detections_csv(rows, raw=raw))

