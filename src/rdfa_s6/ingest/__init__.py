"""Labels from annotation tools in: ``rdfa-s6 import`` (docs/import.md).

Each format has one reader module that turns its files into :class:`SourceVideo` records, times as the file
writes them (seconds, or frames in the unit :data:`UNITS` names); :mod:`.build` resolves frames to seconds,
applies the segment rules (:mod:`.rules`), numbers the classes, splits the videos (:mod:`.split`) and makes the
annotation JSON that training reads (:mod:`rdfa_s6.formats.annotations`). Readers: ``labelstudio``
(:mod:`.labelstudio`), ``elan`` (:mod:`.elan`), ``csv`` (:mod:`.csvfile`), ``activitynet``
(:mod:`.activitynet`). Nothing here imports torch; numpy only to read the length of a feature file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["READERS", "FROM_NAMES", "ReadOptions", "SourceSegment", "SourceVideo", "UNITS", "reader"]

#: time units a reader may hand over: ``s`` seconds; ``ls_frame`` Label Studio's 1-based inclusive frame
#: numbers (frame k shows [(k - 1) / fps, k / fps): start -> (k - 1) / fps, end -> k / fps); ``frame`` frame
#: positions (frame k starts at k / fps: start -> k / fps, end -> k / fps)
UNITS = ("s", "ls_frame", "frame")


@dataclass(frozen=True)
class SourceSegment:
    """One labelled segment as read: ``start``/``end`` in ``unit`` (see :data:`UNITS`), not yet ordered or
    checked against the video; ``exact``: the seconds ``(start_s, end_s)`` when the file also holds them and they
    agree with the frames (a region written by ``rdfa-s6 export`` and left unchanged)."""

    label: str
    start: float
    end: float
    unit: str = "s"
    exact: Optional[Tuple[float, float]] = None


@dataclass
class SourceVideo:
    """The labels of one video from one source. ``video_id`` as ``extract`` names feature files; ``source``
    names the file (and task or row) for messages; ``duration``/``fps``/``subset``: what the file says, if
    anything; ``label_ids``: class ids the file carries (ActivityNet); ``dropped``: what the reader left out,
    as ``{reason: count}`` (every one is reported); ``left_out``: why the video is not imported at all."""

    video_id: str
    source: str
    segments: List[SourceSegment] = field(default_factory=list)
    duration: Optional[float] = None
    fps: Optional[float] = None
    subset: Optional[str] = None
    label_ids: Dict[str, int] = field(default_factory=dict)
    dropped: Dict[str, int] = field(default_factory=dict)
    left_out: Optional[str] = None  #: why the whole video is not imported (a task nobody annotated)
    origin: str = "annotations"  #: or "predictions" (a Label Studio file of pre-annotations)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need: ``tier`` (elan: the tier whose annotation values are the classes), ``frames``
    (csv: the times are frame positions, ``--fps`` given)."""

    tier: Optional[str] = None
    frames: bool = False


Reader = Callable[[Sequence[Path], ReadOptions], List[SourceVideo]]
#: format name -> reader of a list of paths (files or folders, as the format takes them)
READERS: Dict[str, Reader] = {}
#: the --from choices, in the order the help lists them
FROM_NAMES = ("labelstudio", "elan", "csv", "activitynet")


def reader(name: str) -> Callable[[Reader], Reader]:
    """Decorator: register a reader under ``name``."""
    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn
    return wrap


def readers() -> Dict[str, Reader]:
    """Every reader by name (imports the reader modules)."""
    from . import activitynet, csvfile, elan, labelstudio  # noqa: F401  (they register their readers)

    return READERS


def csv_rows(path: Path, what: str) -> List[List[str]]:
    """The rows of a CSV file (UTF-8, a byte-order mark allowed), header included. ``what`` names the file in
    errors (one line, :class:`~rdfa_s6.errors.DataError`)."""
    import csv
    import io

    from ..errors import DataError

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{what} {path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise DataError(f"{what} {path}: not a CSV file ({err})") from None
