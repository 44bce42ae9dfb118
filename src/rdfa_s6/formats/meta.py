"""Checkpoint metadata (``meta.json`` of a checkpoint folder), read and checked once.

    {"format": "rdfa-s6-checkpoint", "format_version": 1, "rdfa_s6_version": "...", "torch_version": "...",
     "weights": {"model": "model.safetensors"}, "label_names": {"0": "Jump", ...}, "class_names": {...},
     "video_fps": 30.0, "extraction": {...}, ...}

``label_names`` names the network's classes, ``class_names`` the dataset's ``label_id``s (names of fused
detections); both are ``{"class id": "name"}`` objects.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from ..errors import DataError
from .jsonfile import read_json, where

WHAT = "checkpoint metadata"


def read_meta_file(path: Union[str, Path]) -> Dict[str, Any]:
    """The object of a ``meta.json`` file; a one-line DataError naming the file when it is missing, not JSON or
    not an object."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{WHAT} {path} not found: the checkpoint folder is incomplete (interrupted while saving?)")
    meta, name = read_json(path, WHAT)
    if not isinstance(meta, dict):
        raise DataError(f"{WHAT} {name}: expected a JSON object of metadata, got {type(meta).__name__}")
    return meta


def id_names(meta: Mapping[str, Any], field: str, name: str) -> Dict[int, str]:
    """A ``{"class id": "name"}`` field of the metadata ``meta`` (read from the file ``name``) as ``{id: name}``;
    empty when absent, a DataError naming the file and the field when malformed."""
    names = meta.get(field)
    if not names:
        return {}
    if not isinstance(names, dict) or not all(isinstance(k, str) and k.isdigit() and isinstance(v, str)
                                              for k, v in names.items()):
        raise DataError(f"{where(WHAT, name, field=field)}: expected an object {{\"class id\": \"name\"}}, "
                        f"got {str(names)[:80]}")
    return {int(k): v for k, v in names.items()}


def label_names(meta: Mapping[str, Any], name: str, num_classes: int) -> Dict[int, str]:
    """The network's class names (``label_names``), one per class id ``0 .. num_classes - 1``; empty when the
    metadata has none (e.g. converted official weights), a DataError when they do not cover every class."""
    out = id_names(meta, "label_names", name)
    if out and sorted(out) != list(range(num_classes)):
        raise DataError(f"{where(WHAT, name, field='label_names')}: expected names for class ids "
                        f"0..{num_classes - 1} (the model's {num_classes} classes), got ids {sorted(out)[:10]}")
    return out


def video_fps(meta: Mapping[str, Any]) -> Optional[float]:
    """``video_fps``: the frame rate every training video had, when it is a positive number; else None."""
    fps = meta.get("video_fps")
    return float(fps) if isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0 else None


def extraction(meta: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """``extraction``: the ``rdfa-s6 extract`` settings of the training features, when recorded as an object."""
    value = meta.get("extraction")
    return dict(value) if isinstance(value, dict) else None
