"""Video files -> clip features ``[T, C]`` in the project's dataset layout (see :mod:`.records`).

Pipeline: worker processes decode videos ahead (:class:`ClipStream`, a torch ``IterableDataset``; each worker
takes whole videos) and send batches of uint8 clips ``[b, W, crop, crop, 3]``; the main process runs them
through the backbone (bf16 autocast where it pays) and writes each video's features atomically when its last
clip is done. Finished videos are skipped on a rerun. Under ``torchrun`` (``RANK``/``WORLD_SIZE``), rank ``r``
takes videos ``r, r + world, ...`` of the sorted list; the last rank to finish merges ``extraction.json``.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .. import shards
from ..atomic import atomic_write_bytes, atomic_write_json
from ..device import resolve_device
from ..errors import UserError
from ..filenames import utf8_id
from ..precision import EXTRACT_PRECISIONS, autocast_dtype, resolve_precision
from ..progress import Progress, report
from . import records
from .backbones import Backbone, build_backbone
from .clips import ClipCutter, num_clips
from .decode import VIDEO_EXTENSIONS, VideoError, VideoReader

log = logging.getLogger(__name__)


@dataclass
class ExtractOptions:
    """Settings of one extraction. ``stride``/``window`` in frames of the grid; ``fps`` None = each video's own."""

    out: Path
    backbone: str
    weights: Optional[Path] = None
    random_init: bool = False
    fps: Optional[float] = None
    stride: int = 4
    window: int = 16
    batch_size: int = 8
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (precision.EXTRACT_PRECISIONS)
    subset: str = "training"
    workers: int = 1
    dtype: str = "float32"  # of the written files: float32 | float16
    rank: int = 0
    world_size: int = 1
    #: allow code from outside the package: a transformers folder's custom modelling code (``hf:``), a ``py:``
    #: plug-in
    trust_remote_code: bool = False


@dataclass
class ExtractSummary:
    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)  # finished by an earlier run
    failed: Dict[str, str] = field(default_factory=dict)  # video id -> one-line reason
    merged: bool = False
    seconds: float = 0.0
    video_seconds: float = 0.0


def list_videos(inputs: Sequence[Path]) -> Dict[str, Path]:
    """Video id (file stem) -> path. Folders contribute their files with a video extension (not recursive);
    files are taken as given, whatever their extension. Two files with the same stem are an error."""
    found: Dict[str, Path] = {}
    for item in inputs:
        item = Path(item)
        paths = sorted(p for p in item.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()) \
            if item.is_dir() else [item]
        if item.is_dir() and not paths:
            raise UserError(f"{item} holds no video file ({', '.join(VIDEO_EXTENSIONS)})")
        for p in paths:
            utf8_id(p.stem)
            if p.stem in found and found[p.stem] != p:
                raise UserError(f"two videos with the id {p.stem!r}: {found[p.stem]} and {p}; rename one")
            found[p.stem] = p
    return dict(sorted(found.items()))


def dist_env() -> Tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise (:mod:`rdfa_s6.shards`)."""
    return shards.rank_and_world()


class ClipStream(IterableDataset):
    """Decodes ``videos`` (id -> path) and yields messages, in order per video:
    ``("clips", id, uint8 [b, W, crop, crop, 3])``..., then ``("done", id, info)`` or ``("error", id, reason)``.
    In worker processes each worker takes every ``num_workers``-th video."""

    def __init__(self, videos: Sequence[Tuple[str, Path]], short_side: int, crop: int, window: int, stride: int,
                 batch_size: int, fps: Optional[float]):
        self.videos, self.short_side, self.crop = list(videos), short_side, crop
        self.window, self.stride, self.batch_size, self.fps = window, stride, batch_size, fps

    def __iter__(self) -> Iterator[Tuple[str, str, Any]]:
        info = get_worker_info()
        mine = self.videos if info is None else self.videos[info.id :: info.num_workers]
        for vid, path in mine:
            try:
                yield from self._video(vid, path)
            except VideoError as err:
                yield ("error", vid, str(err))
            except MemoryError:
                yield ("error", vid, f"{path}: out of memory while decoding")

    def _video(self, vid: str, path: Path) -> Iterator[Tuple[str, str, Any]]:
        reader = VideoReader(path, self.short_side, self.crop, self.fps)
        reader.open()
        cutter = ClipCutter(self.window, self.stride)
        batch: List[np.ndarray] = []
        for frame in reader.frames():
            clip = cutter.push(frame)
            if clip is not None:
                batch.append(clip)
                if len(batch) == self.batch_size:
                    yield ("clips", vid, torch.from_numpy(np.stack(batch)))
                    batch = []
        tail = cutter.finish()  # a video shorter than one clip: one clip, padded with the last frame
        if tail is not None:
            batch.append(tail)
        if batch:
            yield ("clips", vid, torch.from_numpy(np.stack(batch)))
        assert reader.info is not None
        yield ("done", vid, reader.info.to_dict())


class FeatureEncoder:
    """The backbone on a device and precision: uint8 clips ``[b, W, crop, crop, 3]`` -> float32 ``[b, C]``.

    ``Backbone.preprocess`` (the normalisation, or an ``hf:`` model's own processor) runs in float32; only the
    module runs under autocast when ``precision`` is ``bf16`` or ``fp16``."""

    def __init__(self, backbone: Backbone, device: torch.device, precision: str):
        self.backbone, self.device, self.precision = backbone, device, precision
        self.autocast_dtype = autocast_dtype(precision)  # None: float32, no autocast
        backbone.module.to(device)

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.backbone.preprocess(clips.to(self.device, non_blocking=True))
        if self.autocast_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                y = self.backbone.module(x)
        else:
            y = self.backbone.module(x)
        return y.float().cpu()


def settings_of(opts: ExtractOptions, backbone: Backbone, precision: str) -> Dict[str, Any]:
    keep = backbone.weights in ("random-init", "weight-free") or backbone.weights.startswith(("hf:", "py:"))
    return {"backbone": backbone.name, "weights": backbone.weights if keep else Path(backbone.weights).name,
            "weights_sha256": backbone.sha256, "feature_dim": backbone.feature_dim,
            "fps": opts.fps, "stride": opts.stride, "window": opts.window, "short_side": backbone.short_side,
            "crop": backbone.crop, "dtype": opts.dtype, "precision": precision,
            # the identity of the backbone beyond its name and weights (records.IDENTITY_KEYS)
            "config_sha256": backbone.config_sha256, "versions": records.library_versions()}


#: the frame rates a video may be resampled to: an infinite rate never ends, 1e6 fps takes minutes per second
FPS_RANGE = (0.01, 1000.0)


def validate(opts: ExtractOptions, backbone: Optional[Backbone] = None) -> None:
    if opts.stride < 1 or opts.window < 1 or opts.batch_size < 1 or opts.workers < 0:
        raise UserError("--stride, --window and --batch-size must be >= 1, --workers >= 0")
    if opts.fps is not None and not FPS_RANGE[0] <= opts.fps <= FPS_RANGE[1]:  # NaN and infinities too
        raise UserError(f"--fps: expected frames per second in [{FPS_RANGE[0]}, {FPS_RANGE[1]:g}], got {opts.fps}")
    if opts.dtype not in ("float32", "float16"):
        raise UserError(f"--dtype: expected float32 or float16, got {opts.dtype!r}")
    if backbone is not None and backbone.window is not None and opts.window != backbone.window:
        raise UserError(f"backbone {backbone.name} takes clips of exactly {backbone.window} frames; "
                        f"got --window {opts.window}")


def extract(inputs: Sequence[Path], opts: ExtractOptions, progress: Optional[Progress] = None,
            backbone: Optional[Backbone] = None) -> ExtractSummary:
    """Extract features of every video in ``inputs`` (files or folders) into ``opts.out``. Failed videos are
    listed in the summary (and in ``extraction.json``), never half-written. ``progress(done, total)`` is called
    before the first video this process extracts and after each (done or failed). ``opts.out`` is the folder a lock
    would guard (one extraction per folder, or several ranks of one ``torchrun``)."""
    start = time.perf_counter()
    validate(opts)
    videos = list_videos(inputs)
    local_rank = dist_env()[2]
    device = resolve_device(opts.device, local_rank)
    precision = resolve_precision(opts.precision, device, EXTRACT_PRECISIONS)
    if backbone is None:
        backbone = build_backbone(opts.backbone, opts.weights, opts.random_init,
                                  trust_remote_code=opts.trust_remote_code)
    validate(opts, backbone)
    out = Path(opts.out)
    records.check_settings(out, settings_of(opts, backbone, precision))
    records.clear_rank_marker(out, opts.rank, opts.world_size)
    summary = ExtractSummary()
    mine = shards.share(list(videos.items()), opts.rank, opts.world_size)
    todo: List[str] = []
    for vid, _path in mine:
        (summary.skipped if records.is_done(out, vid) else todo).append(vid)
    enc = FeatureEncoder(backbone, device, precision)
    stream = ClipStream([(v, videos[v]) for v in todo], backbone.short_side, backbone.crop, opts.window,
                        opts.stride, opts.batch_size, opts.fps)
    loader = DataLoader(stream, batch_size=None, num_workers=opts.workers,
                        prefetch_factor=4 if opts.workers else None, persistent_workers=False)
    pending: Dict[str, List[torch.Tensor]] = {}
    report(progress, 0, len(todo))
    for kind, vid, payload in loader:
        if kind == "clips":
            pending.setdefault(vid, []).append(enc(payload))
        elif kind == "error":
            pending.pop(vid, None)
            summary.failed[vid] = payload
            log.info("failed: %s", payload)
            report(progress, len(summary.done) + len(summary.failed), len(todo))
        else:
            feats = torch.cat(pending.pop(vid)).numpy() if vid in pending else np.zeros((0, backbone.feature_dim))
            expected = num_clips(payload["num_frames"], opts.window, opts.stride)
            assert feats.shape[0] == expected, (vid, feats.shape, expected)
            write_video_features(out, vid, videos[vid], feats.astype(opts.dtype), payload)
            summary.done.append(vid)
            summary.video_seconds += payload["duration"]
            report(progress, len(summary.done) + len(summary.failed), len(todo))
    records.write_rank_marker(out, opts.rank, opts.world_size, summary.failed)
    if records.all_ranks_done(out, opts.world_size):
        records.merge(out, opts.world_size, opts.subset)
        summary.merged = True
    summary.seconds = time.perf_counter() - start
    return summary


def write_video_features(out: Path, vid: str, path: Path, feats: np.ndarray, info: Dict[str, Any]) -> None:
    """The feature file, then the record that marks the video finished (both atomic)."""
    buf = io.BytesIO()
    np.save(buf, feats, allow_pickle=False)
    atomic_write_bytes(out / "features" / f"{vid}.npy", buf.getvalue())
    rec = {"path": str(path), "num_frames": info["num_frames"], "native_frames": info["native_frames"],
           "native_fps": round(info["native_fps"], 6), "fps": round(info["fps"], 6), "duration": info["duration"],
           "T": int(feats.shape[0]), "width": info["width"], "height": info["height"], "rotation": info["rotation"],
           "vfr": info["vfr"], "resampled": info["resampled"],
           **records.file_facts(buf.getvalue(), feats.shape, feats.dtype.name)}
    atomic_write_json(records.video_record_path(out, vid), rec)


def extract_one(path: Path, backbone: Backbone, window: int, stride: int, fps: Optional[float],
                batch_size: int = 8, device: str = "cpu", precision: str = "fp32") -> Tuple[np.ndarray, Dict[str, Any]]:
    """Features ``[T, C]`` float32 and the decode info of one video, in this process (no files written). Used by
    ``infer`` on a video. Raises :class:`VideoError` for a bad video."""
    dev = resolve_device(device)
    enc = FeatureEncoder(backbone, dev, resolve_precision(precision, dev, EXTRACT_PRECISIONS))
    stream = ClipStream([(Path(path).stem, Path(path))], backbone.short_side, backbone.crop, window, stride,
                        batch_size, fps)
    feats: List[torch.Tensor] = []
    for kind, _vid, payload in stream:
        if kind == "clips":
            feats.append(enc(payload))
        elif kind == "error":
            raise VideoError(payload)
        else:
            out = torch.cat(feats).numpy() if feats else np.zeros((0, backbone.feature_dim), np.float32)
            return out, payload
    raise AssertionError("unreachable")
