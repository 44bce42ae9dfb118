"""Checkpoint folders: weights in safetensors, the resolved config and metadata as JSON, written atomically.

Layout of a checkpoint folder::

    model.safetensors    the detector's state dict (the weights to use; for a trained run, the EMA model)
    <name>.safetensors   optional extra weight sets (e.g. ``raw.safetensors`` for the non-EMA model)
    config.json          the resolved config (``config_to_dict``), with data.input_dim / num_classes filled in
    meta.json            format tag, versions, and free-form metadata (epoch, step, source file, ...)

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``, so a
crash never leaves a half-written file under the final name. Loading never unpickles anything.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from . import __version__
from .atomic import atomic_write_bytes, atomic_write_json  # noqa: F401  (re-exported)
from .config import Config, config_from_dict, config_to_dict
from .errors import ConfigError, DataError

if TYPE_CHECKING:
    from .models.detector import Detector

log = logging.getLogger(__name__)

FORMAT = "rdfa-s6-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"


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
        model: a :class:`~rdfa_s6.models.Detector` or its state dict; becomes ``model.safetensors``.
        cfg: the config it was built from. If ``model`` is a Detector, its ``input_dim``/``num_classes`` are
            written into ``data`` so that :func:`load_detector` can rebuild it without the data.
        meta: JSON-serialisable metadata (epoch, step, source, ...).
        extra_weights: more weight sets, ``{"raw": state_dict}`` -> ``raw.safetensors``.
    """
    from safetensors.torch import save as st_save

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
    reserved = {"format", "format_version", "rdfa_s6_version", "torch_version", "weights"}
    if reserved & set(meta or {}):
        raise ValueError(f"checkpoint metadata may not set {sorted(reserved & set(meta or {}))}: they are written here")
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


def _read_json(path: Path) -> Any:
    """A checkpoint folder's JSON file; a DataError naming it when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is truncated or not JSON ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err})") from None


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
    raw = _read_json(path)
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
) -> Tuple["Detector", Config]:
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
    """The metadata of a checkpoint folder (``meta.json``)."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise DataError(f"{path} not found: the checkpoint folder is incomplete (interrupted while saving?)")
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object of metadata, got {type(meta).__name__}")
    return meta


def read_label_names(directory: Union[str, Path], num_classes: int) -> Dict[int, str]:
    """Class names stored in a checkpoint's ``meta.json`` (``label_names``: ``{"id": name}``), one per class.

    Empty when the checkpoint stores none (e.g. converted official weights); DataError when they are malformed
    or do not cover ``0 .. num_classes - 1``.
    """
    path = Path(directory) / META_FILE
    out = read_id_names(directory, "label_names")
    if not out:
        return {}
    if sorted(out) != list(range(num_classes)):
        raise DataError(f"{path}, field 'label_names': expected names for class ids 0..{num_classes - 1} (the "
                        f"model's {num_classes} classes), got ids {sorted(out)[:10]}")
    return out


def read_id_names(directory: Union[str, Path], field: str) -> Dict[int, str]:
    """A ``{"class id": "name"}`` field of a checkpoint's ``meta.json`` as ``{id: name}``; empty when absent,
    DataError naming the file and field when malformed."""
    names = read_meta(directory).get(field)
    if not names:
        return {}
    if not isinstance(names, dict) or not all(isinstance(k, str) and k.isdigit() and isinstance(v, str)
                                              for k, v in names.items()):
        raise DataError(f"{Path(directory) / META_FILE}, field {field!r}: expected an object "
                        f"{{\"class id\": \"name\"}}, got {str(names)[:80]}")
    return {int(k): v for k, v in names.items()}
