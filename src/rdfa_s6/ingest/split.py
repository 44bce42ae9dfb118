"""Subsets by video for ``rdfa-s6 import --split-fractions train=0.8,validation=0.1,test=0.1 --seed S``.

The rule (docs/import.md): the first subset listed is the training subset. Subset sizes are the fractions of
the number of videos N rounded by largest remainder (the sizes sum to N; ties go to the subset listed first).
The videos, sorted by id, are shuffled with ``random.Random(seed)``. Then, class by class from the class in
the fewest videos to the most common (ties by name), a class no training video has yet brings the first video
(in shuffled order) that has it into training: every class that any imported video has appears in training.
Training may so grow beyond its size; the other subsets then shrink, the last listed first. The remaining
videos fill the other subsets in the order listed, in shuffled order, and what is left goes to training.
The same videos, classes, fractions and seed give the same split.
"""
from __future__ import annotations

import math
import random
from typing import Dict, List, Mapping, Set, Tuple

from ..errors import UserError
from ..messages import shown

Fractions = List[Tuple[str, float]]


def parse_fractions(text: str, option: str = "--split-fractions") -> Fractions:
    """``[(subset, fraction)]`` of ``NAME=F,NAME=F,...``: distinct names, fractions in (0, 1] that sum to 1
    (within 1e-6); UserError (one line) otherwise."""
    out: Fractions = []
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            fraction = float(value)
        except ValueError:
            fraction = math.nan
        if not sep or not name or not (0.0 < fraction <= 1.0):
            raise UserError(f"{option} {shown(text)}: {shown(part)} is not NAME=FRACTION with a fraction in (0, 1]; "
                            f"expected e.g. train=0.8,validation=0.1,test=0.1")
        if any(name.lower() == n.lower() for n, _ in out):
            raise UserError(f"{option} {shown(text)}: the subset {shown(name)} is listed twice")
        out.append((name, fraction))
    total = sum(f for _, f in out)
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"{option} {shown(text)}: the fractions sum to {total:g}; expected 1")
    return out


def subset_sizes(n: int, fractions: Fractions) -> List[int]:
    """Sizes summing to ``n``: floor of each ``f * n``, the remainder one by one to the largest fractional
    parts (ties: the subset listed first)."""
    raw = [f * n for _, f in fractions]
    sizes = [int(math.floor(r + 1e-9)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


def split_videos(classes: Mapping[str, Set[str]], fractions: Fractions, seed: int) -> Dict[str, str]:
    """``{video_id: subset}`` for the videos of ``classes`` (``{video_id: its class names}``) by the rule of the
    module doc."""
    order = sorted(classes)
    random.Random(seed).shuffle(order)
    sizes = subset_sizes(len(order), fractions)
    train = fractions[0][0]
    frequency: Dict[str, int] = {}
    for names in classes.values():
        for name in names:
            frequency[name] = frequency.get(name, 0) + 1
    assigned: Dict[str, str] = {}
    covered: Set[str] = set()
    for name in sorted(frequency, key=lambda c: (frequency[c], c)):
        if name in covered:
            continue
        vid = next(v for v in order if name in classes[v] and v not in assigned)
        assigned[vid] = train
        covered |= classes[vid]
    excess = max(0, len(assigned) - sizes[0])
    sizes[0] = max(sizes[0], len(assigned))
    for i in range(len(sizes) - 1, 0, -1):
        take = min(excess, sizes[i])
        sizes[i] -= take
        excess -= take
    rest = [v for v in order if v not in assigned]
    k = 0
    for (name, _), size in zip(fractions[1:], sizes[1:]):
        for vid in rest[k:k + size]:
            assigned[vid] = name
        k += size
    for vid in rest[k:]:
        assigned[vid] = train
    return assigned
