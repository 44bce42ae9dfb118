"""File names made from ids the user chose (video ids, class names): one sanitiser, and a mapping that never
sends two ids to one file.

``file_stem("video 1")`` is a name safe on every file system (letters, digits, ``._-``; no leading dot, at most
:data:`MAX_STEM` characters). :func:`file_stems` maps many ids at once and is injective: an id that is already a
safe name keeps it, any other id gets its sanitised name plus ``-`` and 8 hex digits of its SHA-256, so ``a b``,
``a_b`` and ``a_b_2`` stay three files; names are also kept apart when they differ only in case (macOS and
Windows file systems do not tell ``A`` from ``a``). Imports nothing heavy.
"""
from __future__ import annotations

import hashlib
import re
from typing import Dict, Iterable

from .errors import UserError
from .messages import shown

#: the longest stem written (file systems allow 255 bytes for a whole name; room is left for suffixes)
MAX_STEM = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(name: str) -> str:
    """The sanitised stem of ``name``: runs of characters other than letters, digits and ``._-`` become ``_``,
    leading and trailing dots and underscores go, at most :data:`MAX_STEM` characters; ``video`` if nothing is
    left. Not injective by itself: use :func:`file_stems` for several names."""
    return _UNSAFE.sub("_", name).strip("._")[:MAX_STEM] or "video"


def _tagged(name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{file_stem(name)[:MAX_STEM - 9]}-{digest}"


def file_stems(names: Iterable[str], what: str = "video id") -> Dict[str, str]:
    """``{name: stem}`` for every name, different names to different stems even on case-insensitive file
    systems. A name that is its own :func:`file_stem` (and shares its case-folded stem with no other name)
    keeps it; the others get ``<stem>-<8 hex digits of sha256(name)>``. UserError (naming both) in the
    astronomically unlikely case that two names still meet."""
    names = list(dict.fromkeys(names))
    plain = {n: file_stem(n) for n in names}
    folded: Dict[str, int] = {}
    for n in names:
        if plain[n] == n:
            folded[n.casefold()] = folded.get(n.casefold(), 0) + 1
    out: Dict[str, str] = {}
    for n in names:
        safe = plain[n] == n and folded[n.casefold()] == 1
        out[n] = n if safe else _tagged(n)
    seen: Dict[str, str] = {}
    for n, stem in out.items():
        other = seen.setdefault(stem.casefold(), n)
        if other != n:
            raise UserError(f"the {what}s {shown(other)!s} and {shown(n)!s} map to one file name {stem!r}; rename one")
    return out


def utf8_id(name: str, what: str = "video id") -> str:
    """``name`` itself when it is valid text; a UserError naming it (escaped) when it holds a lone surrogate: the
    stem of a file whose name is not UTF-8 (Python decodes such bytes to ``\\udc80``-``\\udcff``), which no JSON,
    CSV or web page can hold. Call it where an id is made from a file name."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} '{shown(name)}' (from a file name that is not UTF-8 text) cannot be written to "
                        f"JSON, CSV or a page; rename the file") from None
    return name
