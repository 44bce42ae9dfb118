"""The mixer's run-time settings and their environment overrides, read here and only here, once per mixer
(when it is built), never at each forward.

- ``fused``: on CPU with the ``native`` scan, run the Bi-S6 mixer through the fused kernels (:mod:`.fused`);
  ``$RDFA_S6_FUSED=0`` (or ``false``/``no``) switches the default off.
- ``scan_backend``: the selective-scan backend (``auto``, ``reference``, ``native``, ``chunked``, ``cuda``);
  ``$RDFA_S6_SCAN`` is the default when the config / constructor leaves it unset.

An explicit setting (the constructor argument, ``model.scan_backend`` in the config) wins over the environment,
as it always did.
"""
from __future__ import annotations

import os
from typing import Optional

from .scan import ENV_VAR as SCAN_ENV

FUSED_ENV = "RDFA_S6_FUSED"

__all__ = ["FUSED_ENV", "SCAN_ENV", "fused_setting", "scan_backend_setting"]


def fused_setting(fused: Optional[bool] = None) -> bool:
    """``fused`` if given, else ``$RDFA_S6_FUSED`` (default on)."""
    if fused is not None:
        return bool(fused)
    return os.environ.get(FUSED_ENV, "1").strip() not in ("0", "false", "no")


def scan_backend_setting(backend: Optional[str] = None) -> str:
    """``backend`` if given, else ``$RDFA_S6_SCAN``, else ``auto`` (checked by the scan when it runs)."""
    return backend or os.environ.get(SCAN_ENV) or "auto"
