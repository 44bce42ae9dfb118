"""Decoding with PyAV: frames on the clip grid, resized and centre-cropped, rotation applied, errors named.

A :class:`VideoReader` yields the frames ``0..N-1`` of the grid the clips are cut from (:mod:`.clips`), each
``[crop, crop, 3]`` uint8 RGB: the short side is scaled to ``short_side`` pixels (bilinear, FFmpeg's swscale),
then the centre ``crop x crop`` square is kept; ``short_side = 0`` resizes the whole frame to ``crop x crop``
instead (the aspect ratio is not kept: a backbone whose preprocessing squashes frames). The grid is

- the video's own frames at its own rate, for a constant-frame-rate video without ``fps``;
- frames resampled to ``fps`` (given), or to the average rate of a variable-frame-rate video: resampled frame
  ``j`` (at ``j / fps`` s from the first frame) shows the last decoded frame that starts at or before it.

So frame ``j`` of the grid is always at ``j / fps_used`` seconds, which is what the seconds <-> steps formula
assumes. Rotation metadata (the display matrix) is applied, as players do. Any problem (not a video, no video
stream, no frames, corrupt data, unreadable path) raises :class:`VideoError` naming the file.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import DataError
from .clips import resampled_count

log = logging.getLogger(__name__)

#: video file name endings picked up when a folder is given (any container FFmpeg reads works as a file)
#: the one list of video file extensions (lower case): what ``extract``/``infer`` take from a folder and what
#: the viewer links (``report.data.find_videos``); in order of preference when one video has several files
#: (those a browser plays first)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".m4v", ".mov", ".mkv", ".ogv", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".3gp")
#: frame-to-frame time jitter (fraction of the median interval) above which a video counts as variable-rate
VFR_TOLERANCE = 0.5


class VideoError(DataError):
    """A video cannot be decoded; the message names the file and the reason."""


@dataclass
class VideoInfo:
    """What decoding found out about one video. ``num_frames`` is filled when the frames have been read."""

    path: str
    native_fps: float  # the stream's average rate, frames/s
    fps: float  # the rate of the clip grid, frames/s
    width: int  # displayed size (after rotation), pixels
    height: int
    rotation: int  # degrees counter-clockwise applied for display
    vfr: bool  # variable frame rate (resampled to ``fps``)
    resampled: bool  # grid frames are resampled, not the decoded frames one by one
    num_frames: int = 0  # frames on the grid
    native_frames: int = 0  # frames decoded

    @property
    def duration(self) -> float:
        """Seconds covered by the grid frames: ``num_frames / fps``."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["duration"] = round(self.duration, 6)
        return out


def import_av() -> Any:
    """``import av`` (PyAV), or a one-line :class:`DataError` saying what to install."""
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the install
        raise DataError("decoding videos needs PyAV: pip install 'rdfa-s6[video]'") from err
    return av


def os_reason(err: BaseException) -> str:
    """FFmpeg's or the OS's reason, without the errno and the file name (the message names the file once)."""
    text = str(getattr(err, "strerror", None) or str(err)).strip() or type(err).__name__
    return text.splitlines()[0]


class VideoReader:
    """One video: ``open()`` checks it and fills :attr:`info`; ``frames()`` yields the grid frames once."""

    def __init__(self, path: Path, short_side: int, crop: int, fps: Optional[float] = None):
        self.path = Path(path)
        self.short_side = int(short_side)
        self.crop = int(crop)
        self.target_fps = fps
        self.info: Optional[VideoInfo] = None

    def open(self) -> VideoInfo:
        """Scan the packets (no decoding): stream, rate, variable rate, size. Raises :class:`VideoError`."""
        av = import_av()
        if not self.path.is_file():
            raise VideoError(f"{self.path}: not found or not a file")
        try:
            with av.open(str(self.path), mode="r") as container:
                if not container.streams.video:
                    raise VideoError(f"{self.path}: no video stream")
                stream = container.streams.video[0]
                width, height = stream.codec_context.width, stream.codec_context.height
                times = [float(p.pts * p.time_base) for p in container.demux(stream)
                         if p.pts is not None and p.size > 0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        except VideoError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise VideoError(f"{self.path}: cannot read as a video ({os_reason(err)})") from None
        if not times:
            raise VideoError(f"{self.path}: the video stream has no frames")
        if not width or not height:
            raise VideoError(f"{self.path}: the video stream has no frame size")
        times_arr = np.unique(np.asarray(times))
        deltas = np.diff(times_arr)
        median = float(np.median(deltas)) if len(deltas) else 0.0
        vfr = bool(len(deltas) > 2 and median > 0 and (deltas.max() - deltas.min()) > VFR_TOLERANCE * median)
        native_fps = float(rate) if rate else (1.0 / median if median > 0 else 0.0)
        if vfr and len(deltas):  # the average rate of the frames actually present
            native_fps = len(deltas) / float(times_arr[-1] - times_arr[0])
        if not native_fps > 0:
            if self.target_fps is None:
                raise VideoError(f"{self.path}: no frame rate in the file; pass --fps")
            native_fps = float(self.target_fps)
        fps = float(self.target_fps) if self.target_fps else native_fps
        if vfr and self.target_fps is None:
            log.warning("%s: variable frame rate; resampled to its average rate %.3f fps", self.path, fps)
        self.info = VideoInfo(path=str(self.path), native_fps=native_fps, fps=fps, width=width, height=height,
                              rotation=0, vfr=vfr, resampled=bool(self.target_fps) or vfr)
        return self.info

    def _scaled_size(self, width: int, height: int) -> Tuple[int, int]:
        if self.short_side <= 0:  # the whole frame, squashed to the crop
            return self.crop, self.crop
        scale = self.short_side / min(width, height)
        return max(self.crop, round(width * scale)), max(self.crop, round(height * scale))

    def _to_array(self, frame) -> np.ndarray:
        """A decoded frame -> ``[crop, crop, 3]`` uint8, rotated for display, short side scaled, centre crop."""
        rotation = int(round((frame.rotation or 0) / 90.0)) % 4
        width, height = (frame.height, frame.width) if rotation % 2 else (frame.width, frame.height)
        out_w, out_h = self._scaled_size(width, height)
        if rotation % 2:
            out_w, out_h = out_h, out_w  # scale the coded frame, rotate after
        img = frame.reformat(width=out_w, height=out_h, format="rgb24", interpolation="BILINEAR").to_ndarray()
        if rotation:
            img = np.rot90(img, k=rotation)
        h, w = img.shape[:2]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        return np.ascontiguousarray(img[top : top + self.crop, left : left + self.crop])

    def frames(self) -> Iterator[np.ndarray]:
        """The grid frames ``[crop, crop, 3]`` uint8, in order; :attr:`info` ``.num_frames`` is set at the end."""
        info = self.info or self.open()
        av = import_av()
        native = 0
        produced = 0
        pending: List[Tuple[float, np.ndarray]] = []  # resampling: the last decoded frame and its time
        first_time: Optional[float] = None
        last_time = 0.0
        try:
            with av.open(str(self.path), mode="r") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    if native == 0:
                        info.rotation = int(round(frame.rotation or 0)) % 360
                        if (info.rotation // 90) % 2:
                            info.width, info.height = info.height, info.width
                    img = self._to_array(frame)
                    native += 1
                    if not info.resampled:
                        produced += 1
                        yield img
                        continue
                    t = float(frame.time) if frame.time is not None else (native - 1) / info.native_fps
                    if first_time is None:
                        first_time = t
                    t -= first_time
                    last_time = max(last_time, t)
                    if pending:  # every grid time before this frame shows the previous frame
                        prev_t, prev = pending[0]
                        while produced / info.fps < t - 1e-6:
                            produced += 1
                            yield prev
                    pending = [(t, img)]
        except VideoError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise VideoError(f"{self.path}: decoding failed after {native} frames ({os_reason(err)})") from None
        if native == 0:
            raise VideoError(f"{self.path}: the video stream has no decodable frames")
        if info.resampled and pending:
            duration = last_time + 1.0 / info.native_fps  # the last frame lasts one average interval
            total = resampled_count(duration, info.fps)
            while produced < total:
                produced += 1
                yield pending[0][1]
        info.native_frames = native
        info.num_frames = produced


def read_all(path: Path, short_side: int, crop: int, fps: Optional[float] = None) -> Tuple[np.ndarray, VideoInfo]:
    """Every grid frame of a short video at once: ``[N, crop, crop, 3]`` uint8 and its info (tests, demos)."""
    reader = VideoReader(path, short_side, crop, fps)
    frames = list(reader.frames())
    assert reader.info is not None
    return np.stack(frames) if frames else np.zeros((0, crop, crop, 3), np.uint8), reader.info


__all__ = ["VIDEO_EXTENSIONS", "VideoError", "VideoInfo", "VideoReader", "read_all"]
