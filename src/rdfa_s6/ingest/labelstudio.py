"""Label Studio's exports of a video project with ``TimelineLabels`` regions: JSON, JSON-MIN and CSV.

Layouts (Label Studio's export converter, ``label_studio_sdk/converter``; the tag's result in Label Studio's
``TimelineLabels`` documentation):

- **JSON**: a list of tasks ``{"id", "data": {"video": URL, ...}, "annotations": [{"result": [region, ...],
  "was_cancelled", "created_at", "updated_at", ...}], "predictions": [{"model_version", "score", "result"}]}``,
  a region being ``{"type": "timelinelabels", "from_name", "to_name", "value": {"ranges": [{"start": F1,
  "end": F2}], "timelinelabels": [label]}}``. A task's labels are its most recently updated annotation that
  was not cancelled; a task without one is left out (reported). A file with no annotation at all is a file of
  pre-annotations (``rdfa-s6 export --format labelstudio`` writes one): its tasks' last predictions are read.
- **JSON-MIN**: one record per annotation: the task's data fields at the top, ``id`` (the task), the control's
  name (``from_name``) holding the list of ``{"ranges", "timelinelabels"}`` values, ``annotation_id``,
  ``created_at``, ``updated_at``, ... A task with several annotations has several records: the most recently
  updated one is read. A record whose ``annotation_id`` is null is a task nobody annotated: left out.
- **CSV**: the JSON-MIN records as rows (columns in name order; the control's column holds its JSON list).

Frames: ``start``/``end`` are 1-based frame numbers, both included (frame k shows [(k - 1) / fps, k / fps)),
at the ``frameRate`` of the project's ``Video`` tag, which the exports do not carry: ``--fps`` or the videos'
own rate (docs/import.md). Video ids: the task's ``data.video_id`` when it has one (``rdfa-s6 export`` writes
it), else the file name of the video URL without its extension (the ``d`` parameter of a local-files URL),
percent-decoded; Label Studio stores an upload as ``<8 hex digits>-<name>`` under ``/data/upload/``, and that
prefix is removed for URLs under ``/data/upload/`` only.
"""
from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import DataError
from ..filenames import utf8_id
from ..formats.jsonfile import parse_number, preview, read_json
from ..messages import shown
from . import ReadOptions, SourceSegment, SourceVideo, csv_rows, reader

WHAT = "Label Studio export"
#: the metadata columns of JSON-MIN and CSV records (everything else is a data field or a control's labels)
META_KEYS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement", "history"}
_UPLOAD = re.compile(r"^[0-9a-f]{8}-(.+)$")
_EXACT = re.compile(r"start_s=(\S+) end_s=(\S+)")


def video_id_from_url(url: str) -> str:
    """The video id of a task's video URL (see the module doc); '' when the URL has no file name."""
    parts = urlsplit(url)
    path = parts.path
    local = parse_qs(parts.query).get("d")
    if local:  # /data/local-files/?d=folder/clip.mp4
        path = local[0]
    name = PurePosixPath(unquote(path).replace("\\", "/")).name
    if "/data/upload/" in unquote(parts.path) or unquote(parts.path).startswith("upload/"):
        match = _UPLOAD.match(name)
        if match:
            name = match.group(1)
    return PurePosixPath(name).stem if "." in name.lstrip(".") else name


def _video_id(data: Mapping[str, Any], at: str) -> str:
    vid = data.get("video_id")
    if isinstance(vid, str) and vid:
        return utf8_id(vid)
    url = data.get("video")
    if not isinstance(url, str):
        from ..video.decode import VIDEO_EXTENSIONS

        urls = [v for v in data.values() if isinstance(v, str)
                and PurePosixPath(urlsplit(v).path).suffix.lower() in VIDEO_EXTENSIONS]
        if len(urls) != 1:
            raise DataError(f"{at}: no video: expected a 'video' data field (or one field with a video URL), "
                            f"found {', '.join(sorted(map(str, data))) or 'none'}")
        url = urls[0]
    vid = video_id_from_url(url)
    if not vid:
        raise DataError(f"{at}, field 'video': no file name in the URL {shown(url)}")
    return utf8_id(vid)


def _segments(value: Any, at: str, video: SourceVideo, exact: Optional[Tuple[float, float]] = None) -> None:
    """The segments of one region value ``{"ranges": [...], "timelinelabels": [...]}`` into ``video``."""
    if not isinstance(value, Mapping):
        raise DataError(f"{at}: expected an object with 'ranges' and 'timelinelabels', got {preview(value)}")
    ranges, labels = value.get("ranges"), value.get("timelinelabels")
    if not isinstance(ranges, list):
        raise DataError(f"{at}, field 'ranges': expected a list of {{'start', 'end'}} frames, got {preview(ranges)}")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DataError(f"{at}, field 'timelinelabels': expected a list of class names, got {preview(labels)}")
    labels = [x for x in labels if x]
    if not labels:
        video.drop("regions without a label, left out", len(ranges))
        return
    for i, r in enumerate(ranges):
        if not isinstance(r, Mapping):
            raise DataError(f"{at}, field 'ranges'[{i}]: expected {{'start', 'end'}}, got {preview(r)}")
        a = parse_number(r.get("start"), f"{at}, field 'ranges'[{i}].start")
        b = parse_number(r.get("end"), f"{at}, field 'ranges'[{i}].end")
        for label in labels:
            video.segments.append(SourceSegment(label, a, b, "ls_frame", exact if len(ranges) == 1 else None))


def _exact(region: Mapping[str, Any]) -> Optional[Tuple[float, float]]:
    """``(start_s, end_s)`` from the ``meta.text`` that ``rdfa-s6 export`` writes, if present and readable."""
    meta = region.get("meta")
    texts = meta.get("text") if isinstance(meta, Mapping) else None
    if isinstance(texts, list) and texts and isinstance(texts[0], str):
        match = _EXACT.search(texts[0])
        if match:
            try:
                return float(match.group(1)), float(match.group(2))
            except ValueError:
                return None
    return None


def _stamp(item: Mapping[str, Any]) -> str:
    value = item.get("updated_at") or item.get("created_at") or ""
    return value if isinstance(value, str) else str(value)


def _latest(items: List[Tuple[int, Mapping[str, Any]]]) -> Tuple[int, Mapping[str, Any]]:
    """The most recently updated item (ties: the later in the file)."""
    return max(items, key=lambda p: (_stamp(p[1]), p[0]))


def read_tasks(tasks: List[Any], name: str) -> List[SourceVideo]:
    """Videos of Label Studio's JSON export (a list of tasks)."""
    any_annotation = any(isinstance(t, Mapping) and t.get("annotations") for t in tasks)
    out = []
    for k, task in enumerate(tasks):
        at = f"{WHAT} {name}: task {task.get('id', k) if isinstance(task, Mapping) else k}"
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            raise DataError(f"{at}: expected a task object with a 'data' object, got {preview(task)}")
        video = SourceVideo(_video_id(task["data"], at), at)
        key = "annotations" if any_annotation else "predictions"
        items = task.get(key) or []
        if not isinstance(items, list):
            raise DataError(f"{at}, field {key!r}: expected a list, got {preview(items)}")
        usable = [(i, a) for i, a in enumerate(items) if isinstance(a, Mapping) and not a.get("was_cancelled")
                  and not a.get("skipped")]
        if len(usable) != len(items):
            bad = next((a for a in items if not isinstance(a, Mapping)), None)
            if bad is not None:
                raise DataError(f"{at}, field {key!r}: expected objects, got {preview(bad)}")
        if not usable:
            video.left_out = "the task has no annotation" if any_annotation else "the task has no prediction"
            out.append(video)
            continue
        i, chosen = _latest(usable) if key == "annotations" else usable[-1]
        if len(usable) > 1:
            video.drop(f"older {key} of the task, not read",
                       len(usable) - 1)
        video.origin = key
        result = chosen.get("result") or []
        if not isinstance(result, list):
            raise DataError(f"{at}, {key}[{i}], field 'result': expected a list, got {preview(result)}")
        for j, region in enumerate(result):
            where = f"{at}, {key}[{i}], result[{j}]"
            if not isinstance(region, Mapping):
                raise DataError(f"{where}: expected a region object, got {preview(region)}")
            if region.get("type") != "timelinelabels":
                video.drop(f"regions of another type ({shown(region.get('type'))}), left out")
                continue
            _segments(region.get("value"), f"{where}, field 'value'", video, _exact(region))
        out.append(video)
    return out


def _label_columns(record: Mapping[str, Any]) -> List[str]:
    def is_labels(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) and "ranges" in x for x in v)
    return [k for k, v in record.items() if k not in META_KEYS and is_labels(v)]


def read_records(records: List[Any], name: str, what: str) -> List[SourceVideo]:
    """Videos of JSON-MIN records (or the CSV rows, their label cells decoded)."""
    by_task: Dict[Any, List[Tuple[int, Mapping[str, Any]]]] = {}
    for k, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise DataError(f"{what} {name}: record {k}: expected an object, got {preview(rec)}")
        task = rec.get("id", f"#{k}")
        by_task.setdefault(task if isinstance(task, (str, int)) else repr(task), []).append((k, rec))
    out = []
    for task, recs in by_task.items():
        at = f"{what} {name}: task {task}"
        data = {k: v for k, v in recs[0][1].items() if k not in META_KEYS and not _label_columns({k: v})}
        video = SourceVideo(_video_id(data, at), at)
        annotated = [(k, r) for k, r in recs if r.get("annotation_id") not in (None, "")]
        if not annotated:
            video.left_out = "the task has no annotation"
            out.append(video)
            continue
        k, rec = _latest(annotated)
        if len(annotated) > 1:
            video.drop("older annotations of the task, not read", len(annotated) - 1)
        for column in _label_columns(rec):
            for j, value in enumerate(rec[column]):
                _segments(value, f"{at}, field {column!r}[{j}]", video)
        out.append(video)
    return out


def _csv_records(path: Path) -> List[Dict[str, Any]]:
    table = csv_rows(path, WHAT)
    header = table[0] if table else []
    rows: List[Dict[Any, Any]] = []  # as csv.DictReader gives them: extra cells under None, missing cells None
    for cells in table[1:]:
        if cells:
            row: Dict[Any, Any] = dict(zip(header, cells + [None] * (len(header) - len(cells))))
            if len(cells) > len(header):
                row[None] = cells[len(header):]
            rows.append(row)
    records = []
    for n, row in enumerate(rows, start=2):
        rec: Dict[str, Any] = {}
        for key, cell in row.items():
            if key is None:
                raise DataError(f"{WHAT} {path}, line {n}: more cells than columns")
            if isinstance(cell, str) and cell.startswith("[") and key not in META_KEYS:
                try:
                    rec[key] = json.loads(cell)
                    continue
                except json.JSONDecodeError as err:
                    raise DataError(f"{WHAT} {path}, line {n}, column {shown(key)}: not valid JSON ({err.msg})") \
                        from None
            rec[key] = cell
        if "id" in rec and isinstance(rec["id"], str) and rec["id"].isdigit():
            rec["id"] = int(rec["id"])
        records.append(rec)
    return records


def read_file(path: Path) -> List[SourceVideo]:
    """Videos of one Label Studio export file: ``.csv`` (CSV export), else JSON (full or JSON-MIN)."""
    if path.suffix.lower() in (".csv", ".tsv"):
        return read_records(_csv_records(path), str(path), WHAT)
    data, name = read_json(path, WHAT)
    if isinstance(data, Mapping):  # one task
        data = [data]
    if not isinstance(data, list):
        raise DataError(f"{WHAT} {name}: expected a list of tasks (JSON) or records (JSON-MIN), "
                        f"got {type(data).__name__}")
    full = any(isinstance(t, Mapping) and isinstance(t.get("data"), Mapping) for t in data)
    return read_tasks(data, name) if full else read_records(data, name, WHAT)


@reader("labelstudio")
def read_labelstudio(paths: Sequence[Path], options: ReadOptions) -> List[SourceVideo]:
    out: List[SourceVideo] = []
    for path in paths:
        if path.is_dir():
            raise DataError(f"{WHAT} {path}: is a folder; expected an exported .json or .csv file")
        out += read_file(path)
    return out
