"""The colour of a class, a function of its name: the same in every figure of :mod:`rdfa_s6.viz` and on every
page of :mod:`rdfa_s6.report` (which passes the colours in the page's data), whatever the other classes are.
Plain Python: imports neither matplotlib nor numpy.

The palette is 9 hue families (blue, orange, green, red, purple, brown, pink, olive, cyan) of 3 shades each
(matplotlib's tab10 colour, a dark and a lighter one). The rule (also in docs/viewer.md, "Colours"):

1. A class's own colour is ``PALETTE[h % 27]``, ``h`` the first 8 bytes of the SHA-256 of its name in UTF-8
   (big-endian).
2. Clashes in one figure or page: with at most 9 classes, two classes clash when their own colours are of the
   same family (two blues are hard to tell apart); with more, when their own colours are the same. Of the
   classes that clash, the one with the smaller ``h`` keeps its own colour; the others, in the order of their
   ``h``, move: with at most 9 classes to the same shade of the next family (cyclically) that no class of the
   figure uses, with more to the next palette colour that no class uses. So a class changes colour only when
   another class of the same figure clashes with it and has a smaller hash, never because of the input order.
3. With more than 27 classes, the classes left over keep their own colour (shared).
"""
from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List, Set, Tuple

#: the families, each (tab10 colour, dark, lighter): no shade so pale that a low score's faint fill vanishes
FAMILIES: Tuple[Tuple[str, str, str], ...] = (
    ("#1f77b4", "#08519c", "#6baed6"),  # blue
    ("#ff7f0e", "#a63603", "#fd8d3c"),  # orange
    ("#2ca02c", "#1b5e20", "#74c476"),  # green
    ("#d62728", "#a50f15", "#f0605d"),  # red
    ("#9467bd", "#54278f", "#9e9ac8"),  # purple
    ("#8c564b", "#5a3a22", "#b07a5a"),  # brown
    ("#e377c2", "#ae017e", "#f768a1"),  # pink
    ("#bcbd22", "#6b6b00", "#e7ba52"),  # olive
    ("#17becf", "#0e6f7a", "#4eb3d3"),  # cyan
)
#: every colour, family by family
PALETTE: Tuple[str, ...] = tuple(c for family in FAMILIES for c in family)
SHADES = 3


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
    size, families = len(PALETTE), len(FAMILIES)
    # the unit of a clash: a family (few classes) or a single colour (more classes than families)
    group = SHADES if len(keyed) <= families else 1
    used: Set[int] = set()
    out: Dict[str, str] = {}
    losers: List[Tuple[int, str]] = []
    for h, name in keyed:  # smallest hash first: it keeps its own colour
        if (h % size) // group in {slot // group for slot in used}:
            losers.append((h, name))
        else:
            used.add(h % size)
            out[name] = PALETTE[h % size]
    for h, name in losers:
        own = h % size
        if group == SHADES:  # the same shade of the next free family (there is one: at most 9 classes)
            taken = {slot // SHADES for slot in used}
            family = next((own // SHADES + k) % families for k in range(1, families)
                          if (own // SHADES + k) % families not in taken)
            slot = family * SHADES + own % SHADES
        else:  # the next free colour, or the own colour when all 27 are used
            slot = next(((own + k) % size for k in range(1, size) if (own + k) % size not in used), own)
        used.add(slot)
        out[name] = PALETTE[slot]
    return {name: out[name] for name in distinct}
