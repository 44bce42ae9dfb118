"""What ``rdfa-s6 extract`` writes besides the features, and how a run remembers it.

Layout of an extraction folder ``DIR`` (the project's dataset layout plus two bookkeeping files)::

    DIR/features/<video_id>.npy        [T, C] float32 (or float16), one per video
    DIR/annotations.json               every video with duration, fps, subset; annotations kept when present
    DIR/extraction.json                the settings and one entry per video (merged when every rank is done)
    DIR/.extract/settings.json         the settings of the first run; later runs into DIR must match
    DIR/.extract/videos/<id>.json      one record per finished video (written after its features)
    DIR/.extract/rank-<r>-of-<w>.json  a rank's finished marker with the videos that failed

Every file is written atomically, so a killed run leaves finished videos complete and nothing half-written.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..atomic import atomic_write_json
from ..errors import DataError, UserError

log = logging.getLogger(__name__)

EXTRACTION_FILE = "extraction.json"
#: the settings that must agree between runs writing into one folder (and that ``infer`` reproduces)
SETTING_KEYS = ("backbone", "weights", "weights_sha256", "feature_dim", "fps", "stride", "window", "short_side",
                "crop", "dtype")


def state_dir(out: Path) -> Path:
    return Path(out) / ".extract"


def check_settings(out: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` for ``out``, or check that they equal those of an earlier run into it."""
    path = state_dir(out) / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in SETTING_KEYS if old.get(k) != settings.get(k)]
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
    atomic_write_json(state_dir(out) / f"rank-{rank}-of-{world}.json", {"failed": dict(failed)})


def clear_rank_marker(out: Path, rank: int, world: int) -> None:
    (state_dir(out) / f"rank-{rank}-of-{world}.json").unlink(missing_ok=True)


def all_ranks_done(out: Path, world: int) -> bool:
    return all((state_dir(out) / f"rank-{r}-of-{world}.json").is_file() for r in range(world))


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
        marker = state_dir(out) / f"rank-{r}-of-{world}.json"
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
def read_extraction(data_root: Path) -> Optional[Dict[str, Any]]:
    """The settings of ``data_root/extraction.json`` (without the per-video entries), or None if absent."""
    path = Path(data_root) / EXTRACTION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    missing = [k for k in SETTING_KEYS if k not in data]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; expected a file written by rdfa-s6 extract")
    return {k: data[k] for k in SETTING_KEYS} | {"precision": data.get("precision")}


def record_extraction_in_run(data_root: Optional[Path], run_dir: Path) -> bool:
    """Copy the extraction settings of ``data_root`` (if it was written by ``rdfa-s6 extract``) into
    ``run_dir/extraction.json``, so that ``infer`` on a video can extract the same way. Returns whether it did.
    Call it when a training run starts (and copy the file next to a model exported elsewhere)."""
    settings = read_extraction(Path(data_root)) if data_root is not None else None
    if settings is None:
        return False
    atomic_write_json(Path(run_dir) / EXTRACTION_FILE, settings)
    return True


def run_extraction(model_dir: Path) -> Optional[Dict[str, Any]]:
    """The extraction settings recorded with a model: ``extraction.json`` in the model folder or in the run
    folder above it (``run/final``, ``run/checkpoints/...``). None when the model was trained on other features."""
    model_dir = Path(model_dir)
    for folder in (model_dir, model_dir.parent, model_dir.parent.parent):
        if (folder / EXTRACTION_FILE).is_file():
            return read_extraction(folder)
    return None
