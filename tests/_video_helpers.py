"""Short test videos written with PyAV: frame k shows its index as a grey level, so decoded frames can be
identified (lossy codecs change pixel values by a few levels, never by the 8-level spacing used here)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

CODECS = {".mp4": "libx264", ".avi": "mpeg4", ".mkv": "mjpeg", ".webm": "libvpx-vp9"}


def frame_image(k: int, width: int, height: int) -> np.ndarray:
    """Frame k: a uniform grey of level 16 + 8 * (k % 28) with a white square in the top-left quarter."""
    img = np.full((height, width, 3), 16 + 8 * (k % 28), np.uint8)
    img[: max(1, height // 4), : max(1, width // 4)] = 255
    return img


def frame_level(img: np.ndarray) -> int:
    """The frame index (mod 28) a decoded frame shows, from the median grey level of its bottom-right quarter."""
    h, w = img.shape[:2]
    return int(round((float(np.median(img[h // 2 :, w // 2 :])) - 16) / 8))


def write_video(path: Path, num_frames: int, fps: int = 30, width: int = 64, height: int = 48,
                codec: Optional[str] = None, times: Optional[Sequence[float]] = None, rotation: int = 0,
                images: Optional[Sequence[np.ndarray]] = None) -> Path:
    """A video of ``num_frames`` frames; ``times`` (seconds) gives each frame its own timestamp (variable rate);
    ``rotation`` sets the display matrix (degrees counter-clockwise)."""
    import av

    path = Path(path)
    codec = codec or CODECS[path.suffix]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast"}
        elif codec == "mpeg4":
            stream.options = {"qscale": "2"}
        else:
            stream.bit_rate = 4_000_000
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for k in range(num_frames):
            img = images[k] if images is not None else frame_image(k, width, height)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if times is not None:
                frame.pts = int(round(times[k] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def labelled_colour_motion_data(root: Path, spec) -> Path:
    """``root/videos`` (synthetic MP4s of ``spec``, a :class:`rdfa_s6.video.synth.VideoSynthSpec`) ->
    ``root/data`` (``rdfa-s6 extract --backbone colour-motion``), its annotations labelled with the videos' ground
    truth (subsets and segments). Returns ``root/data``."""
    import json

    from rdfa_s6.cli import main
    from rdfa_s6.video.synth import generate_videos

    generate_videos(root / "videos", spec)
    assert main(["extract", str(root / "videos"), "--out", str(root / "data"), "--backbone", "colour-motion",
                 "--workers", "0", "--no-progress"]) == 0
    gt = json.loads((root / "videos" / "ground_truth.json").read_text())["database"]
    ann = json.loads((root / "data" / "annotations.json").read_text())
    for vid, entry in ann["database"].items():
        entry["subset"], entry["annotations"] = gt[vid]["subset"], gt[vid]["annotations"]
    (root / "data" / "annotations.json").write_text(json.dumps(ann))
    return root / "data"
