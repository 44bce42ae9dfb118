"""Run folders and resume points.

    RUN_DIR/config.json                the resolved config
    RUN_DIR/metrics.jsonl              one JSON object per logged step / epoch / evaluation
    RUN_DIR/tb/                        TensorBoard events
    RUN_DIR/checkpoints/<name>/        checkpoint folders (model.safetensors = EMA weights, raw.safetensors,
                                       train_state.pt with optimizer, counters and RNG state)
    RUN_DIR/checkpoints/LATEST         the name of the newest complete checkpoint (replaced atomically)
    RUN_DIR/final/                     the final EMA model once training has finished

A checkpoint folder is written as ``checkpoints/.partial-<name>/`` (every file fsynced), renamed to
``checkpoints/<name>`` and only then published in ``LATEST``; a process killed at any moment therefore leaves
``LATEST`` naming a complete folder (or no ``LATEST`` at all). ``train_state.pt`` holds only tensors, numbers
and strings and is read with ``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..atomic import atomic_write_bytes
from ..atomic import fsync_dir as _fsync_dir
from ..checkpoint import LATEST, latest_name
from ..errors import DataError, disk_full

TRAIN_STATE = "train_state.pt"
KEEP = 2
PARTIAL = ".partial-"
_NAME = re.compile(r"^epoch(\d+)_step(\d+)$")


def checkpoint_name(epoch: int, step: int) -> str:
    """``epoch<EEE>_step<SSSSSSS>``: the folder name of the resume point taken at (epoch, global step), where
    ``epoch`` is the epoch a resume continues in: the point saved when epoch 1 ends is ``epoch002_...``."""
    return f"epoch{epoch:03d}_step{step:07d}"


def _order(name: str) -> Optional[Tuple[int, int]]:
    """(step, epoch) of a checkpoint folder name, or None for names this module did not make."""
    match = _NAME.match(name)
    return (int(match.group(2)), int(match.group(1))) if match else None


def write_train_state(directory: Path, state: Dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(directory / TRAIN_STATE, buffer.getvalue())


def read_train_state(directory: Path) -> Dict[str, Any]:
    """The resume state of a checkpoint folder; never unpickles anything but tensors, numbers and strings."""
    path = directory / TRAIN_STATE
    if not path.is_file():
        raise DataError(f"resume state {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: refused to load: it holds objects other than tensors and numbers "
                        f"(weights_only=True): {str(err).splitlines()[0][:200]}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise DataError(f"{path} is truncated or not a resume state ({str(err).splitlines()[0][:200]})") from None


def commit_folder(final: Path, write: Callable[[Path], object]) -> Path:
    """Write a folder atomically: ``write(tmp)`` fills ``.partial-<name>`` beside ``final``, which is renamed.

    Every file and the folder are fsynced before the rename, and the parent folder after it, so a published
    folder survives a power cut. An existing ``final`` is replaced (deleted first: a crash in between leaves no
    ``final``, never a mix). When writing fails (a full disk), the partial folder is deleted, which gives the
    space back, and the error is raised (DiskFullError naming the file for a full or read-only disk).
    """
    tmp = final.parent / f"{PARTIAL}{final.name}"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        write(tmp)
        _fsync_dir(tmp)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full(err, err.filename if isinstance(err, OSError) and err.filename else tmp)
        if full is not None:
            raise full from None
        raise
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final


def commit_checkpoint(run_dir: Path, name: str, write: Callable[[Path], None]) -> Path:
    """Write ``checkpoints/<name>`` atomically with ``write(folder)``, publish it in LATEST, prune old ones.

    If publishing fails (a full disk), the new folder is deleted again and LATEST still names the previous one.
    """
    if latest_name(run_dir) == name:  # the trainer never saves twice at one (epoch, step)
        raise RuntimeError(f"checkpoint {name} is already the published resume point")
    folder = commit_folder(run_dir / "checkpoints" / name, write)
    try:
        publish(run_dir, name)
    except BaseException:
        if latest_name(run_dir) != name:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _folders(ckpt_root: Path) -> List[Path]:
    """Checkpoint folders made by this module, oldest first (by step, then epoch)."""
    found = [p for p in ckpt_root.iterdir() if p.is_dir() and _order(p.name) is not None]
    return sorted(found, key=lambda p: _order(p.name))


def publish(run_dir: Path, name: str) -> None:
    """Mark ``checkpoints/<name>`` as the newest; delete older folders beyond ``KEEP`` and leftover partials."""
    ckpt_root = run_dir / "checkpoints"
    atomic_write_bytes(ckpt_root / LATEST, (name + "\n").encode())
    _fsync_dir(ckpt_root)
    for old in _folders(ckpt_root)[:-KEEP]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    _remove_leftovers(ckpt_root)


def _remove_leftovers(ckpt_root: Path) -> None:
    """Delete partial folders and temporary files left by a process killed while saving."""
    for path in ckpt_root.iterdir():
        if path.name.startswith(PARTIAL) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{LATEST}.") and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)


def discard_after(run_dir: Path, name: str) -> List[str]:
    """On resume from ``name``: delete checkpoint folders of later steps (written but never published by the
    interrupted process) and partial folders. Returns the names deleted."""
    ckpt_root = run_dir / "checkpoints"
    ref = _order(name)
    removed = []
    if ref is not None:
        for folder in _folders(ckpt_root):
            if _order(folder.name) > ref:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    _remove_leftovers(ckpt_root)
    return removed
