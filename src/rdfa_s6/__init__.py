"""rdfa-s6: temporal action localization with RDFA-S6 (selective state spaces), CPU first.

``load_config``, ``build_detector`` and ``load_detector`` are imported lazily, so that ``import rdfa_s6``
(and the command line's ``--help``) does not import torch.
"""
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_detector", "load_config", "load_detector"]

_LAZY = {
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
