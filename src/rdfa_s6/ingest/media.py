"""Each imported video's duration (seconds) and frame rates, from the first source that knows the video:

1. ``extraction.json`` of ``rdfa-s6 extract`` (``--data-root DIR`` or ``--extraction FILE``): its per-video
   ``duration``, ``fps`` (the rate of the clip grid, what training reads) and ``native_fps`` (the file's own
   rate, what Label Studio's frame numbers count);
2. the video file ``<video_id>.<ext>`` in ``--videos DIR`` (probed with PyAV, no decoding): the container's
   duration and the stream's average rate;
3. the feature file ``DIR/features/<video_id>.npy`` of ``--data-root``: T rows on the grid of stride S and
   window W frames at F frames per second (``--stride``/``--window``/``--fps``, else extraction.json's
   settings) cover at least ((T - 1) S + W) / F seconds, which is taken as the duration.

``--fps`` is the rate frame numbers are read at when given (Label Studio's ``frameRate``, frames in a CSV).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import DataError
from ..formats.jsonfile import read_json
from ..messages import shown


@dataclass(frozen=True)
class MediaInfo:
    """What is known of one video: ``duration`` seconds, ``fps`` (the rate written to the annotation file),
    ``frame_rate`` (the rate frame numbers count), ``source`` (where it came from, for messages)."""

    duration: Optional[float] = None
    fps: Optional[float] = None
    frame_rate: Optional[float] = None
    source: str = ""


def _positive(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 and value == value and value != float("inf") else None


def read_extraction_file(path: Path) -> Dict[str, Any]:
    """The decoded ``extraction.json`` (one-line DataError when it is not one)."""
    data, _ = read_json(Path(path), "extraction file")
    if not isinstance(data, dict) or not isinstance(data.get("videos", {}), dict):
        raise DataError(f"extraction file {path}: expected an object with a 'videos' object "
                        f"(written by rdfa-s6 extract)")
    return data


def probe_video(path: Path) -> MediaInfo:
    """Duration and average frame rate of a video file from its container (PyAV; no frame is decoded)."""
    from ..video.decode import import_av  # the one place PyAV is imported (with its install hint)

    av = import_av()
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise DataError(f"video {path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000.0
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"video {path}: cannot read as a video ({str(err).splitlines()[0] if str(err) else err})") \
            from None
    fps = _positive(float(rate)) if rate else None
    return MediaInfo(_positive(duration), fps, fps, f"video {path}")


class MediaSources:
    """Looks videos up in the sources of the module doc, in that order (see :meth:`lookup`)."""

    def __init__(self, extraction: Optional[Path] = None, videos_dir: Optional[Path] = None,
                 features_dir: Optional[Path] = None, fps: Optional[float] = None,
                 stride: Optional[float] = None, window: Optional[float] = None):
        self.extraction_path = extraction
        self.extraction = read_extraction_file(extraction) if extraction is not None else None
        self.videos_dir = videos_dir
        self.features_dir = features_dir
        self.fps = fps
        settings = self.extraction or {}
        self.stride = stride if stride is not None else _positive(settings.get("stride"))
        self.window = window if window is not None else _positive(settings.get("window"))
        self.grid_fps = fps if fps is not None else _positive(settings.get("fps"))

    def lookup(self, video_id: str) -> MediaInfo:
        """The first source's :class:`MediaInfo` for ``video_id`` (an empty one when no source has it); the
        frame rate is ``--fps`` when given."""
        info = self._find(video_id)
        if self.fps is not None:
            info = MediaInfo(info.duration, info.fps or self.fps, self.fps, info.source or "--fps")
        return info

    def _find(self, video_id: str) -> MediaInfo:
        if self.extraction is not None:
            rec = self.extraction.get("videos", {}).get(video_id)
            if isinstance(rec, dict):
                fps = _positive(rec.get("fps"))
                return MediaInfo(_positive(rec.get("duration")), fps, _positive(rec.get("native_fps")) or fps,
                                 f"extraction file {self.extraction_path}")
        if self.videos_dir is not None:
            from ..video.decode import VIDEO_EXTENSIONS

            for ext in VIDEO_EXTENSIONS:
                for name in (video_id + ext, video_id + ext.upper()):
                    path = self.videos_dir / name
                    if path.is_file():
                        return probe_video(path)
        if self.features_dir is not None:
            path = self.features_dir / f"{video_id}.npy"
            if path.is_file():
                return self._from_features(path)
        return MediaInfo()

    def _from_features(self, path: Path) -> MediaInfo:
        if not (self.stride and self.window and self.grid_fps):
            raise DataError(f"feature file {path}: its duration needs the clip grid: give --stride, --window and "
                            f"--fps (or an extraction.json with them)")
        import numpy as np

        try:
            rows = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        except (OSError, ValueError, IndexError) as err:
            raise DataError(f"feature file {path}: cannot read as a [T, C] array ({shown(str(err))})") from None
        duration = ((rows - 1) * self.stride + self.window) / self.grid_fps if rows > 0 else None
        return MediaInfo(duration, self.grid_fps, self.grid_fps, f"feature file {path}")
