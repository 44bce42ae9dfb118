"""The one rule for the data paths of a config (``data.annotation_file``, ``data.feature_dir``,
``data.skip_videos_file``, ``infer.ext_score_file``): ``~`` expanded; absolute as it is; relative under
``--data-root`` when one is given, else under the working directory. Torch-free."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


def under_root(value: Union[str, Path], data_root: Optional[Union[str, Path]]) -> Path:
    """A data path of the config: absolute as it is; relative under ``data_root`` if given, else under the
    working directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or data_root is None else Path(data_root) / path
