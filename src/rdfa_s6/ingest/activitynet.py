"""ActivityNet / ActionFormer annotation JSON (``{"database": {video: {"subset", "duration", "fps",
"annotations": [{"segment", "label", "label_id"}]}}}``), read by :mod:`rdfa_s6.formats.annotations`: to merge
files or split one again. Each video keeps its ``duration``, ``fps`` and ``subset`` unless ``--subset`` or
``--split-fractions`` says otherwise, and its ``label_id`` values are kept (docs/import.md, "Class ids").
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from ..errors import DataError
from ..formats.annotations import read_annotations
from . import ReadOptions, SourceSegment, SourceVideo, reader


@reader("activitynet")
def read_activitynet(paths: Sequence[Path], options: ReadOptions) -> List[SourceVideo]:
    out: List[SourceVideo] = []
    for path in paths:
        if path.is_dir():
            raise DataError(f"annotation file {path}: is a folder; expected a .json file")
        doc = read_annotations(path)
        for vid, entry in doc.videos.items():
            video = SourceVideo(vid, f"annotation file {path}", duration=entry.duration, fps=entry.fps,
                                subset=entry.subset)
            for i, ev in enumerate(entry.events):
                video.segments.append(SourceSegment(ev.label, ev.start, ev.end))
                if ev.label_id is not None:
                    old = video.label_ids.setdefault(ev.label, ev.label_id)
                    if old != ev.label_id:
                        raise DataError(f"{doc.at(vid, f'annotations[{i}]', 'label_id')}: {ev.label_id} for "
                                        f"{ev.label!r}, which has {old} elsewhere in the video")
            out.append(video)
    return out
