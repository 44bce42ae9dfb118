"""What ``rdfa-s6 watch`` reads: a video (a file, a file still being written, a URL FFmpeg opens, a capture
device) as grid frames, or feature rows (``.npy`` chunks appearing in a folder, ``.npy`` records on stdin).

Every source runs in a background thread that puts its items in a bounded queue (:class:`Feed`); the consumer
waits for the next item at most ``timeout`` seconds, so a stalled source of any kind is noticed the same way
(:class:`Stalled`). Formats (docs/streaming.md):

- feature folder: files ``*.npy``, each a ``[n, C]`` float array, taken in name order as they appear (write each
  under another name, e.g. ``x.npy.tmp``, and rename it into place: a file is read when its name ends in
  ``.npy``); a file named ``END`` ends the stream once every ``.npy`` file present is read;
- feature pipe (SOURCE ``-``): ``.npy`` records (the bytes ``numpy.save`` writes) one after another on stdin,
  each a ``[n, C]`` float array; the end of the input ends the stream.
"""
from __future__ import annotations

import io
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Set, Tuple

import numpy as np

from ..errors import DataError, UserError
from ..messages import shown
from ..video.clips import resampled_count
from ..video.decode import VideoError, VideoReader, import_av, os_reason

#: seconds between two looks at a feature folder
POLL_SECONDS = 0.05
#: the file that ends a feature folder's stream
END_FILE = "END"
#: items a source may decode ahead of the consumer (frames or chunks)
QUEUE_ITEMS = 64


class Stalled(Exception):
    """No item arrived for ``timeout`` seconds."""


def source_kind(source: str) -> str:
    """``video`` (a file, URL or capture device), ``folder`` (feature chunks) or ``pipe`` (``-``: stdin)."""
    if source == "-":
        return "pipe"
    if "://" not in source and Path(source).is_dir():
        return "folder"
    return "video"


class Feed:
    """Runs ``produce(put)`` in a daemon thread; :meth:`items` yields what it puts, waiting at most ``timeout``
    seconds for each (:class:`Stalled`), and re-raises its error in the consumer. ``stop()`` asks it to end."""

    def __init__(self, produce: Callable[[Callable[[Any], bool]], None], maxsize: int = QUEUE_ITEMS) -> None:
        self._queue: "queue.Queue[Tuple[str, Any]]" = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._produce = produce
        self._thread = threading.Thread(target=self._run, name="rdfa-s6-watch-source", daemon=True)

    def _put(self, item: Any) -> bool:
        """Queue ``item`` (waiting while the queue is full); False once the consumer has stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(("item", item), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._produce(self._put)
            message: Tuple[str, Any] = ("end", None)
        except BaseException as err:  # handed to the consumer, which raises it
            message = ("error", err)
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def items(self, timeout: float, stopped: Callable[[], bool] = lambda: False) -> Iterator[Any]:
        """The source's items; ends when it ends or ``stopped()`` turns true (looked at every 0.1 s while
        waiting and after each item); :class:`Stalled` after ``timeout`` seconds without an item."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        deadline = time.monotonic() + timeout
        while not stopped():
            try:
                kind, value = self._queue.get(timeout=min(0.1, timeout))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise Stalled() from None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            deadline = time.monotonic() + timeout  # the wait starts when the consumer asks again

    def stop(self) -> None:
        self._stop.set()


# ---- video ---------------------------------------------------------------------------------------------------
def video_url(source: str, follow: bool = False) -> Tuple[str, Optional[str], Dict[str, str]]:
    """(what FFmpeg opens, its format or None, its options) for a video SOURCE; VideoError for a missing file."""
    if "://" in source:
        return source, None, {}
    if source.startswith("/dev/video"):
        return source, "v4l2", {}
    path = Path(source)
    if not path.is_file():
        raise VideoError(f"{shown(source)}: not found (a video file, a URL such as rtsp://, tcp:// or http://, "
                         f"a capture device such as /dev/video0, a folder of .npy chunks, or - for stdin)")
    if follow:
        return "file:" + str(path.resolve()), None, {"follow": "1"}
    return str(path), None, {}


@dataclass
class LiveInfo:
    """What opening a live video found: the grid's frame rate (frames/s) and whether frames are resampled."""

    fps: float
    resampled: bool


class LiveVideo(VideoReader):
    """A video read once, front to back, as it arrives: the frames of the clip grid, each ``[crop, crop, 3]`` uint8
    (the same scaling, crop and rotation as :class:`~rdfa_s6.video.decode.VideoReader`). ``fps`` resamples to that
    rate (grid frame ``j`` at ``j / fps`` s shows the last frame that starts at or before it, as for files);
    without it the frames are taken one by one at the stream's own rate. ``follow``: a file still being written
    (FFmpeg's ``follow`` option: reading waits at its end). ``timeout``: seconds to wait when opening and for each
    read (FFmpeg's interrupt)."""

    def __init__(self, source: str, short_side: int, crop: int, fps: Optional[float] = None, follow: bool = False,
                 timeout: float = 10.0) -> None:
        super().__init__(Path(source), short_side, crop, fps)
        self.source, self.follow, self.timeout = source, follow, timeout
        self._container: Any = None

    def _url(self) -> Tuple[str, Optional[str], Dict[str, str]]:
        return video_url(self.source, self.follow)

    def open_live(self) -> LiveInfo:
        """Open the source (waiting at most ``timeout`` seconds) and find its frame rate. Raises VideoError."""
        av: Any = import_av()
        url, fmt, options = self._url()
        try:
            container = av.open(url, mode="r", format=fmt, options=options, timeout=(self.timeout, self.timeout))
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise VideoError(f"{shown(self.source)}: cannot open ({os_reason(err)})") from None
        if not container.streams.video:
            container.close()
            raise VideoError(f"{shown(self.source)}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if self.target_fps is None and not rate:
            container.close()
            raise VideoError(f"{shown(self.source)}: the stream states no frame rate")
        self._container = container
        fps = float(self.target_fps) if self.target_fps else float(rate)
        return LiveInfo(fps, bool(self.target_fps))

    def live_frames(self) -> Iterator[np.ndarray]:
        """The grid frames in order (call :meth:`open_live` first); ends when the source ends."""
        av: Any = import_av()
        container = self._container
        assert container is not None, "open_live() first"
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        native_fps = float(rate) if rate else float(self.target_fps or 1.0)
        produced = 0
        decoded = 0
        pending: Optional[np.ndarray] = None
        first: Optional[float] = None
        last = 0.0
        try:
            for frame in container.decode(stream):
                img = self._to_array(frame)
                decoded += 1
                if not self.target_fps:
                    yield img
                    continue
                t = float(frame.time) if frame.time is not None else (decoded - 1) / native_fps
                first = t if first is None else first
                t -= first
                last = max(last, t)
                if pending is not None:  # every grid time before this frame shows the previous one
                    while produced / self.target_fps < t - 1e-6:
                        produced += 1
                        yield pending
                pending = img
        except (av.error.FFmpegError, OSError, ValueError) as err:
            if "exit" in str(err).lower():  # FFmpeg's interrupt: no data within the timeout
                raise Stalled() from None
            raise VideoError(f"{shown(self.source)}: decoding failed after {decoded} frames "
                             f"({os_reason(err)})") from None
        finally:
            container.close()
        if decoded == 0:
            raise VideoError(f"{shown(self.source)}: the video stream has no decodable frames")
        if self.target_fps and pending is not None:
            total = resampled_count(last + 1.0 / native_fps, self.target_fps)  # the last frame lasts one interval
            while produced < total:
                produced += 1
                yield pending


# ---- feature rows ----------------------------------------------------------------------------------------------
def folder_chunks(folder: Path, put: Callable[[Any], bool], poll: float = POLL_SECONDS) -> None:
    """Put every ``.npy`` chunk of ``folder`` (name order, each once) until ``END`` appears and all are read."""
    seen: Set[str] = set()
    while True:
        ended = (folder / END_FILE).exists()  # looked at before listing: chunks written before END are all listed
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".npy") and not n.startswith(".")
                           and n not in seen)
        except OSError as err:
            raise DataError(f"{shown(folder)}: cannot list ({err.strerror})") from None
        for name in names:
            seen.add(name)
            if not put(load_chunk(folder / name)):
                return
        if ended and not names:
            return
        if not names:
            time.sleep(poll)


def load_chunk(path: Path) -> np.ndarray:
    """One ``.npy`` chunk: a ``[n, C]`` numeric array (DataError naming the file otherwise)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{shown(path)}: not a .npy array ({os_reason(err)})") from None
    return _checked(array, shown(path))


def _checked(array: Any, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name}: expected a [n, C] numeric array, got "
                        f"{getattr(array, 'shape', type(array).__name__)}")
    return array


class _Exact(io.RawIOBase):
    """A pipe read with ``read(n)`` returning exactly ``n`` bytes unless the input ends (what NumPy's reader needs
    of a non-seekable stream); ``at_end()`` tells whether another record follows."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._ahead = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        parts: List[bytes] = [self._ahead]
        have = len(self._ahead)
        self._ahead = b""
        while n < 0 or have < n:
            block = self.raw.read(65536 if n < 0 else n - have)
            if not block:
                break
            parts.append(block)
            have += len(block)
        return b"".join(parts)

    def at_end(self) -> bool:
        if not self._ahead:
            self._ahead = self.raw.read(1) or b""
        return not self._ahead


def pipe_records(stream: BinaryIO, put: Callable[[Any], bool]) -> None:
    """Put every ``.npy`` record of ``stream`` (``numpy.save`` output, one after another) until it ends."""
    reader = _Exact(stream)
    index = 0
    while not reader.at_end():
        try:
            array = np.lib.format.read_array(reader, allow_pickle=False)
        except (ValueError, EOFError, OSError) as err:
            raise DataError(f"stdin: record {index + 1} is not a .npy array ({os_reason(err)})") from None
        index += 1
        if not put(_checked(array, f"stdin: record {index}")):
            return


def check_source(source: str) -> None:
    """A one-line UserError for a SOURCE that cannot be one (an empty name)."""
    if not source.strip():
        raise UserError("SOURCE is empty: give a video file, a URL, a capture device, a folder of .npy chunks or -")


__all__ = ["END_FILE", "Feed", "LiveInfo", "LiveVideo", "Stalled", "check_source", "folder_chunks", "load_chunk",
           "pipe_records", "source_kind", "video_url"]
