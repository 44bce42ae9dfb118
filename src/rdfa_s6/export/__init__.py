"""Detections handed to annotation tools: ``export_results(results, fmt, out)``.

Formats (a registry of small writers, one module per family): ``csv``, ``activitynet`` (:mod:`.tables`),
``srt``, ``vtt`` (:mod:`.subtitles`), ``eaf`` (ELAN, :mod:`.elan`), ``labelstudio`` (:mod:`.labelstudio`).
Times are seconds, labels are class names as written in the results file. Per-video formats (srt, vtt, eaf)
write one file per video into a folder, or one file when there is one video.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ..atomic import atomic_write_bytes
from ..errors import UserError


@dataclass(frozen=True)
class Segment:
    """One detection: ``start``, ``end`` in seconds, ``label`` (class name), ``score``."""

    start: float
    end: float
    label: str
    score: float


@dataclass(frozen=True)
class Options:
    """Format options: ``fps`` (frames per second, Label Studio's frame ranges), ``video_url`` (a template
    with ``{video_id}``: the video a Label Studio task or an ELAN file points to)."""

    fps: Optional[float] = None
    video_url: Optional[str] = None


Videos = Dict[str, List[Segment]]
#: a writer turns {video_id: segments} (one video for per-video formats) into the file's bytes
Writer = Callable[[Videos, Options], bytes]


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    per_video: bool
    writer: Writer
    description: str


FORMATS: Dict[str, Format] = {}


def register(name: str, extension: str, per_video: bool, description: str) -> Callable[[Writer], Writer]:
    """Decorator: add a writer to :data:`FORMATS` under ``name``."""
    def wrap(writer: Writer) -> Writer:
        FORMATS[name] = Format(name, extension, per_video, writer, description)
        return writer
    return wrap


def collect(pred: Union[str, Path, Mapping[str, Any]], min_score: float = float("-inf"),
            videos: Optional[Sequence[str]] = None) -> Videos:
    """``{video_id: [Segment]}`` of the detections with ``score >= min_score``, in file order; every video of
    the file is kept (possibly with no detection), or only ``videos`` (UserError if one is missing)."""
    from ..eval.predictions import load_predictions

    preds = load_predictions(pred)
    if videos:
        missing = [v for v in videos if v not in preds.videos]
        if missing:
            raise UserError(f"--video {missing[0]}: not in {preds.source} (it has {len(preds.videos)} videos)")
    wanted = set(videos) if videos else None
    out: Videos = {v: [] for v in preds.videos if wanted is None or v in wanted}
    for k in range(len(preds)):
        vid = preds.videos[int(preds.video[k])]
        if vid in out and preds.score[k] >= min_score:
            out[vid].append(Segment(float(preds.start[k]), float(preds.end[k]), str(preds.labels[k]),
                                    float(preds.score[k])))
    return out


def safe_name(video_id: str) -> str:
    """A file name for a video id (characters other than letters, digits, ``._-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._") or "video"


def export_results(pred: Union[str, Path, Mapping[str, Any]], fmt: str, out: Union[str, Path],
                   min_score: float = float("-inf"), videos: Optional[Sequence[str]] = None,
                   options: Options = Options()) -> List[Path]:
    """Write the detections of ``pred`` (results JSON, path or dict) in format ``fmt``; returns the files.

    Per-video formats: ``out`` ending with the format's extension is one file (the results, after
    ``videos``, must hold one video), otherwise a folder that gets ``<video_id>.<ext>`` per video.
    """
    from . import elan, labelstudio, subtitles, tables  # noqa: F401  (they register their formats)

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: unknown; expected one of {', '.join(sorted(FORMATS))}")
    spec = FORMATS[fmt]
    data = collect(pred, min_score, videos)
    out = Path(out)
    if not spec.per_video:
        atomic_write_bytes(out, spec.writer(data, options))
        return [out]
    if out.suffix.lower() == spec.extension:
        if len(data) != 1:
            raise UserError(f"--out {out}: one {spec.extension} file holds one video, the results have {len(data)}; "
                            f"choose one with --video ID or give a folder as --out")
        atomic_write_bytes(out, spec.writer(data, options))
        return [out]
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    written: List[Path] = []
    used: Dict[str, int] = {}
    for vid, segs in data.items():
        stem = safe_name(vid)
        used[stem] = used.get(stem, 0) + 1
        if used[stem] > 1:  # two ids that differ only by characters unsafe in file names
            stem += f"_{used[stem]}"
        path = out / f"{stem}{spec.extension}"
        atomic_write_bytes(path, spec.writer({vid: segs}, options))
        written.append(path)
    return written


def formats() -> Dict[str, Format]:
    """All formats by name (imports the writer modules)."""
    from . import elan, labelstudio, subtitles, tables  # noqa: F401  (they register their formats)

    return dict(sorted(FORMATS.items()))
