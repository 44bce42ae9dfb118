"""The small matplotlib helpers every plot of :mod:`rdfa_s6.viz` uses: a lazy, headless (Agg) pyplot
import, an atomic PNG writer, a colour per class (:func:`.colors.class_colors`, a function of the class name)
and :func:`label_text` for user text on a plot. Nothing here imports matplotlib at module import time.

User text (class names, video ids, folder names) goes through :func:`label_text` before it is drawn: ``$`` is
escaped (``\\$``), so matplotlib never reads it as mathtext (a label ``$\\frac{1}{$`` is shown as typed
instead of failing to parse), control characters are escaped and long names shortened, so that a
20,000-character label cannot make the image too large to draw.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Union

from ..atomic import atomic_write_bytes
from ..errors import UserError
from ..messages import shown
from .colors import class_colors

PathLike = Union[str, Path]

__all__ = ["MATPLOTLIB_MISSING", "MAX_LABEL", "PathLike", "class_colors", "label_text", "pyplot", "save_png"]

MATPLOTLIB_MISSING = "matplotlib is needed: pip install 'rdfa-s6[viz]'"
#: the longest class name or video id drawn on a plot (longer ones keep their head and tail)
MAX_LABEL = 60


def label_text(text: Any, limit: int = MAX_LABEL) -> str:
    """User text as drawn on a plot: one line, control characters and lone surrogates escaped, at most
    ``limit`` characters (:func:`rdfa_s6.messages.shown`), and every ``$`` escaped as ``\\$`` (matplotlib
    shows it as ``$`` and parses no mathtext in a text without unescaped dollars)."""
    return shown(text, limit).replace("$", "\\$")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend, or :class:`UserError` when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UserError(MATPLOTLIB_MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, out_png: PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``out_png`` atomically (temporary file in the same folder, then ``os.replace``),
    close the figure and return the path. The folder is created if needed."""
    plt = pyplot()
    path = Path(out_png)
    try:
        folder = path.parent if str(path.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create folder {shown(folder)} for {shown(path.name)}: {shown(err)}") from None
        if path.is_dir():
            raise UserError(f"{shown(path)} is a folder, expected a .png file path")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as err:
            raise UserError(f"cannot write {shown(path)}: {shown(err)}") from None
    finally:
        plt.close(fig)
    return path
