"""Official RDFA-S6 checkpoints: reading the ``.pth`` container safely and turning it into an rdfa-s6 model.

The official engine saves ``{'epoch', 'model', 'model_ema', 'optimizer', 'scheduler', 'mAP'}`` with
``torch.save``. :func:`read_official` reads it with ``torch.load(weights_only=True)``: tensors, containers and
numbers (plus numpy scalars/arrays, which only reconstruct data) are accepted; anything that would run code is
refused. :func:`convert_official` picks the EMA (default) or raw weights, reads ``input_dim`` and
``num_classes`` off them, checks every key and shape against the preset and returns the loaded model.

rdfa-s6 names its modules exactly as the official code does, so the mapping is the identity and the
THUMOS-14 preset's state dict has the official 129 keys in the official order (checked by
``tests/test_models.py`` against ``official_state_dict_thumos14.txt``). The table documents which class owns
each official prefix.

| official prefix                                  | rdfa-s6 module                                      |
|--------------------------------------------------|-----------------------------------------------------|
| ``backbone.embedding_module.conv_{i}/ln_{i}``     | ``EmbeddingModule`` (nn.Conv1d no bias, nn.LayerNorm) |
| ``backbone.stem_module.blocks.0.ln``              | ``DualBiS6Block.ln`` (nn.LayerNorm)                 |
| ``backbone.stem_module.blocks.0.t_mamba.*``       | ``DualBiS6Block.t_mamba`` (BiS6, kernels 2/3/4)     |
| ``backbone.stem_module.blocks.0.c_mamba.*``       | ``DualBiS6Block.c_mamba`` (BiS6, d_model = chan_pool_len) |
| ``backbone.stem_module.blocks.0.drop_path.scale`` | ``AffineDropPath.scale`` (1, D, 1)                  |
| ``backbone.branch_module.blocks.{l}.mamba/ln/drop_path`` | ``MambaBlock`` (BiS6 kernel 4)              |
| ``neck.fpn_norms.{l}``                            | ``FPNIdentity`` (ChannelLayerNorm, (1, D, 1))       |
| ``cls_head.head.{i}.conv``, ``cls_head.norm.{i}``, ``cls_head.cls_head.conv`` | ``ClsHead``    |
| ``reg_head.head.{i}.conv``, ``reg_head.norm.{i}``                          | ``RegHead``    |
| ``reg_head.scale.{l}.scale``, ``reg_head.offset_head.conv``                 | ``RegHead``    |

Inside a BiS6 the names are Mamba's: ``in_proj``, ``conv1ds.{k}``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``. The point generator's buffers are not persistent (neither are they in the official code).
"""
from __future__ import annotations

import dataclasses
import logging
import pickle
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import torch

from ..config import Config, load_config
from ..errors import DataError
from .detector import DetectorNet, build_detector

log = logging.getLogger(__name__)

#: the official tensors that tell the feature width and the number of classes
INPUT_DIM_KEY = "backbone.embedding_module.conv_1.weight"
NUM_CLASSES_KEY = "cls_head.cls_head.conv.weight"


def _numpy_safe_globals() -> List[Any]:
    """numpy reconstructors that only rebuild data (scalars such as a saved mAP, arrays, dtypes)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return []
    found: List[Any] = [np.dtype, np.ndarray]
    for mod_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            import importlib

            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        found += [getattr(mod, n) for n in ("scalar", "_reconstruct") if hasattr(mod, n)]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def read_official(path: Path) -> Dict[str, Any]:
    """The loaded ``.pth`` object (a dict), refusing pickled code; DataError on any problem."""
    if not path.is_file():
        raise DataError(f"checkpoint {path} not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if not found:  # not a pickle of allowed types at all: garbage, a truncated or a foreign file
            why = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(err))
            detail = why.group(1).strip() if why else str(err).strip().splitlines()[0][:200]
            raise DataError(f"{path} is not a readable torch checkpoint (truncated, or another format?): "
                            f"{detail}") from None
        first = f"it references {found.group(1)}"
        raise DataError(
            f"{path} contains pickled Python objects other than tensors and plain data; refusing to unpickle "
            f"them because that could run arbitrary code. Re-save just the state dicts "
            f"(torch.save({{'model_ema': sd}}, ...)) in a trusted environment. ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable torch checkpoint (truncated?): {err}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict (a checkpoint or a state dict), got {type(obj).__name__}")
    return obj


def pick_state_dict(obj: Dict[str, Any], weights: str, path: Path) -> Dict[str, Any]:
    """``model_ema`` (weights="ema") or ``model`` from an official checkpoint dict, ``module.`` prefix removed.
    A bare state dict (all values tensors) is accepted as is."""
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
        log.info("%s is a bare state dict; using it as is", path)
    else:
        key = "model_ema" if weights == "ema" else "model"
        if key not in obj:
            raise DataError(f"{path} has no {key!r} entry (found: {', '.join(map(str, obj))}); "
                            f"try --weight-set {'raw' if key == 'model_ema' else 'ema'}")
        state = obj[key]
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise DataError(f"{path}: {key!r} is a {type(state).__name__}, expected a state dict")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise DataError(f"{path}: the state dict holds non-tensor entries: {', '.join(map(str, bad[:5]))}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def convert_official(path: Path, preset: str = "thumos14", overrides: Sequence[str] = (),
                     weights: str = "ema") -> Tuple[DetectorNet, Config, Dict[str, Any]]:
    """An official ``.pth`` as ``(model, config, metadata)``: the ``weights`` ("ema" or "model") state dict
    loaded into the ``preset``'s detector, with ``data.input_dim``/``num_classes`` read off the weights (they must
    agree with the preset where it sets them). DataError naming the file for anything that does not fit."""
    from ..checkpoint import check_state_dict

    cfg = load_config(preset, list(overrides))
    obj = read_official(path)
    state = pick_state_dict(obj, weights, path)
    inferred = {}
    if INPUT_DIM_KEY in state:
        inferred["input_dim"] = int(state[INPUT_DIM_KEY].shape[1])
    if NUM_CLASSES_KEY in state:
        inferred["num_classes"] = int(state[NUM_CLASSES_KEY].shape[0])
    data = cfg.data
    for key, field in ((INPUT_DIM_KEY, "input_dim"), (NUM_CLASSES_KEY, "num_classes")):
        if field not in inferred and getattr(data, field) is None and not (field == "num_classes"
                                                                             and data.class_agnostic):
            shown = ", ".join(list(state)[:4]) + (" ..." if len(state) > 4 else "")
            raise DataError(f"{path}: the weights have no {key!r} tensor to read data.{field} from "
                            f"(found: {shown or 'no tensors'}); expected the state dict of an official RDFA-S6 "
                            f"detector")
    for field, value in inferred.items():
        current = getattr(data, field)
        if field == "num_classes" and data.class_agnostic:
            current = 1
        if current is not None and current != value:
            raise DataError(
                f"{path}: the weights have {field}={value} but preset {preset!r} says {current}; "
                f"pick the matching --preset or pass --set data.{field}={value}"
            )
        if field != "num_classes" or not data.class_agnostic:
            data = dataclasses.replace(data, **{field: value})
    cfg = dataclasses.replace(cfg, data=data)
    model = build_detector(cfg)
    check_state_dict(model.state_dict(), state, str(path))
    model.load_state_dict(state, strict=True)
    meta: Dict[str, Any] = {"source": str(path), "source_weights": "model_ema" if weights == "ema" else "model",
                            "preset": preset}
    for key in ("epoch", "mAP"):
        value = obj.get(key)
        if isinstance(value, torch.Tensor):
            value = value.item() if value.numel() == 1 else None
        if value is not None:
            try:
                meta[key] = float(value) if key == "mAP" else int(value)
            except (TypeError, ValueError):
                log.warning("ignoring the checkpoint's %r entry %r", key, value)
    return model.eval(), cfg, meta
