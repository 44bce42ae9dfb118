"""Detections handed to annotation tools: ``export_results(results, fmt, out)``.

Formats (a registry of small writers, one module per family): ``csv``, ``activitynet`` (:mod:`.tables`),
``srt``, ``vtt`` (:mod:`.subtitles`), ``eaf`` (ELAN, :mod:`.elan`), ``labelstudio`` (:mod:`.labelstudio`).
Times are seconds, labels are class names as written in the results file. Per-video formats (srt, vtt, eaf)
write one file per video into a folder (names from :func:`rdfa_s6.filenames.file_stems`: distinct ids, distinct
files), or one file when there is one video. Every file is checked by an :class:`rdfa_s6.outputs.OutputGuard`
before anything is written: no export overwrites the results file it reads. Each writer escapes text for its
own format (:mod:`.text`); formats that count integer milliseconds or frames refuse times beyond
:data:`MAX_TIME_S`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..atomic import atomic_write_bytes
from ..errors import UserError
from ..filenames import file_stems
from ..messages import shown
from ..outputs import OutputGuard
from .text import check_video_url, json_bytes

__all__ = ["FORMATS", "MAX_TIME_S", "Format", "Options", "Segment", "collect", "export_results", "formats",
           "json_bytes", "register"]

#: the largest time (seconds, either sign) written as integer milliseconds or frames (srt, vtt, eaf,
#: labelstudio): about 31,700 years; a longer time is certainly not a detection in a video, and refusing it
#: (one line naming the video) keeps every number we write exact and finite
MAX_TIME_S = 1e12
#: the largest --fps of labelstudio (frame numbers stay below MAX_TIME_S * MAX_FPS = 1e18 < 2**63)
MAX_FPS = 1e6


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
    with ``{video_id}``: the video a Label Studio task or an ELAN file points to; checked by
    :func:`.text.check_video_url`), ``raw_csv`` (csv: text cells as they are, not neutralised against
    spreadsheet formulas; see :mod:`rdfa_s6.csvtable`), ``write_as`` (labelstudio: ``predictions``, the
    detections as pre-annotations to correct, or ``annotations``, as finished labels), ``model_version``
    (labelstudio predictions: the name Label Studio shows for the model)."""

    fps: Optional[float] = None
    video_url: Optional[str] = None
    raw_csv: bool = False
    write_as: str = "predictions"
    model_version: str = "rdfa-s6"


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
    integer_times: bool = False  #: times become integers (ms, frames): refused beyond MAX_TIME_S
    companion: Optional[Tuple[str, Writer]] = None  #: (suffix, writer) of a file written next to --out


FORMATS: Dict[str, Format] = {}


def register(name: str, extension: str, per_video: bool, description: str, integer_times: bool = False,
             companion: Optional[Tuple[str, Writer]] = None) -> Callable[[Writer], Writer]:
    """Decorator: add a writer to :data:`FORMATS` under ``name``; ``companion``: ``(suffix, writer)`` of a
    second file, ``<out stem><suffix>`` next to the output (Label Studio's labeling configuration)."""
    def wrap(writer: Writer) -> Writer:
        FORMATS[name] = Format(name, extension, per_video, writer, description, integer_times, companion)
        return writer
    return wrap


def check_times(data: Videos, fmt: str) -> None:
    """UserError (one line naming the video) if a time is beyond :data:`MAX_TIME_S`."""
    for vid, segs in data.items():
        for i, s in enumerate(segs):
            for t in (s.start, s.end):
                if not (math.isfinite(t) and abs(t) <= MAX_TIME_S):
                    raise UserError(f"video '{shown(vid)}', detection {i}: the time {t:g} s is beyond what "
                                    f"--format {fmt} can hold (|time| <= {MAX_TIME_S:g} s)")


def collect(pred: Union[str, Path, Mapping[str, Any]], min_score: float = float("-inf"),
            videos: Optional[Sequence[str]] = None) -> Videos:
    """``{video_id: [Segment]}`` of the detections with ``score >= min_score``, in file order; every video of
    the file is kept (possibly with no detection), or only ``videos`` (UserError if one is missing)."""
    from ..eval.predictions import load_predictions

    preds = load_predictions(pred)
    if videos:
        missing = [v for v in videos if v not in preds.videos]
        if missing:
            raise UserError(f"--video-ids {shown(missing[0])}: not in {shown(preds.source)} "
                            f"(it has {len(preds.videos)} videos)")
    wanted = set(videos) if videos else None
    out: Videos = {v: [] for v in preds.videos if wanted is None or v in wanted}
    for k in range(len(preds)):
        vid = preds.videos[int(preds.video[k])]
        if vid in out and preds.score[k] >= min_score:
            out[vid].append(Segment(float(preds.start[k]), float(preds.end[k]), str(preds.labels[k]),
                                    float(preds.score[k])))
    return out


def export_results(pred: Union[str, Path, Mapping[str, Any]], fmt: str, out: Union[str, Path],
                   min_score: float = float("-inf"), videos: Optional[Sequence[str]] = None,
                   options: Options = Options(), guard: Optional[OutputGuard] = None) -> List[Path]:
    """Write the detections of ``pred`` (results JSON, path or dict) in format ``fmt``; returns the files.

    Per-video formats: ``out`` ending with the format's extension is one file (the results, after
    ``videos``, must hold one video), otherwise a folder that gets ``<stem>.<ext>`` per video, the stems from
    :func:`rdfa_s6.filenames.file_stems` (distinct video ids give distinct files). ``guard``: the inputs no
    file may overwrite (default: ``pred`` when it is a path); every file is checked before the first is
    written, and the files are built before any is written, so a refusal writes nothing.
    """
    from . import elan, labelstudio, subtitles, tables  # noqa: F401  (they register their formats)

    if fmt not in FORMATS:
        raise UserError(f"--format {shown(fmt)}: unknown; expected one of {', '.join(sorted(FORMATS))}")
    spec = FORMATS[fmt]
    if options.video_url is not None:
        check_video_url(options.video_url)
    if guard is None:
        guard = OutputGuard()
        if isinstance(pred, (str, Path)):
            guard.add_input(pred, "RESULTS.json")
    data = collect(pred, min_score, videos)
    if spec.integer_times:
        check_times(data, fmt)
    out = Path(out)
    plan: List[Tuple[Path, Videos]] = []
    if not spec.per_video or out.suffix.lower() == spec.extension:
        if spec.per_video and len(data) != 1:
            raise UserError(f"--out {shown(out)}: one {spec.extension} file holds one video, the results have "
                            f"{len(data)}; choose one with --video-ids ID or give a folder as --out")
        plan.append((out, data))
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {shown(out)}: exists and is not a folder")
        stems = file_stems(data)
        plan += [(out / f"{stems[vid]}{spec.extension}", {vid: segs}) for vid, segs in data.items()]
    files: List[Tuple[Path, Writer, Videos]] = [(path, spec.writer, part) for path, part in plan]
    if spec.companion is not None:
        suffix, writer = spec.companion
        files.append((out.with_name(out.stem + suffix), writer, data))
    for path, _writer, _part in files:
        guard.check(path, "--out")
    blobs = [(path, writer(part, options)) for path, writer, part in files]
    for path, blob in blobs:
        atomic_write_bytes(path, blob)
    return [path for path, _ in blobs]


def formats() -> Dict[str, Format]:
    """All formats by name (imports the writer modules)."""
    from . import elan, labelstudio, subtitles, tables  # noqa: F401  (they register their formats)

    return dict(sorted(FORMATS.items()))
