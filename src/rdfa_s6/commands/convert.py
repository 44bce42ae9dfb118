"""``rdfa-s6 convert``: turn an official RDFA-S6 ``.pth`` checkpoint into an rdfa-s6 checkpoint folder.

The official engine saves ``{'epoch', 'model', 'model_ema', 'optimizer', 'scheduler', 'mAP'}`` with
``torch.save``. The file is read with ``torch.load(weights_only=True)``: tensors, containers and numbers (plus
numpy scalars/arrays, which only reconstruct data) are accepted; anything that would run code is refused.
The EMA weights are taken by default (the official test used them). Module names in rdfa-s6 are the official
ones, so the keys map 1:1 (see ``rdfa_s6.models.official``); every key and shape is checked.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import pickle
import re
from pathlib import Path
from typing import Any, Dict, List

from ._common import HelpFormatter, output_dir

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official RDFA-S6 .pth checkpoint into an rdfa-s6 checkpoint folder",
        description="Read an official RDFA-S6 checkpoint (torch.save dict with 'model' and 'model_ema') without "
        "unpickling code, check every key and shape against the preset, and write a folder with "
        "model.safetensors, config.json and meta.json that `rdfa-s6 test`, `infer` and `rdfa_s6.load_detector` read.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="official .pth file")
    parser.add_argument("out_dir", type=Path, help="output checkpoint folder (created)")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="which weights to take: the EMA model (used for the official results) or the raw one")
    parser.add_argument("--preset", default="thumos14", help="config preset (or .yaml path) the checkpoint belongs to")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.input_dim=1408 (repeatable)")
    parser.set_defaults(func=run)
    return parser


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
    import torch

    from ..errors import DataError

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
    import torch

    from ..errors import DataError

    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
        log.info("%s is a bare state dict; using it as is", path)
    else:
        key = "model_ema" if weights == "ema" else "model"
        if key not in obj:
            raise DataError(f"{path} has no {key!r} entry (found: {', '.join(map(str, obj))}); "
                            f"try --weights {'model' if key == 'model_ema' else 'ema'}")
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


def run(args: argparse.Namespace) -> int:
    """Holds the output folder (a second process on it is refused) while converting into it."""
    from ..runlock import hold_folder

    output_dir(args.out_dir, "out_dir")
    with hold_folder(args.out_dir):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import check_state_dict, save_checkpoint
    from ..config import load_config
    from ..errors import DataError
    from ..models import build_detector
    from ..models.official import from_official_keys

    output_dir(args.out_dir, "out_dir")
    cfg = load_config(args.preset, args.overrides)
    obj = read_official(args.checkpoint)
    state = from_official_keys(pick_state_dict(obj, args.weights, args.checkpoint))

    # the feature width and class count are read off the weights; they must agree with the preset if it sets them
    inferred = {}
    if "backbone.embedding_module.conv_1.weight" in state:
        inferred["input_dim"] = int(state["backbone.embedding_module.conv_1.weight"].shape[1])
    if "cls_head.cls_head.conv.weight" in state:
        inferred["num_classes"] = int(state["cls_head.cls_head.conv.weight"].shape[0])
    data = cfg.data
    for key, field in (("backbone.embedding_module.conv_1.weight", "input_dim"),
                       ("cls_head.cls_head.conv.weight", "num_classes")):
        if field not in inferred and getattr(data, field) is None and not (field == "num_classes"
                                                                             and data.class_agnostic):
            shown = ", ".join(list(state)[:4]) + (" ..." if len(state) > 4 else "")
            raise DataError(f"{args.checkpoint}: the weights have no {key!r} tensor to read data.{field} from "
                            f"(found: {shown or 'no tensors'}); expected the state dict of an official RDFA-S6 "
                            f"detector")
    for field, value in inferred.items():
        current = getattr(data, field)
        if field == "num_classes" and data.class_agnostic:
            current = 1
        if current is not None and current != value:
            raise DataError(
                f"{args.checkpoint}: the weights have {field}={value} but preset {args.preset!r} says {current}; "
                f"pick the matching --preset or pass --set data.{field}={value}"
            )
        if field != "num_classes" or not data.class_agnostic:
            data = dataclasses.replace(data, **{field: value})
    cfg = dataclasses.replace(cfg, data=data)

    model = build_detector(cfg)
    check_state_dict(model.state_dict(), state, str(args.checkpoint))
    model.load_state_dict(state, strict=True)
    meta = {
        "source": str(args.checkpoint),
        "source_weights": "model_ema" if args.weights == "ema" else "model",
        "preset": args.preset,
    }
    for key in ("epoch", "mAP"):
        value = obj.get(key)
        if isinstance(value, torch.Tensor):
            value = value.item() if value.numel() == 1 else None
        if value is not None:
            try:
                meta[key] = float(value) if key == "mAP" else int(value)
            except (TypeError, ValueError):
                log.warning("ignoring the checkpoint's %r entry %r", key, value)
    save_checkpoint(args.out_dir, model, cfg, meta=meta)
    n = sum(v.numel() for v in state.values())
    print(f"converted {args.checkpoint} ({len(state)} tensors, {n:,} values, {meta['source_weights']}) -> {args.out_dir}")
    return 0
