"""Extract a new video's features exactly as a model's training features were extracted (``infer`` on videos).

``settings`` are the extraction settings a run records (``extraction.json`` of its data root, stored in the
checkpoint's ``meta.json`` under ``extraction``): backbone, weights file name and sha256 (or ``random-init`` /
``weight-free``), the sha256 of the backbone's configuration (``config_sha256``, recorded since checksums were
added), fps, stride S, window W, crop and the dtype of the files. :func:`check_identity` refuses a backbone that
is not the one the features came from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from ..errors import UserError
from .backbones import Backbone, build_backbone, sha256_of


def describe(settings: Optional[Mapping[str, Any]], input_dim: int) -> str:
    """What features a model needs, in words (for the error when they cannot be made here)."""
    if not settings:
        return f"[T, {input_dim}] feature files made as its training features were (docs/extract.md)"
    return (f"{settings['backbone']} features ({settings['feature_dim']}-d, weights {settings['weights']}, "
            f"clips of {settings['window']} frames every {settings['stride']})")


def identity_difference(settings: Mapping[str, Any], backbone: Backbone) -> Optional[str]:
    """What makes ``backbone`` another backbone than the one ``settings`` record, in words, or None when it is the
    same: its name, the origin of its weights (``random-init``, ``weight-free`` or a file), the weights' sha256 and
    (when the settings record one: files written before checksums do not) its configuration's sha256."""
    def short(value: Optional[str]) -> str:
        return "none" if not value else f"{value[:12]}..."

    if backbone.name != settings["backbone"]:
        return f"backbone {backbone.name}, the features were extracted with {settings['backbone']}"
    origin = settings["weights"]
    kinds = ("random-init", "weight-free")
    if (backbone.weights in kinds or origin in kinds) and backbone.weights != origin:
        got = backbone.weights if backbone.weights in kinds else "a weights file"
        want = origin if origin in kinds else f"the weights file {origin}"
        return f"{got} weights, the features were extracted with {want}"
    if (backbone.sha256 or None) != (settings.get("weights_sha256") or None):
        return (f"weights sha256 {short(backbone.sha256)}, the features were extracted with weights {origin} "
                f"(sha256 {short(settings.get('weights_sha256'))})")
    if "config_sha256" in settings and (backbone.config_sha256 or None) != (settings["config_sha256"] or None):
        return (f"config sha256 {short(backbone.config_sha256)}, the features were extracted with config sha256 "
                f"{short(settings['config_sha256'])}")
    return None


def check_identity(settings: Mapping[str, Any], backbone: Backbone) -> Backbone:
    """``backbone`` if it is the one the features of ``settings`` came from; else a UserError naming the first
    difference in one line. Returns ``backbone``."""
    diff = identity_difference(settings, backbone)
    if diff is not None:
        raise UserError(f"not the backbone the model's features came from: {diff}")
    return backbone


def backbone_for(settings: Mapping[str, Any], weights: Optional[Path] = None,
                 backbone: Optional[Backbone] = None, trust_remote_code: bool = False) -> Backbone:
    """The backbone of ``settings`` with the same weights: ``random-init`` (seed 0) and weight-free ones are rebuilt;
    trained weights come from ``weights`` or torchvision's cache, and must have the recorded sha256. A ``backbone``
    built by the caller (a plug-in) is checked instead (:func:`check_identity`). An ``hf:`` backbone is loaded from
    its recorded folder or hub id (``weights``: the folder, when it has moved), a ``py:`` one from its plug-in; both
    need ``trust_remote_code`` where extraction did."""
    if backbone is not None:
        return check_identity(settings, backbone)
    name, origin, digest = settings["backbone"], settings["weights"], settings.get("weights_sha256")
    if name.startswith(("hf:", "py:")):
        moved = weights is not None and name.startswith("hf:")
        built = build_backbone(f"hf:{weights}" if moved else name, trust_remote_code=trust_remote_code)
        if moved:  # the recorded folder, somewhere else: the same model if its weights are
            if digest and built.sha256 != digest:
                raise UserError(f"--backbone-weights {weights}: not the weights the model's features were extracted "
                                f"with ({origin}, sha256 {digest[:12]}...)")
            built.name, built.weights = name, origin
        return check_identity(settings, built)
    if origin == "weight-free":
        return check_identity(settings, build_backbone(name))
    if origin == "random-init":
        return check_identity(settings, build_backbone(name, random_init=True))
    if weights is not None:
        if digest and sha256_of(Path(weights)) != digest:
            raise UserError(f"--backbone-weights {weights}: not the file the model's features were extracted with "
                            f"({origin}, sha256 {digest[:12]}...)")
        return check_identity(settings, build_backbone(name, weights=Path(weights)))
    try:
        backbone = build_backbone(name)  # torchvision's cache
    except UserError as err:
        raise UserError(f"the model's features were extracted with {name} weights {origin}; pass that file as "
                        f"--backbone-weights ({err})") from None
    if digest and backbone.sha256 != digest:
        raise UserError(f"the cached {name} weights ({backbone.weights}) are not the file the model's features were "
                        f"extracted with ({origin}, sha256 {digest[:12]}...); pass that file as --backbone-weights")
    return check_identity(settings, backbone)


def video_features(path: Path, settings: Mapping[str, Any], backbone: Backbone, batch_size: int = 8,
                   device: str = "cpu", precision: Optional[str] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``[T, C]`` float32 features of one video (rounded through the recorded file dtype, as training read them)
    and its decode info (``fps`` is the rate of the clip grid)."""
    from .extract import extract_one

    feats, info = extract_one(Path(path), backbone, int(settings["window"]), int(settings["stride"]),
                              settings.get("fps"), batch_size=batch_size, device=device,
                              precision=precision or settings.get("precision") or "fp32")
    return as_recorded(feats, settings.get("dtype")), info


def as_recorded(feats: np.ndarray, dtype: Optional[str]) -> np.ndarray:
    """``[T, C]`` features rounded through the feature files' ``dtype`` (``extraction.json``: ``float16`` or
    ``float32``), as training read them, returned as float32: the one rule for features made at inference
    (``infer VIDEO``, ``predict_video``, ``watch``)."""
    if dtype == "float16":
        feats = feats.astype(np.float16)
    return feats.astype(np.float32)


def is_video_file(path: Path) -> bool:
    from .decode import VIDEO_EXTENSIONS

    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


__all__ = ["as_recorded", "backbone_for", "check_identity", "describe", "identity_difference", "is_video_file",
           "video_features"]
