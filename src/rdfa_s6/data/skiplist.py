"""Videos left out of a dataset (``data.skip_videos_file``): upstream's lists of broken or missing videos.

The file is data, not code: one video id a line, blank lines and ``#`` comments ignored. A relative path names
a file shipped beside the presets (``rdfa_s6/configs/hacs_skip.txt``); if there is none of that name, it is a
data path like the others (under ``--data-root``, else the working directory).

Skipped videos are neither trained on nor predicted (``AnnotationSet.split`` leaves them out), as upstream's
loaders do. The metric's ground truth is still the whole annotation file, as upstream's evaluator reads it, so a
skipped video of the evaluated split counts as missed.
"""
from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import DataError
from .annotations import AnnotationSet
from .paths import under_root

log = logging.getLogger(__name__)

#: ids named in the warning
SHOWN = 5


def resolve_skip_file(value: str, data_root: Optional[Path]) -> Path:
    """The file ``data.skip_videos_file`` names: absolute as it is; relative, a packaged file beside the presets
    if one has that name, else under ``data_root`` (or the working directory)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        packaged = resources.files("rdfa_s6") / "configs" / value
        if packaged.is_file():
            return Path(str(packaged))
        path = under_root(path, data_root)
    if not path.is_file():
        raise DataError(f"data.skip_videos_file: {value!r} is neither a file shipped with the presets nor a file "
                        f"at {path}")
    return path


def read_skip_list(path: Path) -> List[str]:
    """Video ids of a skip file, in file order: one a line; blank lines and ``#`` comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"data.skip_videos_file {path}: cannot read ({err})") from None
    ids = []
    for line in text.splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            ids.append(item)
    return ids


def apply_skip_list(annotations: AnnotationSet, ids: Sequence[str], splits: Sequence[str], source: str) -> List[str]:
    """Leave ``ids`` out of every split of ``annotations`` (in place); return the skipped ids that are in
    ``splits``, which one warning names (count and the first few)."""
    annotations.skipped = frozenset(ids)
    wanted = {s.lower() for s in splits}
    hit = [vid for vid, rec in annotations.videos.items()
           if vid in annotations.skipped and rec.subset.lower() in wanted]
    if hit:
        more = f" and {len(hit) - SHOWN} more" if len(hit) > SHOWN else ""
        log.warning("skipping %d video(s) of split(s) %s listed in %s (upstream's broken or missing videos): %s%s",
                    len(hit), ", ".join(sorted(wanted)), source, ", ".join(hit[:SHOWN]), more)
    return hit
