"""Run folders and resume points.

    RUN_DIR/config.json                the resolved config
    RUN_DIR/metrics.jsonl              one JSON object per logged step / epoch / evaluation
    RUN_DIR/tb/                        TensorBoard events
    RUN_DIR/checkpoints/<name>/        checkpoint folders (model.safetensors = EMA weights, raw.safetensors,
                                       train_state.pt with optimizer, counters and RNG state)
    RUN_DIR/checkpoints/LATEST         the name of the newest complete checkpoint (replaced atomically)
    RUN_DIR/final/                     the final EMA model once training has finished

``train_state.pt`` holds only tensors, numbers and strings and loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..checkpoint import META_FILE, atomic_write_bytes, read_meta
from ..errors import DataError

TRAIN_STATE = "train_state.pt"
LATEST = "LATEST"
KEEP = 2


def write_train_state(directory: Path, state: Dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(directory / TRAIN_STATE, buffer.getvalue())


def read_train_state(directory: Path) -> Dict[str, Any]:
    path = directory / TRAIN_STATE
    if not path.is_file():
        raise DataError(f"resume state {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: refused to load: it holds objects other than tensors and numbers "
                        f"(weights_only=True): {str(err).splitlines()[0][:200]}") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise DataError(f"{path} is truncated or not a resume state ({str(err).splitlines()[0][:200]})") from None


def publish(run_dir: Path, name: str) -> None:
    """Mark ``checkpoints/<name>`` as the newest and delete all but the newest ``KEEP`` folders."""
    ckpt_root = run_dir / "checkpoints"
    atomic_write_bytes(ckpt_root / LATEST, (name + "\n").encode())
    folders = sorted((p for p in ckpt_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:-KEEP]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder of a run, or None."""
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    folder = run_dir / "checkpoints" / pointer.read_text().strip()
    return folder if (folder / META_FILE).is_file() else None


def resolve_model_dir(path: Union[str, Path]) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its ``final/``, else its newest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"checkpoint or run folder {path} not found")
    if (path / "model.safetensors").is_file():
        return path
    if (path / "final" / META_FILE).is_file():
        return path / "final"
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise DataError(f"{path} is neither a checkpoint folder (model.safetensors, config.json) nor a run folder "
                    f"with final/ or checkpoints/")


def label_names_of(model_dir: Path) -> Dict[int, str]:
    """Class names stored in a checkpoint's metadata (``{id: name}``), or ``class_<id>`` names."""
    meta = read_meta(model_dir)
    names = meta.get("label_names") or {}
    return {int(k): str(v) for k, v in names.items()}
