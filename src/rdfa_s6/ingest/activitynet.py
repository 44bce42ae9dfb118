"""ActivityNet JSON: annotation files (``{"database": {video: {"subset", "duration", "fps", "annotations":
[{"segment", "label", "label_id"}]}}}``, :mod:`rdfa_s6.formats.annotations`), to merge files or split one
again, and results files (``{"results": {video: [{"segment", "label", "score"}]}}``,
:mod:`rdfa_s6.formats.results`, what ``infer`` and ``export --format activitynet`` write), whose detections
become labels (scores are not kept). An annotation file's videos keep their ``duration``, ``fps`` and
``subset`` unless ``--subset`` or ``--split-fractions`` says otherwise, and their ``label_id`` values are kept
(docs/import.md, "Class ids").
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence

from ..errors import DataError
from ..formats.annotations import parse_annotation_file
from ..formats.jsonfile import read_json
from ..formats.results import read_results
from . import ReadOptions, SourceSegment, SourceVideo, reader

WHAT = "annotation file"


def _annotation_file(data: Dict[str, Any], name: str) -> List[SourceVideo]:
    doc = parse_annotation_file(data, name, WHAT)
    out = []
    for vid, entry in doc.videos.items():
        video = SourceVideo(vid, f"{WHAT} {name}", duration=entry.duration, fps=entry.fps, subset=entry.subset)
        for i, ev in enumerate(entry.events):
            video.segments.append(SourceSegment(ev.label, ev.start, ev.end))
            if ev.label_id is not None:
                old = video.label_ids.setdefault(ev.label, ev.label_id)
                if old != ev.label_id:
                    raise DataError(f"{doc.at(vid, f'annotations[{i}]', 'label_id')}: {ev.label_id} for "
                                    f"{ev.label!r}, which has {old} elsewhere in the video")
        out.append(video)
    return out


def _results_file(path: Path) -> List[SourceVideo]:
    preds = read_results(path, "results file")
    name = str(path)
    out = {vid: SourceVideo(vid, f"results file {name}") for vid in preds.videos}
    for k in range(len(preds.start)):
        vid = preds.videos[int(preds.video[k])]
        out[vid].segments.append(SourceSegment(str(preds.labels[k]), float(preds.start[k]), float(preds.end[k])))
    return list(out.values())


@reader("activitynet")
def read_activitynet(paths: Sequence[Path], options: ReadOptions) -> List[SourceVideo]:
    out: List[SourceVideo] = []
    for path in paths:
        if path.is_dir():
            raise DataError(f"{WHAT} {path}: is a folder; expected a .json file")
        data, name = read_json(path, "ActivityNet JSON")
        if isinstance(data, dict) and "database" not in data and "results" in data:
            out += _results_file(path)
        else:
            out += _annotation_file(data, name)
    return out
