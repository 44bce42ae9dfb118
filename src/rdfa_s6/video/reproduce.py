"""Extract a new video's features exactly as a model's training features were extracted (``infer`` on videos).

``settings`` are the extraction settings a run records (``extraction.json`` of its data root, stored in the
checkpoint's ``meta.json`` under ``extraction``): backbone, weights file name and sha256 (or ``random-init`` /
``weight-free``), fps, stride S, window W, crop and the dtype of the files.
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


def backbone_for(settings: Mapping[str, Any], weights: Optional[Path] = None,
                 trust_remote_code: bool = False) -> Backbone:
    """The backbone of ``settings`` with the same weights: ``random-init`` (seed 0) and weight-free ones are rebuilt;
    trained weights come from ``weights`` or torchvision's cache, and must have the recorded sha256. An ``hf:``
    backbone is loaded from its recorded folder or hub id (``weights``: the folder, when it moved), a ``py:`` one
    from its plug-in; both need ``trust_remote_code`` where extraction did."""
    name, origin, digest = settings["backbone"], settings["weights"], settings.get("weights_sha256")
    if name.startswith(("hf:", "py:")):
        if weights is not None and name.startswith("hf:"):
            name = f"hf:{weights}"
        backbone = build_backbone(name, trust_remote_code=trust_remote_code)
        if digest and backbone.sha256 != digest:
            raise UserError(f"{backbone.weights}: not the weights the model's features were extracted with "
                            f"({origin}, sha256 {digest[:12]}...)")
        return backbone
    if origin == "weight-free":
        return build_backbone(name)
    if origin == "random-init":
        return build_backbone(name, random_init=True)
    if weights is not None:
        if digest and sha256_of(Path(weights)) != digest:
            raise UserError(f"--backbone-weights {weights}: not the file the model's features were extracted with "
                            f"({origin}, sha256 {digest[:12]}...)")
        return build_backbone(name, weights=Path(weights))
    try:
        backbone = build_backbone(name)  # torchvision's cache
    except UserError as err:
        raise UserError(f"the model's features were extracted with {name} weights {origin}; pass that file as "
                        f"--backbone-weights ({err})") from None
    if digest and backbone.sha256 != digest:
        raise UserError(f"the cached {name} weights ({backbone.weights}) are not the file the model's features were "
                        f"extracted with ({origin}, sha256 {digest[:12]}...); pass that file as --backbone-weights")
    return backbone


def video_features(path: Path, settings: Mapping[str, Any], backbone: Backbone, batch_size: int = 8,
                   device: str = "cpu", precision: Optional[str] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``[T, C]`` float32 features of one video (rounded through the recorded file dtype, as training read them)
    and its decode info (``fps`` is the rate of the clip grid)."""
    from .extract import extract_one

    feats, info = extract_one(Path(path), backbone, int(settings["window"]), int(settings["stride"]),
                              settings.get("fps"), batch_size=batch_size, device=device,
                              precision=precision or settings.get("precision") or "fp32")
    if settings.get("dtype") == "float16":
        feats = feats.astype(np.float16)
    return feats.astype(np.float32), info


def is_video_file(path: Path) -> bool:
    from .decode import VIDEO_EXTENSIONS

    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


__all__ = ["backbone_for", "describe", "is_video_file", "video_features"]
