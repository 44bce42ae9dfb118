"""Detections to files: the ActivityNet results JSON and a CSV table (times in seconds, labels by name)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Union

from ..atomic import atomic_write_bytes, atomic_write_json
from ..csvtable import CSV_COLUMNS, detections_csv

if TYPE_CHECKING:
    from ..api import Detection

CSV_HEADER = CSV_COLUMNS


def results_document(detections: Mapping[str, List["Detection"]]) -> Dict[str, Any]:
    """``{"version", "external_data", "results": {video_id: [{"segment", "label", "label_id", "score"}]}}``:
    ActivityNet's results format, what ``rdfa-s6 evaluate`` reads."""
    return {"version": "rdfa-s6", "external_data": {},
            "results": {vid: [d.to_dict() for d in dets] for vid, dets in detections.items()}}


def write_results_json(path: Union[str, Path], detections: Mapping[str, List["Detection"]]) -> None:
    """Write :func:`results_document` atomically (a crash never leaves half a file under ``path``)."""
    atomic_write_json(Path(path), results_document(detections))


def write_results_csv(path: Union[str, Path], detections: Mapping[str, List["Detection"]], raw: bool = False) -> None:
    """One row per detection: ``video_id,start_s,end_s,label,score``, written atomically by the one CSV writer
    (:func:`rdfa_s6.csvtable.detections_csv`, shared with ``export --format csv``): text cells that a
    spreadsheet would run as a formula get a leading ``'`` unless ``raw``."""
    rows = ((vid, d.start, d.end, d.label, d.score) for vid, dets in detections.items() for d in dets)
    atomic_write_bytes(Path(path), detections_csv(rows, raw=raw))

