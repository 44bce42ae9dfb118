"""Keyed seeds: a seed that is a pure function of a tuple of integer keys, for randomness that must not depend
on the order things run in (crops from ``(seed, epoch, index)``, batch order from ``(seed, epoch)``;
docs/contributing.md, "Randomness is keyed").

Each key is written as two 32-bit words (so ``(1, 2**32)`` and ``(2**32 + 1,)`` differ; negative keys wrap
modulo 2**64) and hashed by NumPy's :class:`~numpy.random.SeedSequence`: different key tuples of one use give
unrelated seeds, unlike ``seed * 1000 + epoch`` (seed 0 epoch 1000 = seed 1 epoch 0) or Python's ``hash`` of a
tuple. A use names itself with its own first key (:data:`CROPS`, :data:`BATCH_ORDER`), so two uses never share
a stream. Torch-free.
"""
from __future__ import annotations

import numpy as np

#: the first key of each use
CROPS = 0x63726F70  # "crop"
BATCH_ORDER = 0x62617463  # "batc"
LOADER_WORKERS = 0x776F726B  # "work": the seeds of DataLoader worker processes

_MASK32 = 0xFFFFFFFF


def keyed_seed(*keys: int) -> int:
    """A 64-bit seed (0 <= s < 2**64) that depends on ``keys`` only."""
    words = [w for k in keys for w in (int(k) & _MASK32, (int(k) >> 32) & _MASK32)]
    state = np.random.SeedSequence(np.array(words, dtype=np.uint32)).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)
