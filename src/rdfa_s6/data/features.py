"""Reading per-video feature files ``[T, C]`` (``.npy``, ``.npz``, ``.pt``) as float32 ``[C, T]`` tensors
(docs/model.md §2.2).

A video's file is ``feature_dir / (prefix + video_id + suffix + ext)``. Files are time-major on disk; the
reader keeps every ``downsample_rate``-th step, casts to float32 and transposes. Nothing is unpickled:
``.npy``/``.npz`` load with ``allow_pickle=False``, ``.pt`` with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import pickle
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

if TYPE_CHECKING:
    from ..config.schema import DataConfig

EXTENSIONS = (".npy", ".npz", ".pt")


@dataclass(frozen=True)
class FeatureReader:
    """Finds and loads one video's features. ``input_dim`` (C), when set, is checked on every file."""

    feature_dir: Union[str, Path]
    prefix: str = ""
    suffix: str = ""
    ext: str = ".npy"
    downsample_rate: int = 1
    input_dim: Optional[int] = None

    def __post_init__(self) -> None:
        if self.ext not in EXTENSIONS:
            raise DataError(f"feature file extension {self.ext!r} is not supported; use one of {', '.join(EXTENSIONS)}")
        if self.downsample_rate < 1:
            raise DataError(f"downsample_rate must be >= 1, got {self.downsample_rate}")

    def path(self, video_id: str) -> Path:
        return Path(self.feature_dir) / f"{self.prefix}{video_id}{self.suffix}{self.ext}"

    def load(self, video_id: str) -> Tensor:
        """Features of ``video_id`` as float32 [C, T]."""
        path = self.path(video_id)
        array = _read_array(path, video_id)  # float32 numpy [T, C] (any float dtype and byte order cast)
        self._check_shape(path, video_id, tuple(array.shape))
        feats = torch.as_tensor(array[:: self.downsample_rate]).float()
        if not torch.isfinite(feats).all():
            bad = int((~torch.isfinite(feats)).any(dim=1).nonzero()[0]) * self.downsample_rate
            raise DataError(f"{path}: video {video_id!r}: features contain NaN or Inf (first at step {bad} of the "
                            f"[T, C] array); expected finite values")
        return feats.t().contiguous()

    def peek(self, video_id: str) -> Optional[Tuple[int, int]]:
        """``(T, C)`` as stored on disk, read from a ``.npy`` header alone (no data is read), with the checks of
        :meth:`load` that need no data: file present, one float array, rank 2, ``T > 0``, ``C == input_dim``.

        ``None`` for ``.npz``/``.pt`` files, whose shape is only known once the whole file is read. NaN/Inf are
        only found by :meth:`load`.
        """
        path = self.path(video_id)
        if self.ext != ".npy":
            return None
        if not path.is_file():
            raise DataError(f"feature file for video {video_id!r} not found: {path}")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as err:  # a malformed header makes numpy raise almost anything
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(f"{path}: video {video_id!r}: cannot read features ({first[:200]})") from None
        if not isinstance(array, np.ndarray):
            array.close()
            raise DataError(f"{path}: video {video_id!r}: a .npy file must hold one array (this is a zip archive)")
        shape, kind, dtype = tuple(array.shape), array.dtype.kind, array.dtype
        del array  # closes the memory map
        if kind != "f":
            raise DataError(f"{path}: video {video_id!r}: features must be float16/float32/float64, got {dtype}")
        self._check_shape(path, video_id, shape)
        return int(shape[0]), int(shape[1])

    def _check_shape(self, path: Path, video_id: str, shape: Tuple[int, ...]) -> None:
        if len(shape) != 2:
            raise DataError(f"{path}: video {video_id!r}: features must be a [T, C] array, got shape {shape}")
        if shape[0] == 0:
            raise DataError(f"{path}: video {video_id!r}: features have zero time steps (an empty video)")
        if self.input_dim is not None and shape[1] != self.input_dim:
            raise DataError(f"{path}: video {video_id!r}: features have {shape[1]} channels, expected "
                            f"{self.input_dim} (shape must be [T, C])")


@contextmanager
def quiet_parsers() -> Iterator[None]:
    """Warnings that numpy's and torch's parsers print for a malformed file (an odd pickle protocol, an invalid
    escape in a .npy header): such a file is a DataError of ours, named once, not a warning of theirs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
        yield


def _read_array(path: Path, video_id: str):
    if not path.is_file():
        raise DataError(f"feature file for video {video_id!r} not found: {path}")
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as handle, quiet_parsers():  # closed however numpy fails on a malformed file
                array = np.load(handle, allow_pickle=False)
                if not isinstance(array, np.ndarray):
                    raise DataError(f"{path}: video {video_id!r}: a .npy file must hold one array (this is a zip "
                                    f"archive)")
        elif path.suffix == ".npz":
            with open(path, "rb") as handle, quiet_parsers():
                npz = np.load(handle, allow_pickle=False)
                if isinstance(npz, np.ndarray):
                    raise DataError(f"{path}: video {video_id!r}: a .npz file must be a zip archive "
                                    "(this is a plain .npy array)")
                with npz:
                    keys = list(npz.keys())
                    if not keys:
                        raise DataError(f"{path}: video {video_id!r}: the .npz file holds no array")
                    array = npz["feats"] if "feats" in keys else npz[keys[0]]
        else:
            with quiet_parsers():
                array = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(array, dict):
                tensors = [v for v in array.values() if isinstance(v, Tensor)]
                if len(tensors) != 1:
                    raise DataError(f"{path}: video {video_id!r}: expected one tensor, "
                                    f"got a dict of {len(array)} items")
                array = tensors[0]
            if not isinstance(array, Tensor):
                raise DataError(f"{path}: video {video_id!r}: expected a tensor, got {type(array).__name__}")
        if isinstance(array, Tensor):
            if not array.is_floating_point():
                raise DataError(f"{path}: video {video_id!r}: features must be float16/float32/float64, "
                                f"got {array.dtype}")
            if array.layout != torch.strided:
                array = array.to_dense()
            return array.detach().to(torch.float32).numpy()
        if not isinstance(array, np.ndarray):
            raise DataError(f"{path}: video {video_id!r}: expected one array, got {type(array).__name__}")
        if array.dtype.kind != "f":
            raise DataError(f"{path}: video {video_id!r}: features must be float16/float32/float64, got {array.dtype}")
        return np.asarray(array, dtype=np.float32)  # also normalises the byte order
    except DataError:
        raise
    except Exception as err:  # a malformed file can make numpy/torch parsers raise almost anything
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = "refused to unpickle it" if isinstance(err, pickle.UnpicklingError) else "cannot read features"
        raise DataError(f"{path}: video {video_id!r}: {kind} ({first[:200]})") from None


def feature_files(path: Union[str, Path]) -> List[Path]:
    """``path`` itself if it is a feature file, else the feature files (by extension) directly in the folder
    ``path``, sorted by name; a UserError when there is none."""
    from ..errors import UserError

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in EXTENSIONS and p.is_file())
        if not files:
            raise UserError(f"{path} holds no {'/'.join(EXTENSIONS)} feature file")
        return files
    if path.is_file():
        if path.suffix not in EXTENSIONS:
            raise UserError(f"{path}: feature files must end in {', '.join(EXTENSIONS)}")
        return [path]
    raise UserError(f"feature file or folder {path} not found")


def feature_reader(cfg: "DataConfig", feature_dir: Path, input_dim: Optional[int] = None) -> FeatureReader:
    """The reader of a dataset's feature files as the ``data`` config section describes them."""
    return FeatureReader(feature_dir, cfg.file_prefix, cfg.file_suffix, cfg.file_ext, cfg.downsample_rate,
                         input_dim if input_dim is not None else cfg.input_dim)
