"""The one reader of ``/proc/cpuinfo``: the CPU's feature flags (bfloat16 support in :mod:`rdfa_s6.precision`,
the cache key of the native scan kernel in :mod:`rdfa_s6.ssm.native`). Torch-free."""
from __future__ import annotations

import platform
from typing import FrozenSet, Optional

CPUINFO = "/proc/cpuinfo"


def flags_line(path: str = CPUINFO) -> Optional[str]:
    """The first ``flags`` line of ``path`` as written (newline included), None without one or the file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return None


def cpu_flags(path: str = CPUINFO) -> Optional[FrozenSet[str]]:
    """The CPU's feature flags (``avx2``, ``amx_bf16``, ...), None when ``path`` is missing or has none."""
    line = flags_line(path)
    return None if line is None else frozenset(line.split(":", 1)[1].split())


def cpu_model(path: str = CPUINFO) -> str:
    """The CPU's ``model name`` from ``path``, else the processor or machine name (benchmark reports)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_signature() -> str:
    """A string that changes with the CPU's features: its flags line, else the processor or machine name."""
    return flags_line() or platform.processor() or platform.machine()
