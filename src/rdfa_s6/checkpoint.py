"""Checkpoint folders: weights in safetensors, the resolved config and metadata as JSON, written atomically.

Layout of a checkpoint folder::

    model.safetensors    the detector's state dict (the weights to use; for a trained run, the EMA model)
    <name>.safetensors   optional extra weight sets (e.g. ``raw.safetensors`` for the non-EMA model)
    config.json          the resolved config (``config_to_dict``), with data.input_dim / num_classes filled in
    meta.json            format tag, versions, and free-form metadata (epoch, step, source file, ...), read by
                         :mod:`rdfa_s6.formats.meta`

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``, so a
crash never leaves a half-written file under the final name. Loading never unpickles anything.
:func:`resolve_model_dir` finds the checkpoint folder of a run folder (its ``final/``, else ``LATEST``).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from . import __version__
from .atomic import atomic_write_bytes, atomic_write_json
from .config import Config, config_from_dict, config_to_dict
from .errors import ConfigError, DataError
from .formats.jsonfile import read_json
from .formats.meta import read_meta_file
from .messages import shown

if TYPE_CHECKING:
    from .models.detector import DetectorNet

log = logging.getLogger(__name__)

FORMAT = "rdfa-s6-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"
#: ``RUN_DIR/checkpoints/LATEST`` names the newest complete checkpoint of a run (rdfa_s6.train.state writes it)
LATEST = "LATEST"


def _tensors(state: Union[nn.Module, Mapping[str, Tensor]]) -> Dict[str, Tensor]:
    sd = state.state_dict() if isinstance(state, nn.Module) else state
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_checkpoint(
    directory: Union[str, Path],
    model: Union[nn.Module, Mapping[str, Tensor]],
    cfg: Config,
    meta: Optional[Mapping[str, Any]] = None,
    extra_weights: Optional[Mapping[str, Union[nn.Module, Mapping[str, Tensor]]]] = None,
) -> Path:
    """Write a checkpoint folder; returns its path.

    Args:
        directory: the folder (created if needed).
        model: a :class:`~rdfa_s6.models.DetectorNet` or its state dict; becomes ``model.safetensors``.
        cfg: the config it was built from. If ``model`` is a DetectorNet, its ``input_dim``/``num_classes`` are
            written into ``data`` so that :func:`load_detector` can rebuild it without the data.
        meta: JSON-serialisable metadata (epoch, step, source, ...).
        extra_weights: more weight sets, ``{"raw": state_dict}`` -> ``raw.safetensors``.
    """
    from safetensors.torch import save as st_save

    reserved = {"format", "format_version", "rdfa_s6_version", "torch_version", "weights"}
    if reserved & set(meta or {}):  # before anything is written: no half-written folder
        raise ValueError(f"checkpoint metadata may not set {sorted(reserved & set(meta or {}))}: they are written here")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(model, nn.Module) and hasattr(model, "input_dim"):
        data = dataclasses.replace(cfg.data, input_dim=int(model.input_dim))
        if not cfg.data.class_agnostic:
            data = dataclasses.replace(data, num_classes=int(model.num_classes))
        cfg = dataclasses.replace(cfg, data=data)
    weight_sets = {"model": model, **dict(extra_weights or {})}
    files = {}
    for name, state in weight_sets.items():
        fname = f"{name}.safetensors"
        atomic_write_bytes(directory / fname, st_save(_tensors(state), metadata={"format": FORMAT}))
        files[name] = fname
    atomic_write_json(directory / CONFIG_FILE, config_to_dict(cfg))
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rdfa_s6_version": __version__,
        "torch_version": torch.__version__,
        "weights": files,
        **dict(meta or {}),
    }
    atomic_write_json(directory / META_FILE, info)  # written last: its presence marks a complete folder
    log.info("saved checkpoint %s", directory)
    return directory


def read_weights(path: Union[str, Path]) -> Dict[str, Tensor]:
    """The tensors of a safetensors file; DataError if it is missing, truncated or not safetensors."""
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint weights {path} not found")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read checkpoint weights {path} ({err.strerror or err})") from None
    try:
        return st_load(data)
    except Exception as err:  # safetensors raises SafetensorError (and others) for malformed data
        raise DataError(f"checkpoint weights {path} are truncated or not a safetensors file ({err})") from None


def read_config(directory: Union[str, Path]) -> Config:
    """The resolved config stored in a checkpoint folder."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path} not found: {Path(directory)} is not an rdfa-s6 checkpoint folder "
                        f"(convert official .pth files with `rdfa-s6 convert`)")
    raw, _ = read_json(path, "checkpoint config")
    try:
        return config_from_dict(raw, source=str(path))
    except ConfigError as err:
        raise DataError(f"{path} does not hold a valid config: {err}") from None


def check_state_dict(expected: Mapping[str, Tensor], got: Mapping[str, Tensor], where: str) -> None:
    """Raise DataError listing missing keys, unexpected keys and shape mismatches (if any)."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(got[k].shape)}"
              for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            parts.append(f"{title}: {shown}")
    raise DataError(f"{where} does not fit the model (a checkpoint from another preset or model?): " + "; ".join(parts))


def load_detector(
    directory: Union[str, Path], weights: str = "model", device: Union[str, torch.device] = "cpu"
) -> Tuple["DetectorNet", Config]:
    """Rebuild the detector stored in a checkpoint folder: ``(model in eval mode, cfg)``.

    ``weights`` picks ``<weights>.safetensors`` (default ``model``). Errors are :class:`DataError` s naming
    the file: missing folder or files, truncated files, keys or shapes that do not fit the stored config.
    """
    from .models import build_detector

    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"checkpoint folder {directory} not found")
    cfg = read_config(directory)
    tensors = read_weights(directory / f"{weights}.safetensors")
    try:
        model = build_detector(cfg)
    except ConfigError as err:
        raise DataError(f"{directory / CONFIG_FILE}: cannot build the model: {err}") from None
    check_state_dict(model.state_dict(), tensors, str(directory / f"{weights}.safetensors"))
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), cfg


def read_meta(directory: Union[str, Path]) -> Dict[str, Any]:
    """The metadata of a checkpoint folder (``meta.json``, read by :mod:`rdfa_s6.formats.meta`)."""
    return read_meta_file(Path(directory) / META_FILE)


# ---- finding the checkpoint of a run folder --------------------------------------------------------------------
#: the longest ``LATEST`` file read: a checkpoint name is one short line
_MAX_LATEST = 256


def latest_name(run_dir: Path) -> Optional[str]:
    """The name in ``run_dir/checkpoints/LATEST`` (the newest published checkpoint), or None.

    DataError naming the file when it is not a checkpoint name: not UTF-8 text, longer than a name, or anything
    but one plain folder name (``..``, a path, control characters), which could lead outside ``checkpoints/``."""
    pointer = run_dir / "checkpoints" / LATEST
    try:
        with open(pointer, "rb") as fh:
            data = fh.read(_MAX_LATEST + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise DataError(f"{shown(pointer)}: cannot read the name of the newest checkpoint: "
                        f"{err.strerror or err}") from None
    try:
        name = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise DataError(f"{shown(pointer)}: expected the name of a checkpoint folder, got bytes that are not "
                        f"UTF-8 text (it holds one line, e.g. epoch003_step0000120)") from None
    if not name:
        return None
    plain = (len(data) <= _MAX_LATEST and name not in (".", "..") and "/" not in name and "\\" not in name
             and all(ch.isprintable() for ch in name))
    if not plain:
        raise DataError(f"{shown(pointer)}: expected the name of a checkpoint folder in {shown(pointer.parent)}, "
                        f"got '{shown(name)}'")
    return name


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder of a run, or None. Only a real folder inside ``checkpoints/``
    counts: a symbolic link named by ``LATEST`` (which could point anywhere) is a DataError."""
    name = latest_name(run_dir)
    if name is None:
        return None
    folder = run_dir / "checkpoints" / name
    if folder.is_symlink():
        raise DataError(f"{shown(run_dir / 'checkpoints' / LATEST)}: names {shown(folder)}, a symbolic link; "
                        f"expected a checkpoint folder")
    return folder if (folder / META_FILE).is_file() else None


def resolve_model_dir(path: Union[str, Path]) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its ``final/``, else its newest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"checkpoint or run folder {path} not found")
    if (path / WEIGHTS_FILE).is_file():
        return path
    if (path / "final" / META_FILE).is_file():
        return path / "final"
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise DataError(f"{path} is neither a checkpoint folder (model.safetensors, config.json) nor a run folder "
                    f"with final/ or checkpoints/")


def results_folder(model_dir: Union[str, Path]) -> Path:
    """Where results of the checkpoint folder ``model_dir`` go by default (``rdfa-s6 test``): a folder the trainer
    never prunes or replaces. A checkpoint inside a run's ``checkpoints/`` (pruned as training goes on, and by
    ``--resume``) gets ``<run>/tests/<checkpoint name>/``; any other checkpoint folder (a run's ``final/``, a
    converted model) is its own results folder."""
    model_dir = Path(model_dir)
    if model_dir.parent.name == "checkpoints" and (model_dir.parent / LATEST).exists():
        return model_dir.parent.parent / "tests" / model_dir.name
    return model_dir

