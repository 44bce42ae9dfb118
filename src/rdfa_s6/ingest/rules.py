"""The segment rules of ``rdfa-s6 import``: what happens to segments a tool lets through (docs/import.md).

Applied per video to segments in seconds, in this order; every change is counted under its reason:

1. reversed (end before start): start and end swapped;
2. zero-length (start equals end): dropped;
3. outside the video (ends at or before 0, or starts at or after the duration): dropped;
4. partly outside (starts before 0, or ends after the duration by more than
   :data:`rdfa_s6.data.annotations.END_TOLERANCE`): clipped to [0, duration];
5. exact duplicates (same class, start and end, after the steps above): kept once;
6. overlapping segments of one class: kept as they are (two repetitions of an action may overlap), counted.

Without a duration only the start is clipped (at 0). The result is sorted by start, end, class.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ..data.annotations import END_TOLERANCE

Seg = Tuple[str, float, float]  #: (class name, start seconds, end seconds)

SWAPPED = "reversed, swapped"
ZERO = "zero-length, dropped"
OUTSIDE = "outside the video, dropped"
CLIPPED = "partly outside the video, clipped"
DUPLICATE = "exact duplicates, kept once"
OVERLAP = "overlapping one of its class, kept"
#: every reason in the order the summary lists them
REASONS = (SWAPPED, ZERO, OUTSIDE, CLIPPED, DUPLICATE, OVERLAP)


def apply_rules(segments: List[Seg], duration: Optional[float]) -> Tuple[List[Seg], Dict[str, int]]:
    """``(kept, counts)``: the segments after the rules of the module doc, and ``{reason: count}`` of the
    changes (reasons with a count of 0 left out). ``duration``: seconds, or None when unknown."""
    counts: Dict[str, int] = {}

    def count(reason: str) -> None:
        counts[reason] = counts.get(reason, 0) + 1

    kept: List[Seg] = []
    for label, start, end in segments:
        if end < start:
            start, end = end, start
            count(SWAPPED)
        if end == start:
            count(ZERO)
            continue
        if end <= 0 or (duration is not None and start >= duration):
            count(OUTSIDE)
            continue
        new_start = max(start, 0.0)
        new_end = min(end, duration) if duration is not None and end > duration + END_TOLERANCE else end
        if (new_start, new_end) != (start, end):
            count(CLIPPED)
        kept.append((label, new_start, new_end))
    kept.sort(key=lambda s: (s[1], s[2], s[0]))
    unique: List[Seg] = []
    seen = set()
    for seg in kept:
        if seg in seen:
            count(DUPLICATE)
            continue
        seen.add(seg)
        unique.append(seg)
    last_end: Dict[str, float] = {}
    for label, start, end in unique:  # sorted by start: one overlaps an earlier one iff it starts before their ends
        if label in last_end and start < last_end[label]:
            count(OVERLAP)
        last_end[label] = max(last_end.get(label, end), end)
    return unique, counts
