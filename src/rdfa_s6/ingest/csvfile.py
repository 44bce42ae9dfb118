"""A CSV table of labels: a header, then one row per segment ``video_id,start,end,label``.

Columns are found by their header names (any order, other columns ignored): ``video_id``; ``start`` or
``start_s``; ``end`` or ``end_s``; ``label``. So a file of ``rdfa-s6 export --format csv`` (or ``infer --csv``)
reads as it is. Times are seconds, or frame positions with ``--fps`` (frame k starts at k / fps). A text cell
that ``rdfa-s6``'s CSV writer neutralised against spreadsheet formulas (a ``'`` before ``=``, ``+``, ``-``,
``@``, a tab or a carriage return; :mod:`rdfa_s6.csvtable`) is read without that ``'``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence

from ..csvtable import FORMULA_STARTS
from ..errors import DataError
from ..filenames import utf8_id
from ..messages import shown
from . import ReadOptions, SourceSegment, SourceVideo, csv_rows, reader

WHAT = "CSV file"
COLUMNS = {"video_id": ("video_id",), "start": ("start", "start_s"), "end": ("end", "end_s"), "label": ("label",)}


def unneutral(cell: str) -> str:
    """The text of a cell :func:`rdfa_s6.csvtable.neutral_cell` wrote (its ``'`` removed)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def read_csv(path: Path, frames: bool) -> List[SourceVideo]:
    """Videos of one CSV file in file order (``frames``: the times are frame positions)."""
    rows = csv_rows(path, WHAT)
    if not rows:
        raise DataError(f"{WHAT} {path}: empty; expected a header video_id,start,end,label")
    header = [h.strip().lower() for h in rows[0]]
    index: Dict[str, int] = {}
    for key, names in COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in names]
        if not found:
            raise DataError(f"{WHAT} {path}: no column {' or '.join(names)} in the header {shown(','.join(rows[0]))}; "
                            f"expected video_id,start,end,label")
        index[key] = found[0]
    videos: Dict[str, SourceVideo] = {}
    unit = "frame" if frames else "s"
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise DataError(f"{WHAT} {path}, line {n}: {len(row)} cells, the header has {len(header)}")
        vid = utf8_id(unneutral(row[index["video_id"]]))
        label = unneutral(row[index["label"]])
        if not vid:
            raise DataError(f"{WHAT} {path}, line {n}, column 'video_id': empty")
        times = []
        for key in ("start", "end"):
            cell = row[index[key]].strip()
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise DataError(f"{WHAT} {path}, line {n}, column {header[index[key]]!r}: expected a number of "
                                f"{'frames' if frames else 'seconds'}, got {shown(cell)}")
            times.append(value)
        video = videos.setdefault(vid, SourceVideo(vid, f"{WHAT} {path}"))
        if not label.strip():
            video.drop("rows without a label, left out")
            continue
        video.segments.append(SourceSegment(label, times[0], times[1], unit))
    return list(videos.values())


@reader("csv")
def read_csvs(paths: Sequence[Path], options: ReadOptions) -> List[SourceVideo]:
    out: List[SourceVideo] = []
    for path in paths:
        if path.is_dir():
            raise DataError(f"{WHAT} {path}: is a folder; expected a .csv file")
        out += read_csv(path, options.frames)
    return out
