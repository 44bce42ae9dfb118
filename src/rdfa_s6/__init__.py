"""rdfa-s6: temporal action localization with RDFA-S6 (selective state spaces), CPU first.

The API a notebook needs::

    from rdfa_s6 import Detector
    det = Detector.from_pretrained("runs/x")     # a run folder or a checkpoint folder
    dets = det.predict(feats, fps=30.0)           # [Detection(start, end, label, score), ...], seconds

Everything here is imported lazily, so that ``import rdfa_s6`` (and the command line's ``--help``) does not
import torch.
"""
from typing import TYPE_CHECKING, Any, List

__version__ = "0.1.0"

__all__ = ["Detection", "Detector", "__version__", "build_detector", "load_config", "load_detector"]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names below load on first use
    from .api import Detection, Detector
    from .checkpoint import load_detector
    from .config import load_config
    from .models import build_detector

_LAZY = {
    "Detector": ("rdfa_s6.api", "Detector"),
    "Detection": ("rdfa_s6.api", "Detection"),
    "load_config": ("rdfa_s6.config", "load_config"),
    "build_detector": ("rdfa_s6.models", "build_detector"),
    "load_detector": ("rdfa_s6.checkpoint", "load_detector"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rdfa_s6' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
