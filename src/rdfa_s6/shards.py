"""Work shared by the processes of a ``torchrun`` launch without a process group (``extract``, ``infer``): one
rule, one home.

Rank ``r`` of ``W`` (``RANK``/``WORLD_SIZE``, global over every node) takes items ``r, r + W, ...`` of the sorted
list (:func:`share`). When its share is done it writes a marker ``FOLDER/rank-<r>-of-<W>.json`` (atomically) with
what the others need; the rank that finds every marker present merges (:func:`all_done`). Ranks that finish
together both merge, so a merge must be idempotent (the same files from the same markers). ``FOLDER`` must be on
a file system every node sees. A ``job`` key in the markers tells this launch's markers from those of an earlier
launch into the same folder (a stale marker is never merged).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

from .atomic import atomic_write_json

T = TypeVar("T")


def rank_and_world() -> Tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise. ``RANK`` is global over
    the nodes; ``LOCAL_RANK`` (the GPU of this process on its node) is 0 on the first process of every node."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def share(items: Sequence[T], rank: int, world: int) -> List[T]:
    """Rank ``rank``'s items of ``items`` (in the caller's order, normally sorted): ``rank, rank + world, ...``."""
    return list(items)[rank::world]


def marker_path(folder: Path, rank: int, world: int) -> Path:
    return Path(folder) / f"rank-{rank}-of-{world}.json"


def write_marker(folder: Path, rank: int, world: int, payload: Mapping[str, Any], job: Optional[str] = None) -> None:
    """Rank ``rank``'s share is done: ``payload`` (JSON) and the ``job`` key, written atomically."""
    atomic_write_json(marker_path(folder, rank, world), dict(payload) | ({"job": job} if job is not None else {}))


def clear_marker(folder: Path, rank: int, world: int) -> None:
    marker_path(folder, rank, world).unlink(missing_ok=True)


def read_markers(folder: Path, world: int, job: Optional[str] = None) -> Optional[List[Dict[str, Any]]]:
    """Every rank's marker payload (rank order) when all ``world`` markers are present (and, with ``job``, belong
    to that job); None otherwise."""
    found = []
    for r in range(world):
        path = marker_path(folder, r, world)
        try:
            payload = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if job is not None and payload.get("job") != job:
            return None
        found.append(payload)
    return found


def all_done(folder: Path, world: int, job: Optional[str] = None) -> bool:
    """Whether every rank has written its marker (of ``job``, when given)."""
    return read_markers(folder, world, job) is not None
