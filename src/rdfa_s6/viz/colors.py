"""The colour of a class, a function of its name: the same in every figure of :mod:`rdfa_s6.viz` and on every
page of :mod:`rdfa_s6.report` (which passes the colours in the page's data), whatever the other classes are.
Plain Python: imports neither matplotlib nor numpy.

The rule (also in docs/viewer.md, "Colours"):

1. A class's own colour is ``PALETTE[h % len(PALETTE)]``, ``h`` the first 8 bytes of the SHA-256 of its name in
   UTF-8 (big-endian).
2. Two classes of one figure or page with the same own colour: the one with the smaller ``h`` (then the smaller
   name) keeps it; the other takes the next palette colour (cyclically) that no class of the figure owns or has
   taken, the displaced classes placed in the order of their ``h``. So a class changes colour only when another
   class of the same figure has the same own colour and wins it, never because of the input order or of a
   third class.
3. With more classes than palette colours, the classes left over keep their own colour (shared).
"""
from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List, Set, Tuple

#: distinguishable colours on white (matplotlib's tab10 without grey, the light tab20 shades, the three darker
#: shades of tab20b and tab20c interleaved by hue), ordered so that neighbours (a displaced class's next colour)
#: differ in hue
PALETTE: Tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
    "#5254a3", "#8ca252", "#bd9e39", "#ad494a", "#a55194", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8",
    "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd", "#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc",
)


def name_hash(name: str) -> int:
    """The first 8 bytes of the SHA-256 of ``name`` in UTF-8 (lone surrogates kept as their code units), as an
    unsigned big-endian integer."""
    digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def own_color(name: str) -> str:
    """The colour of ``name`` when no other class of the figure claims it (rule 1): ``#rrggbb``."""
    return PALETTE[name_hash(name) % len(PALETTE)]


def class_colors(names: Iterable[str]) -> Dict[str, str]:
    """``{name: "#rrggbb"}`` for the distinct ``names`` of one figure or page, by the module's rule: each class
    its own colour, a clash won by the smaller hash, the loser moved to the next free palette colour. The
    result does not depend on the order of ``names``."""
    distinct = list(dict.fromkeys(str(n) for n in names))
    keyed = sorted((name_hash(n), n) for n in distinct)
    size = len(PALETTE)
    used: Set[int] = set()
    out: Dict[str, str] = {}
    losers: List[Tuple[int, str]] = []
    for h, name in keyed:  # smallest hash first: it wins its own colour
        if h % size in used:
            losers.append((h, name))
        else:
            used.add(h % size)
            out[name] = PALETTE[h % size]
    for h, name in losers:
        own = h % size
        free = [(own + step) % size for step in range(1, size) if (own + step) % size not in used]
        if free:
            used.add(free[0])
            out[name] = PALETTE[free[0]]
        else:  # more classes than colours
            out[name] = PALETTE[own]
    return {name: out[name] for name in distinct}
