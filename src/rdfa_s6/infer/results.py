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


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(detections: List["Detection"], fmt: str, min_score: float = 0.0) -> str:
    """One video's detections as subtitles, one cue per detection (``label score``), in order of start time.

    ``fmt``: ``srt`` (SubRip: numbered cues, ``HH:MM:SS,mmm``) or ``vtt`` (WebVTT: ``WEBVTT`` header,
    ``HH:MM:SS.mmm``). Overlapping detections give overlapping cues, which players show stacked.
    """
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"fmt must be 'srt' or 'vtt', got {fmt!r}")
    sep = "," if fmt == "srt" else "."
    cues = sorted((d for d in detections if d.score >= min_score), key=lambda d: (d.start, -d.score))
    blocks = ["WEBVTT"] if fmt == "vtt" else []
    for i, d in enumerate(cues, 1):
        head = [str(i)] if fmt == "srt" else []
        blocks.append("\n".join(head + [f"{_timestamp(d.start, sep)} --> {_timestamp(max(d.end, d.start), sep)}",
                                         f"{d.label} {d.score:.2f}"]))
    return "\n\n".join(blocks) + "\n"


def write_subtitles(path: Union[str, Path], detections: Mapping[str, List["Detection"]], fmt: str,
                    min_score: float = 0.0) -> List[Path]:
    """Subtitle files: ``path`` itself for one video, else ``path/<video_id>.<fmt>`` per video (a folder)."""
    path = Path(path)
    if len(detections) == 1:
        targets = {vid: path for vid in detections}
    else:
        targets = {vid: path / f"{vid}.{fmt}" for vid in detections}
    for vid, target in targets.items():
        atomic_write_bytes(target, subtitles(detections[vid], fmt, min_score).encode("utf-8"))
    return list(targets.values())
