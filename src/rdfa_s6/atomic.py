"""Atomic file writes: a crash never leaves a half-written file under the final name.

Each file is written to a temporary name in the same folder, flushed and fsynced, then moved into place with
``os.replace``. Used for checkpoints, results, metrics and figures. Imports nothing heavy (no torch), so the
light commands (``evaluate``, ``visualize``) can use it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Union


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` (its folder is created if needed) via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary readable files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: Union[str, Path], obj: Any, indent: int = 2) -> None:
    """``json.dumps(obj, indent=indent)`` plus a newline, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode("utf-8"))
