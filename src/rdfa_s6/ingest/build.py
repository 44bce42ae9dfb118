"""``import_labels``: source files in, an annotation JSON document (and what was done) out.

Steps: read every source (:data:`rdfa_s6.ingest.READERS`); one video comes from one source (a video id met
twice is an error naming both); frame numbers become seconds at the video's frame rate (:mod:`.media`; a
frame-based video without one is an error naming it); the segment rules (:mod:`.rules`); class ids
(:func:`label_ids`); subsets (``--subset``, :mod:`.split`, or the source's own); ``--into`` merges. Nothing is
written here: the command writes the document atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..errors import DataError, UserError
from ..formats.annotations import MAX_LABEL_ID, AnnotationFile, read_annotations
from ..messages import plural, shown
from . import ReadOptions, SourceSegment, SourceVideo, readers
from .media import MediaInfo, MediaSources
from .rules import REASONS, SWAPPED, Seg, apply_rules
from .split import Fractions, split_videos

#: the subset of imported videos when neither --subset nor --split-fractions says one (extract's default)
DEFAULT_SUBSET = "training"
VERSION = "rdfa-s6-import"


@dataclass
class ImportReport:
    """What ``import_labels`` did: ``changes`` ``{video_id: {reason: count}}`` (segment rules and what the
    readers left out), ``left_out`` ``{video_id: reason}`` (videos not imported), ``no_duration`` (videos whose
    segments could not be checked against a duration), ``from_predictions`` (videos read from Label Studio
    predictions), ``subsets`` ``{subset: videos}``, ``classes`` ``{name: id}``, ``segments`` (kept),
    ``videos`` (imported), ``merged`` (videos of ``--into`` kept)."""

    videos: int = 0
    segments: int = 0
    merged: int = 0
    classes: Dict[str, int] = field(default_factory=dict)
    subsets: Dict[str, int] = field(default_factory=dict)
    changes: Dict[str, Dict[str, int]] = field(default_factory=dict)
    left_out: Dict[str, str] = field(default_factory=dict)
    no_duration: List[str] = field(default_factory=list)
    from_predictions: List[str] = field(default_factory=list)


def read_label_file(path: Path) -> Dict[str, int]:
    """``{name: id}`` of ``--labels FILE``: a JSON object ``{"name": id}``, or text with one class name per line
    (ids 0, 1, ... in line order; blank lines skipped). Names and ids must be distinct."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"--labels {shown(path)}: not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"--labels {shown(path)}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"--labels {shown(path)}: not valid JSON ({err.msg} at line {err.lineno})") from None
        out: Dict[str, int] = {}
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LABEL_ID:
                raise DataError(f"--labels {shown(path)}: class '{shown(name)}': expected a non-negative integer id, "
                                f"got {shown(value)}")
            out[name] = value
    else:
        names = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"--labels {shown(path)}: the class '{shown(dupes[0])}' is listed twice")
        out = {name: i for i, name in enumerate(names)}
    if not out:
        raise DataError(f"--labels {shown(path)}: no class in it")
    _check_distinct(out, f"--labels {shown(path)}")
    return out


def _check_distinct(ids: Mapping[str, int], what: str) -> None:
    by_id: Dict[int, str] = {}
    for name, i in ids.items():
        other = by_id.setdefault(i, name)
        if other != name:
            raise DataError(f"{what}: the classes '{shown(other)}' and '{shown(name)}' share the id {i}")


def label_ids(names: Set[str], fixed: Optional[Mapping[str, int]], known: Mapping[str, int]) -> Dict[str, int]:
    """Class ids: ``fixed`` (``--labels``) when given, and then every name must be in it; else the ids ``known``
    (from ``--into`` and ActivityNet sources) are kept and the other names get the next ids, in name order
    (with nothing known: 0, 1, ... in name order)."""
    if fixed is not None:
        missing = sorted(names - set(fixed))
        if missing:
            raise DataError(f"--labels: {plural(len(missing), 'class', 'classes')} of the sources not in it: "
                            + ", ".join(f"'{shown(m)}'" for m in missing[:5]) + (" ..." if len(missing) > 5 else ""))
        return dict(fixed)
    out = dict(known)
    nxt = max(out.values(), default=-1) + 1
    for name in sorted(names - set(out)):
        out[name] = nxt
        nxt += 1
    return out


def _seconds(seg: SourceSegment, rate: Optional[float]) -> Tuple[float, float]:
    if seg.unit == "s":
        return seg.start, seg.end
    assert rate is not None
    if seg.unit == "ls_frame":
        if seg.exact is not None:
            from ..export.labelstudio import frames

            if frames(seg.exact[0], seg.exact[1], rate) == (seg.start, seg.end):
                return float(seg.exact[0]), float(seg.exact[1])  # written by export, left unchanged
        return (seg.start - 1.0) / rate, seg.end / rate
    return seg.start / rate, seg.end / rate


def _known_ids(videos: Sequence[SourceVideo], into: Optional[AnnotationFile]) -> Dict[str, int]:
    known: Dict[str, int] = {}
    origin: Dict[str, str] = {}
    pairs: List[Tuple[str, int, str]] = []
    if into is not None:
        pairs += [(ev.label, ev.label_id, into.name) for v in into.videos.values() for ev in v.events
                  if ev.label_id is not None]
    pairs += [(name, i, v.source) for v in videos for name, i in v.label_ids.items()]
    for name, i, where in pairs:
        old = known.setdefault(name, i)
        if old != i:
            raise DataError(f"{where}: class '{shown(name)}' has the id {i}, {origin[name]} gives it {old}; "
                            f"fix one, or give --labels")
        origin.setdefault(name, where)
    _check_distinct(known, "the class ids of the sources")
    return known


def import_labels(sources: Sequence[Path], fmt: str, media: MediaSources, options: ReadOptions = ReadOptions(),
                  subset: Optional[str] = None, fractions: Optional[Fractions] = None, seed: int = 0,
                  into: Optional[Path] = None, labels: Optional[Path] = None,
                  progress: Optional[Callable[[int, int], None]] = None) -> Tuple[Dict[str, Any], ImportReport]:
    """The annotation JSON document of ``sources`` read as ``fmt``, and the :class:`ImportReport`.
    ``media`` gives durations and frame rates; ``progress(done, total)`` is called per video."""
    table = readers()
    if fmt not in table:
        raise UserError(f"--from {shown(fmt)}: unknown; expected one of {', '.join(sorted(table))}")
    videos = table[fmt](list(sources), options)
    seen: Dict[str, str] = {}
    for v in videos:
        if v.video_id in seen:
            other = seen[v.video_id]
            raise DataError(f"video '{shown(v.video_id)}' comes from two sources: {other} and {v.source}; "
                            f"import them separately (--into) or keep one")
        seen[v.video_id] = v.source
    old = read_annotations(into) if into is not None else None
    if old is not None:
        clash = [v.video_id for v in videos if v.video_id in old.videos]
        if clash:
            raise DataError(f"--into {shown(into)}: already holds the video '{shown(clash[0])}' "
                            f"({plural(len(clash), 'video')} of the sources); import only new videos")
    report = ImportReport()
    kept: Dict[str, Tuple[SourceVideo, MediaInfo, List[Seg]]] = {}
    for k, v in enumerate(videos):
        if progress is not None:
            progress(k, len(videos))
        if v.left_out is not None:
            report.left_out[v.video_id] = v.left_out
            continue
        info = media.lookup(v.video_id)
        duration = v.duration if v.duration is not None else info.duration
        frame_based = any(s.unit != "s" for s in v.segments)
        rate = info.frame_rate or v.fps
        if frame_based and rate is None:
            raise DataError(f"{v.source}: video '{shown(v.video_id)}': its times are frame numbers and its frame rate "
                            f"is unknown; give --fps (the videos' frame rate), or --data-root/--extraction/--videos "
                            f"where the video is")
        swapped = [s.end < s.start for s in v.segments]  # in the file's own unit (frames: before converting)
        segs: List[Seg] = []
        for s, swap in zip(v.segments, swapped):
            start, end = _seconds(replace(s, start=s.end, end=s.start) if swap else s, rate)
            segs.append((s.label, start, end))
        segs_kept, counts = apply_rules(segs, duration)
        if any(swapped):
            counts[SWAPPED] = counts.get(SWAPPED, 0) + sum(swapped)
        counts = {**v.dropped, **{r: counts[r] for r in REASONS if r in counts}}
        if counts:
            report.changes[v.video_id] = counts
        if duration is None:
            report.no_duration.append(v.video_id)
        if v.origin == "predictions":
            report.from_predictions.append(v.video_id)
        kept[v.video_id] = (v, MediaInfo(duration, v.fps or info.fps, rate, info.source), segs_kept)
    if progress is not None:
        progress(len(videos), len(videos))
    names = {s[0] for _, _, segs in kept.values() for s in segs}
    if old is not None:
        names |= {ev.label for v in old.videos.values() for ev in v.events}
    fixed = read_label_file(labels) if labels is not None else None
    ids = label_ids(names, fixed, _known_ids(videos, old))
    if fractions is not None:
        assignment = split_videos({vid: {s[0] for s in segs} for vid, (_, _, segs) in kept.items()}, fractions,
                                  seed)
    else:
        assignment = {vid: subset or v.subset or DEFAULT_SUBSET for vid, (v, _, _) in kept.items()}
    database: Dict[str, Any] = {}
    if old is not None:
        for vid, entry in old.videos.items():
            database[vid] = {"subset": entry.subset, "duration": entry.duration, "fps": entry.fps,
                             "annotations": [{"segment": [ev.start, ev.end], "label": ev.label,
                                              "label_id": ids[ev.label]} for ev in entry.events]}
        report.merged = len(old.videos)
    for vid, (v, info, segs) in kept.items():
        database[vid] = {"subset": assignment[vid], "duration": info.duration, "fps": info.fps,
                         "annotations": [{"segment": [s, e], "label": name, "label_id": ids[name]}
                                         for name, s, e in segs]}
        report.subsets[assignment[vid]] = report.subsets.get(assignment[vid], 0) + 1
        report.segments += len(segs)
    report.videos = len(kept)
    report.classes = dict(sorted(ids.items(), key=lambda p: p[1]))
    return {"version": VERSION, "database": database}, report
