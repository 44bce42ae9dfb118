"""Where training's randomness comes from: the global seeds, the batch order and torch's deterministic mode.

Crops (``data/dataset.py``) and drop path (``models/blocks.py``, :class:`~rdfa_s6.models.blocks.DropPathKey`)
use keyed generators of their own (docs/model.md §4.5).
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator, List

import numpy as np
import torch

from ..keyed import BATCH_ORDER, keyed_seed


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation draws from torch's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_batches(num_videos: int, batch_size: int, seed: int, epoch: int) -> List[List[int]]:
    """Shuffled global batches of one epoch, ``drop_last``; depends only on (seed, epoch) (a keyed seed: no two
    (seed, epoch) pairs share an order by construction)."""
    g = torch.Generator().manual_seed(keyed_seed(BATCH_ORDER, seed, epoch))
    order = torch.randperm(num_videos, generator=g).tolist()
    return [order[i : i + batch_size] for i in range(0, num_videos - batch_size + 1, batch_size)]


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``train.deterministic``: torch's deterministic algorithms (warn-only) inside the block, and torch's
    previous setting restored after it; ``enabled`` False leaves the setting alone."""
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
