"""``rdfa-s6 watch``'s work: a source (:mod:`.sources`) -> clips (:class:`~rdfa_s6.video.clips.ClipCutter`) ->
the backbone (:class:`~rdfa_s6.video.extract.FeatureEncoder`) -> a :class:`~.windows.DetectionStream` ->
``emit(detection)`` for each final detection. The command only parses, checks and prints.

Frames are decoded once, in a background thread; each clip is cut once from the frames still held and goes
through the backbone once; the model's overlapping windows reuse the rows. The end of the source, Ctrl-C
(SIGINT, with ``handle_sigint``) and a stall (no item for ``timeout`` seconds) all end the watch the same
way: the clips still pending are encoded, the stream is closed and its last detections are emitted.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, List, Optional, Tuple

import numpy as np
import torch

from ..device import resolve_device
from ..errors import UserError
from ..messages import shown
from ..precision import resolve_precision
from ..video.clips import ClipCutter
from ..video.reproduce import as_recorded
from .sources import Feed, LiveVideo, Stalled, folder_chunks, pipe_records, source_kind, video_url
from .windows import DetectionStream, StreamDetection

if TYPE_CHECKING:
    from ..api import Detector

#: how ``watch`` ended
ENDED, INTERRUPTED, STALLED = "ended", "interrupted", "stalled"


@dataclass
class WatchOptions:
    """Settings of one watch. ``timeout``: seconds a source may send nothing before it counts as stalled;
    ``follow``: a video file still being written; ``window_steps``/``hop_steps``/``min_score``: as
    :meth:`rdfa_s6.Detector.stream`; ``fps``/``stride``/``window``: of feature rows (feature sources only);
    ``batch_size``: clips per backbone call; ``device``/``precision``: of the backbone (default: the model's device,
    the recorded extraction precision); ``backbone_weights``: as ``infer --backbone-weights``; ``stdin``: the pipe
    of SOURCE ``-`` (default ``sys.stdin.buffer``)."""

    timeout: float = 10.0
    follow: bool = False
    window_steps: Optional[int] = None
    hop_steps: Optional[int] = None
    min_score: float = 0.0
    fps: Optional[float] = None
    stride: Optional[float] = None
    window: Optional[float] = None
    batch_size: int = 8
    device: Optional[str] = None
    precision: Optional[str] = None
    backbone_weights: Optional[Path] = None
    stdin: Optional[BinaryIO] = None
    handle_sigint: bool = False


@dataclass
class WatchSummary:
    """What a watch did: ``ended`` (``ended``, ``interrupted``, ``stalled``), detections emitted, stream seconds
    seen, rows (feature steps) and frames read, windows run, wall seconds, the stated delay bound and first report
    (seconds of stream time, :class:`~.windows.Windowing`) and the largest delay observed before the end
    (``emitted - end``, seconds; NaN when no detection was emitted while the source ran)."""

    ended: str
    detections: int
    stream_seconds: float
    rows: int
    frames: int
    windows: int
    wall_seconds: float
    delay_bound: float
    first_report: float
    max_delay: float


class _Rows:
    """Turns a source's items into feature rows ``[n, C]``: video frames through clips and the backbone, feature
    chunks as they are."""

    def __init__(self, encoder: Any = None, window: int = 0, stride: int = 0, batch_size: int = 8,
                 dtype: Optional[str] = None) -> None:
        self.encoder, self.batch_size, self.dtype = encoder, batch_size, dtype
        self.cutter = ClipCutter(window, stride) if encoder is not None else None
        self.batch: List[np.ndarray] = []
        self.frames = 0

    def __call__(self, item: np.ndarray) -> Optional[np.ndarray]:
        if self.cutter is None:
            return item
        self.frames += 1
        clip = self.cutter.push(item)
        if clip is not None:
            self.batch.append(clip)
        return self._encode() if len(self.batch) >= self.batch_size else None

    def flush(self) -> Optional[np.ndarray]:
        if self.cutter is None:
            return None
        tail = self.cutter.finish()
        if tail is not None:
            self.batch.append(tail)
        return self._encode() if self.batch else None

    def _encode(self) -> np.ndarray:
        rows: np.ndarray = self.encoder(torch.from_numpy(np.stack(self.batch))).numpy()
        self.batch = []
        return as_recorded(rows, self.dtype)


def watch(detector: "Detector", source: str, opts: WatchOptions, emit: Callable[[StreamDetection], None],
          on_progress: Optional[Callable[[float], None]] = None,
          on_start: Optional[Callable[[DetectionStream], None]] = None) -> WatchSummary:
    """Watch ``source`` with ``detector``; ``emit(d)`` for every final detection, in order; ``on_progress(s)``
    with the stream seconds seen after each push; ``on_start(stream)`` once the source is open. Raises
    UserError/DataError (one line) when the source cannot be opened or read."""
    if not (math.isfinite(opts.timeout) and opts.timeout > 0):
        raise UserError(f"timeout must be a positive number of seconds, got {opts.timeout}")
    kind = source_kind(source)
    start = time.perf_counter()
    if kind == "video":
        stream, feed, rows = _video(detector, source, opts)
    else:
        if opts.fps is None and detector.default_fps is None:
            raise UserError("--fps is required: the model's config has no data.default_fps and its training videos "
                            "had no common frame rate")
        stream = detector.stream(opts.fps, stride=opts.stride, window=opts.window, window_steps=opts.window_steps,
                                 hop_steps=opts.hop_steps, min_score=opts.min_score)
        if kind == "folder":
            folder = Path(source)
            feed = Feed(lambda put: folder_chunks(folder, put))
        else:
            pipe = opts.stdin if opts.stdin is not None else sys.stdin.buffer
            feed = Feed(lambda put: pipe_records(pipe, put))
        rows = _Rows()
    if on_start is not None:
        on_start(stream)
    w = stream.windowing
    stop = threading.Event()
    previous = None
    if opts.handle_sigint and threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

        previous = signal.signal(signal.SIGINT, on_sigint)
    count = 0
    max_delay = -math.inf

    def out(found: List[StreamDetection], live: bool) -> None:
        nonlocal count, max_delay
        for d in found:
            emit(d)
            count += 1
            if live:
                max_delay = max(max_delay, d.emitted - d.end)

    ended = ENDED
    try:
        try:
            for item in feed.items(opts.timeout, stop.is_set):
                got = rows(item)
                if got is not None:
                    out(stream.push(got), live=True)
                    if on_progress is not None:
                        on_progress(stream.stream_time)
        except Stalled:
            ended = STALLED
        except KeyboardInterrupt:  # without handle_sigint: the same flush
            ended = INTERRUPTED
        if stop.is_set():
            ended = INTERRUPTED
        feed.stop()
        tail = rows.flush()
        if tail is not None:
            out(stream.push(tail), live=False)
        out(stream.close(), live=False)
        if on_progress is not None:
            on_progress(stream.stream_time)
    finally:
        feed.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return WatchSummary(ended, count, stream.stream_time, stream.rows, rows.frames, stream.windows_run,
                        time.perf_counter() - start, w.delay_bound, w.first_report,
                        max_delay if count and max_delay > -math.inf else math.nan)


def _video(detector: "Detector", source: str, opts: WatchOptions) -> Tuple[DetectionStream, Feed, "_Rows"]:
    """(stream, feed, rows) of a video source: the model's recorded extraction rebuilt
    (:mod:`rdfa_s6.video.reproduce`)."""
    from ..video.extract import FeatureEncoder
    from ..video.reproduce import backbone_for, describe

    video_url(source, opts.follow)  # a missing file first: before what the model needs
    given = [f"--{n}" for n in ("fps", "stride", "window") if getattr(opts, n) is not None]
    if given:
        raise UserError(f"{', '.join(given)}: only for feature rows; a video's frames are read at its own frame rate "
                        f"and cut into clips as the model's training features were (recorded with the model)")
    settings = detector.extraction
    if not settings:
        raise UserError(f"{shown(source)}: this model was not trained on features from `rdfa-s6 extract`; it takes "
                        f"{describe(None, detector.input_dim)}: watch a folder of .npy chunks or - (stdin)")
    if settings["feature_dim"] != detector.input_dim:
        raise UserError(f"{detector.source}: the recorded extraction gives {settings['feature_dim']}-d features but "
                        f"the model expects {detector.input_dim}")
    backbone = backbone_for(settings, opts.backbone_weights)
    device = resolve_device(opts.device or str(detector.device))
    precision = resolve_precision(opts.precision or settings.get("precision") or "fp32", device)
    encoder = FeatureEncoder(backbone, device, precision)
    live = LiveVideo(source, backbone.short_side, backbone.crop, settings.get("fps"), opts.follow, opts.timeout)
    info = live.open_live()
    stream = detector.stream(info.fps, stride=float(settings["stride"]), window=float(settings["window"]),
                             window_steps=opts.window_steps, hop_steps=opts.hop_steps, min_score=opts.min_score)

    def produce(put: Callable[[Any], bool]) -> None:
        for frame in live.live_frames():
            if not put(frame):
                return

    rows = _Rows(encoder, int(settings["window"]), int(settings["stride"]), opts.batch_size, settings.get("dtype"))
    return stream, Feed(produce), rows


__all__ = ["ENDED", "INTERRUPTED", "STALLED", "WatchOptions", "WatchSummary", "watch"]
