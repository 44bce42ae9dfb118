"""ELAN annotation documents (``.eaf``), read with ``pympi-ling`` (``pip install 'rdfa-s6[import]'``).

One file holds one video: its id is the file name (without extension) of the document's first video
``MEDIA_DESCRIPTOR`` (``MEDIA_URL``, percent-decoded; the ``d`` parameter of a Label Studio local-files URL),
else the ``.eaf`` file's own stem. Classes: by default every tier is a class named after the tier, except the
tiers ``rdfa-s6 export --format eaf`` writes (linguistic type ``detection``), whose annotation values are the
classes (that export spreads overlapping detections of one class over tiers ``<class> 2``, ...). With
``--tier NAME`` only that tier is read and its annotation values are the classes. Times are ELAN's integer
milliseconds, read as seconds. An annotation with an empty value under ``--tier`` has no class: left out
(reported).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from ..errors import DataError
from ..filenames import utf8_id
from ..messages import listed, shown
from . import ReadOptions, SourceSegment, SourceVideo, reader
from .labelstudio import video_id_from_url

WHAT = "ELAN file"
#: the linguistic type of the tiers rdfa-s6 export writes (rdfa_s6.export.elan.LINGUISTIC_TYPE)
EXPORT_TYPE = "detection"


def _eaf(path: Path) -> Any:
    try:
        from pympi import Elan
    except ImportError as err:  # pragma: no cover - depends on the install
        raise DataError("reading ELAN files needs pympi-ling: pip install 'rdfa-s6[import]'") from err
    if not path.is_file():
        raise DataError(f"{WHAT} {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Elan.Eaf(str(path), suppress_version_warning=True)
    except Exception as err:  # noqa: BLE001 - pympi raises bare Exception, KeyError, ValueError on a broken file
        reason = str(err) or type(err).__name__
        raise DataError(f"{WHAT} {path}: not a readable ELAN document ({reason})") from None


def _media_id(eaf: Any) -> str:
    descriptors = [d for d in getattr(eaf, "media_descriptors", []) if d.get("MEDIA_URL")]
    videos = [d for d in descriptors if str(d.get("MIME_TYPE", "")).startswith("video/")] or descriptors
    return video_id_from_url(videos[0]["MEDIA_URL"]) if videos else ""


def _annotations(eaf: Any, tier: str, path: Path) -> List[Tuple[Any, Any, Any]]:
    """``(start_ms, end_ms, value)`` of a tier (aligned or referring annotations)."""
    try:
        aligned, refs = eaf.tiers[tier][0], eaf.tiers[tier][1]
        rows = eaf.get_annotation_data_for_tier(tier) if aligned or not refs else \
            eaf.get_ref_annotation_data_for_tier(tier)
        return [(r[0], r[1], r[2]) for r in rows]
    except Exception as err:  # noqa: BLE001 - an unaligned time slot, a dangling reference
        raise DataError(f"{WHAT} {path}: tier '{shown(tier)}': cannot read its annotations "
                        f"({str(err) or type(err).__name__}; are all its time slots aligned?)") from None


def read_eaf(path: Path, options: ReadOptions) -> SourceVideo:
    """The labels of one ``.eaf`` file (see the module doc)."""
    eaf = _eaf(path)
    video = SourceVideo(utf8_id(_media_id(eaf) or path.stem), f"{WHAT} {path}")
    names = list(eaf.get_tier_names())
    if options.tier is not None:
        if options.tier not in names:
            raise DataError(f"{WHAT} {path}: no tier '{shown(options.tier)}' (--tier); it has {listed(names)}")
        names = [options.tier]
    for tier in names:
        values_are_classes = options.tier is not None or \
            eaf.tiers[tier][2].get("LINGUISTIC_TYPE_REF") == EXPORT_TYPE
        for start, end, value in _annotations(eaf, tier, path):
            for t, field in ((start, "start"), (end, "end")):
                if isinstance(t, bool) or not isinstance(t, int):
                    raise DataError(f"{WHAT} {path}: tier '{shown(tier)}': an annotation's {field} time is "
                                    f"{shown(t)}; expected milliseconds")
            label = (value or "") if values_are_classes else tier
            if not label.strip():
                video.drop("annotations without a value, left out")
                continue
            video.segments.append(SourceSegment(label, start / 1000.0, end / 1000.0))
    return video


@reader("elan")
def read_elan(paths: Sequence[Path], options: ReadOptions) -> List[SourceVideo]:
    files: List[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".eaf" and p.is_file())
            if not found:
                raise DataError(f"{WHAT}s: no .eaf file in the folder {path}")
            files += found
        else:
            files.append(path)
    return [read_eaf(p, options) for p in files]
