"""Detections to files: the ActivityNet results JSON and a CSV table (times in seconds, labels by name)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Union

from ..atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from ..api import Detection

CSV_HEADER = ("video_id", "start_s", "end_s", "label", "score")


def results_document(detections: Mapping[str, List["Detection"]]) -> Dict[str, Any]:
    """``{"version", "external_data", "results": {video_id: [{"segment", "label", "label_id", "score"}]}}``:
    ActivityNet's results format, what ``rdfa-s6 evaluate`` reads."""
    return {"version": "rdfa-s6", "external_data": {},
            "results": {vid: [d.to_dict() for d in dets] for vid, dets in detections.items()}}


def write_results_json(path: Union[str, Path], detections: Mapping[str, List["Detection"]]) -> None:
    """Write :func:`results_document` atomically (a crash never leaves half a file under ``path``)."""
    atomic_write_json(Path(path), results_document(detections))


def write_results_csv(path: Union[str, Path], detections: Mapping[str, List["Detection"]]) -> None:
    """One row per detection: ``video_id,start_s,end_s,label,score``, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    for vid, dets in detections.items():
        for d in dets:
            writer.writerow([vid, d.start, d.end, d.label, f"{d.score:.6f}"])
    atomic_write_bytes(Path(path), buf.getvalue().encode())

