"""What ``rdfa-s6 extract`` writes besides the features, and how a run remembers it.

Layout of an extraction folder ``DIR`` (the project's dataset layout plus two bookkeeping files)::

    DIR/features/<video_id>.npy        [T, C] float32 (or float16), one per video
    DIR/annotations.json               every video with duration, fps, subset; annotations kept when present
    DIR/extraction.json                the settings, the backbone's identity (weights and config sha256, library
                                   versions) and one entry per video with its feature file's sha256, shape and
                                   dtype (merged when every rank is done)
    DIR/.extract/settings.json         the settings of the first run; later runs into DIR must match
    DIR/.extract/videos/<id>.json      one record per finished video (written after its features)
    DIR/.extract/rank-<r>-of-<w>.json  a rank's finished marker with the videos that failed

Every file is written atomically, so a killed run leaves finished videos complete and nothing half-written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .. import shards
from ..atomic import atomic_write_json
from ..errors import DataError, UserError

log = logging.getLogger(__name__)

EXTRACTION_FILE = "extraction.json"
#: the settings that must agree between runs writing into one folder (and that ``infer`` reproduces)
SETTING_KEYS = ("backbone", "weights", "weights_sha256", "feature_dim", "fps", "stride", "window", "short_side",
                "crop", "dtype")
#: the backbone's identity beyond SETTING_KEYS, recorded since checksums were added (absent from older files):
#: the sha256 of its configuration (``Backbone.config_sha256``, None for the built-in architectures) and the
#: versions of the libraries that computed the features
IDENTITY_KEYS = ("config_sha256", "versions")
#: the facts of one feature file in its video's record (absent from files written before checksums)
FILE_KEYS = ("sha256", "shape", "dtype")


def library_versions() -> Dict[str, str]:
    """Versions of the libraries that shape the features: torch, torchvision, transformers (only when imported:
    a transformers backbone), PyAV and rdfa-s6."""
    from importlib import metadata

    from .. import __version__

    found: Dict[str, str] = {}
    for name, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("transformers", "transformers"),
                       ("av", "av")):
        if name == "transformers" and "transformers" not in sys.modules:
            continue
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    found["rdfa-s6"] = __version__
    return found


def file_facts(data: bytes, shape: Sequence[int], dtype: str) -> Dict[str, Any]:
    """What a video's record says about its feature file: the sha256 of its bytes, its shape ``[T, C]`` and dtype."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "shape": [int(n) for n in shape], "dtype": str(dtype)}


def state_dir(out: Path) -> Path:
    return Path(out) / ".extract"


def check_settings(out: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` for ``out``, or check that they equal those of an earlier run into it."""
    path = state_dir(out) / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in SETTING_KEYS + ("config_sha256",) if old.get(k) != settings.get(k)]
        if diff:
            k = diff[0]
            raise UserError(f"{out} holds features extracted with {k} = {old.get(k)!r}, not {settings.get(k)!r}; "
                            f"use another --out (or the same settings to resume)")
        return
    atomic_write_json(path, dict(settings))


def video_record_path(out: Path, video_id: str) -> Path:
    return state_dir(out) / "videos" / f"{video_id}.json"


def is_done(out: Path, video_id: str) -> bool:
    """A video is finished when its record exists (it is written after the feature file)."""
    return video_record_path(out, video_id).is_file() and (Path(out) / "features" / f"{video_id}.npy").is_file()


def write_rank_marker(out: Path, rank: int, world: int, failed: Mapping[str, str]) -> None:
    """This rank's videos are done (:mod:`rdfa_s6.shards`' rule), with those that failed."""
    shards.write_marker(state_dir(out), rank, world, {"failed": dict(failed)})


def clear_rank_marker(out: Path, rank: int, world: int) -> None:
    shards.clear_marker(state_dir(out), rank, world)


def all_ranks_done(out: Path, world: int) -> bool:
    return shards.all_done(state_dir(out), world)


def merge(out: Path, world: int, subset: str) -> Dict[str, Any]:
    """Write ``extraction.json`` and ``annotations.json`` from the per-video records (idempotent: ranks that
    finish together write the same files). Returns the extraction dict."""
    out = Path(out)
    settings = json.loads((state_dir(out) / "settings.json").read_text())
    videos = {}
    for path in sorted((state_dir(out) / "videos").glob("*.json")):
        videos[path.stem] = json.loads(path.read_text())
    failed: Dict[str, str] = {}
    for r in range(world):
        marker = shards.marker_path(state_dir(out), r, world)
        if marker.is_file():
            failed.update(json.loads(marker.read_text()).get("failed", {}))
    extraction = dict(settings, videos=videos, failed={k: failed[k] for k in sorted(failed) if k not in videos})
    atomic_write_json(out / EXTRACTION_FILE, extraction)
    ann_path = out / "annotations.json"
    database: Dict[str, Any] = {}
    version = "rdfa-s6-extract"
    if ann_path.is_file():  # keep labels and subsets the user added
        try:
            old = json.loads(ann_path.read_text())
            database, version = dict(old.get("database", {})), old.get("version", version)
        except (json.JSONDecodeError, AttributeError):
            log.warning("%s is not valid JSON; rewritten", ann_path)
    for vid, rec in videos.items():
        entry = dict(database.get(vid, {}))
        entry.setdefault("subset", subset)
        entry.setdefault("annotations", [])
        entry["duration"], entry["fps"] = rec["duration"], rec["fps"]
        database[vid] = entry
    atomic_write_json(ann_path, {"version": version, "database": dict(sorted(database.items()))})
    return extraction


# ---------------------------------------------------------------------------------------- runs and infer
def _extraction_file(data_root: Path) -> Tuple[Path, Optional[Any]]:
    """(the path of ``data_root/extraction.json``, its parsed JSON or None when the file is absent)."""
    path = Path(data_root) / EXTRACTION_FILE
    if not path.is_file():
        return path, None
    try:
        return path, json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def read_extraction(data_root: Path) -> Optional[Dict[str, Any]]:
    """The settings of ``data_root/extraction.json`` (without the per-video entries), or None if absent."""
    path, data = _extraction_file(data_root)
    if data is None:
        return None
    missing = [k for k in SETTING_KEYS if k not in data]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; expected a file written by rdfa-s6 extract")
    return {k: data[k] for k in SETTING_KEYS} | {"precision": data.get("precision")} | \
        {k: data[k] for k in IDENTITY_KEYS if k in data}


def read_video_records(data_root: Path) -> Optional[Dict[str, Dict[str, Any]]]:
    """The per-video entries of ``data_root/extraction.json`` (video id -> record), or None if there is no such
    file. Records written before checksums were added have no ``sha256``/``shape``/``dtype``."""
    path, data = _extraction_file(data_root)
    if data is None:
        return None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(v, dict) for v in videos.values()):
        raise DataError(f"{path}: field 'videos' is not an object of per-video records; expected a file written by "
                        f"rdfa-s6 extract")
    return videos


def run_extraction(model_dir: Path) -> Optional[Dict[str, Any]]:
    """The extraction settings recorded with a model: ``extraction.json`` in the model folder or in the run
    folder above it (``run/final``, ``run/checkpoints/...``). None when the model was trained on other features."""
    model_dir = Path(model_dir)
    for folder in (model_dir, model_dir.parent, model_dir.parent.parent):
        if (folder / EXTRACTION_FILE).is_file():
            return read_extraction(folder)
    return None
