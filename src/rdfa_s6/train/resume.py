"""Resume points and the final model of a run folder, with the one-line errors of a full disk.

The training state itself (what goes into a resume point) is the Trainer's; this module commits folders
(``train/state.py``: atomic, published as the newest checkpoint) and loads weights back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch import nn

from ..checkpoint import check_state_dict, latest_checkpoint, read_weights
from ..errors import DiskFullError
from .state import checkpoint_name, commit_checkpoint, commit_folder


def commit_resume_point(out_dir: Path, epoch: int, step: int, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` the resume point of (epoch, step) and publish it; on a full disk DiskFullError says that
    the previous checkpoint stays the resume point."""
    name = checkpoint_name(epoch, step)
    try:
        return commit_checkpoint(out_dir, name, write)
    except DiskFullError as err:
        latest = latest_checkpoint(out_dir)
        kept = (f"the last complete checkpoint {latest} stays the resume point" if latest else
                "no checkpoint was saved yet")
        raise DiskFullError(f"cannot save checkpoint {out_dir / 'checkpoints' / name}: {err.reason} ({err.path}); "
                            f"{kept}; free space and continue with the same command and --resume",
                            err.path, err.reason) from None


def commit_final(out_dir: Path, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` the final model into ``out_dir/final``; on a full disk DiskFullError says how to finish."""
    try:
        return commit_folder(out_dir / "final", write)
    except DiskFullError as err:
        raise DiskFullError(f"cannot write the final model {out_dir / 'final'}: {err.reason} ({err.path}); training "
                            f"is complete and its last checkpoint {latest_checkpoint(out_dir)} is kept; free space and "
                            f"run the same command with --resume to write final/", err.path, err.reason) from None


def load_weights(folder: Path, model: nn.Module, ema_model: nn.Module) -> None:
    """The raw (``raw.safetensors``) and EMA (``model.safetensors``) weights of a resume point, checked."""
    for module, fname in ((model, "raw"), (ema_model, "model")):
        tensors = read_weights(folder / f"{fname}.safetensors")
        check_state_dict(module.state_dict(), tensors, str(folder / f"{fname}.safetensors"))
        module.load_state_dict(tensors)
