"""Reading a JSON file, and the pieces every format reader shares: where a value sits, a short preview of a bad
value, numbers and ``[start, end]`` pairs.

One error style for every format: ``<what> <file>: video '<id>', <item>, field '<name>'[<index>]: <problem>``,
e.g. ``ground truth gt.json: video 'v1', annotations[0], field 'segment'[1]: expected a number, got str 'ten'``.
Every problem is a one-line :class:`~rdfa_s6.errors.DataError` (the command line prints it and exits with 2).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple, Union

from ..errors import DataError, UserError

#: what a reader accepts: the path of a JSON file, or the decoded document itself (named ``<dict>``)
Source = Union[str, Path, Mapping[str, Any]]


def read_json(source: Source, what: str) -> Tuple[Any, str]:
    """``(data, name)``: the decoded JSON of a path (``name`` is the path), or a mapping given directly
    (``name`` is ``<dict>``). Every I/O or syntax problem is a DataError naming ``what`` and the file."""
    if isinstance(source, Mapping):
        return source, "<dict>"
    if not isinstance(source, (str, Path)):
        raise UserError(f"{what}: expected a path or a dict, got {type(source).__name__}")
    path = Path(source)
    try:
        with open(path, "r", encoding="utf-8") as fobj:
            return json.load(fobj), str(path)
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{what} {path}: not valid JSON (truncated?): {err.msg} at line {err.lineno} "
                        f"column {err.colno}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{what} {path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    except (ValueError, RecursionError) as err:  # e.g. a NUL byte in the path, absurdly deep nesting
        raise DataError(f"{what} {path}: cannot read: {err}") from None


def where(what: str, name: str, video: Any = None, item: Optional[str] = None, field: Optional[str] = None) -> str:
    """The location part of an error message: ``<what> <name>: video 'v1', annotations[0], field 'segment'``
    (the parts that are None are left out)."""
    parts = []
    if video is not None:
        parts.append(f"video {preview(str(video), 80)}")
    if item is not None:
        parts.append(item)
    if field is not None:
        parts.append(f"field {field!r}")
    return f"{what} {name}" + (": " + ", ".join(parts) if parts else "")


def preview(value: Any, limit: int = 40) -> str:
    """A short ``repr`` of a value for an error message (never raises)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - huge ints, absurd nesting: only the type is shown
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_number(value: Any, at: str) -> float:
    """A finite float from a JSON number (not a bool), or a DataError naming ``at``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{at}: expected a number, got {type(value).__name__} {preview(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise DataError(f"{at}: expected a finite number, got {preview(value)}") from None
    if not math.isfinite(out):
        raise DataError(f"{at}: expected a finite number, got {preview(value)}")
    return out


def optional_number(value: Any, at: str) -> Optional[float]:
    """:func:`parse_number`, with JSON ``null`` (or a missing field) as None."""
    return None if value is None else parse_number(value, at)


def parse_segment(seg: Any, at: str) -> Tuple[float, float]:
    """``[start_s, end_s]`` as two finite floats (in any order: ordering is the caller's policy), or a DataError
    naming ``at`` (``at`` ends with the field, e.g. ``..., field 'segment'``; ``[0]``/``[1]`` name a bound)."""
    if not isinstance(seg, (list, tuple)) or len(seg) != 2:
        raise DataError(f"{at}: expected [start_s, end_s], a list of two numbers, got {preview(seg, 60)}")
    return parse_number(seg[0], f"{at}[0]"), parse_number(seg[1], f"{at}[1]")
