"""User-supplied text inside our messages: one escaping and shortening rule for every error, warning and note.

A label, a video id, a file name or an option value comes from the user and may hold anything: newlines (which
would split a one-line error and could forge a second ``rdfa-s6 ...: error:`` line), control characters,
lone surrogates (file names that are not UTF-8), or 20,000 characters. :func:`shown` makes such a string safe
to put in a message; :func:`one_line` is the last guard the command line applies to every message it prints.
Imports nothing heavy.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

#: the longest user string shown in a message; longer ones keep their head and tail around an ellipsis
MAX_SHOWN = 120


def _escape(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF) or code in (0x2028, 0x2029) \
                or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
            out.append(f"\\u{code:04x}")  # surrogates, non-characters, line separators, bidi overrides
        else:
            out.append(ch)
    return "".join(out)


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``value`` (a string, a path, bytes, anything) as it may appear in a message: one line, printable, at most
    ``limit`` characters (``head…tail`` beyond). Control characters, newlines, lone surrogates and bidirectional
    overrides are written as escapes (``\\n``, ``\\x00``, ``\\udc80``); everything else is kept as it is."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    elif isinstance(value, os.PathLike):
        text = os.fspath(value)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    text = _escape(text)
    if len(text) > limit:
        keep = max(limit - 1, 2)
        head = keep * 2 // 3
        text = text[:head] + "…" + text[len(text) - (keep - head):]
    return text


def printable(value: Any) -> str:
    """A path or name for ordinary output (where a file was written): the escapes of :func:`shown`, so that a
    name that is not UTF-8 or holds a newline prints as one line, but never shortened (it is there to be
    copied)."""
    return shown(value, limit=1 << 62)


def listed(values: Iterable[Any], first: int = 5, limit: int = 60) -> str:
    """The first ``first`` of ``values``, each :func:`shown` (at most ``limit`` characters), comma-separated, with
    `` ...`` when there are more: for messages that name a few labels, videos or files of many."""
    items = list(values)
    text = ", ".join(shown(v, limit) for v in items[:first])
    return text + (" ..." if len(items) > first else "")


def one_line(message: str, limit: int = 2000) -> str:
    """A whole message made safe to print as one line: the same escapes as :func:`shown`, shortened to ``limit``
    characters. The command line passes every error through it, so no message can split or forge a line."""
    return shown(message, limit)


def plural(n: int, word: str, plural_word: str = "") -> str:
    """``n`` and ``word`` in agreement: ``plural(1, "video")`` is ``"1 video"``, ``plural(2, "video")``
    ``"2 videos"``; ``plural_word`` for an irregular plural (default: ``word + "s"``). Every count that the
    figures, the viewer and their commands print goes through it (viewer.js has the same ``plural``)."""
    return f"{n} {word if n == 1 else plural_word or word + 's'}"
