"""A synthetic *video* dataset: real MP4 files (written with PyAV) of moving and changing shapes, 5 classes.

Each video is a dark, slightly noisy background (its brightness drifts slowly) on which actions happen one at a
time, with known start and end frames, plus distractors (a grey square wandering, belonging to no class):

==========  ============================================================================================
``Slide``   a red square crosses the frame from left to right
``Drop``    a blue disc falls from the top to the bottom
``Grow``    a green square grows from a dot to half the frame
``Blink``   a yellow disc flashes on and off every 4 frames
``Fade``    a square turns from magenta to cyan
==========  ============================================================================================

Positions, sizes and durations vary per instance. Ground truth is in seconds, ``[start_frame, end_frame) / fps``,
in ``ground_truth.json`` (ActionFormer format, subsets ``training``/``validation``/``test``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..atomic import atomic_output, atomic_write_json
from ..data.synth import numbered_videos
from ..formats.jsonfile import read_json

CLASSES = ["Slide", "Drop", "Grow", "Blink", "Fade"]


@dataclass(frozen=True)
class VideoSynthSpec:
    """What to render. Lengths in frames."""

    train_videos: int = 48
    val_videos: int = 8
    test_videos: int = 16
    size: int = 64  # square frames, pixels
    fps: int = 15
    min_frames: int = 600
    max_frames: int = 1000
    action_frames: Tuple[int, int] = (32, 120)
    max_actions: int = 6
    distractors: float = 1.0  # mean number per video
    seed: int = 0


def _disc(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _square(size: int, cx: float, cy: float, half: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)


def draw_action(img: np.ndarray, cls: int, p: float, k: int, params: np.ndarray) -> None:
    """Draw class ``cls`` at progress ``p`` in [0, 1] (frame ``k`` of the action) into ``img`` [S, S, 3]."""
    s = img.shape[0]
    a, b, c = params  # per-instance uniforms in [0, 1]
    if cls == 0:  # Slide: red square, left -> right
        img[_square(s, 4 + p * (s - 8), 8 + a * (s - 16), 5 + 2 * b)] = (230, 40, 40)
    elif cls == 1:  # Drop: blue disc, top -> bottom
        img[_disc(s, 8 + a * (s - 16), 4 + p * (s - 8), 5 + 2 * b)] = (40, 80, 240)
    elif cls == 2:  # Grow: green square, a dot -> half the frame
        img[_square(s, s * (0.3 + 0.4 * a), s * (0.3 + 0.4 * b), 1 + p * s * 0.25)] = (40, 220, 60)
    elif cls == 3:  # Blink: yellow disc flashing every 4 frames
        if (k // 4) % 2 == 0:
            img[_disc(s, 10 + a * (s - 20), 10 + b * (s - 20), 7)] = (240, 230, 40)
    else:  # Fade: magenta -> cyan square
        colour = np.array([255 * (1 - p), 255 * p, 255], dtype=np.float64)
        img[_square(s, 10 + a * (s - 20), 10 + b * (s - 20), 8)] = colour.astype(np.uint8)
    del c


def _place(n_frames: int, spec: VideoSynthSpec, rng: np.random.Generator) -> List[Tuple[int, int]]:
    spans: List[Tuple[int, int]] = []
    for _ in range(int(rng.integers(1, spec.max_actions + 1))):
        for _attempt in range(20):
            dur = int(rng.integers(spec.action_frames[0], spec.action_frames[1] + 1))
            start = int(rng.integers(0, max(1, n_frames - dur)))
            if all(start >= e + 8 or start + dur + 8 <= s for s, e in spans):
                spans.append((start, min(start + dur, n_frames)))
                break
    return sorted(spans)


def render_video(n_frames: int, spec: VideoSynthSpec, rng: np.random.Generator
                 ) -> Tuple[List[np.ndarray], List[Tuple[int, int, int]]]:
    """Frames ``[S, S, 3]`` uint8 and the actions as (start_frame, end_frame exclusive, class)."""
    s = spec.size
    actions = [(st, en, int(rng.integers(len(CLASSES)))) for st, en in _place(n_frames, spec, rng)]
    params = {i: rng.uniform(0, 1, 3) for i in range(len(actions))}
    distractors = []
    for _ in range(int(rng.poisson(spec.distractors))):
        dur = int(rng.integers(20, 80))
        start = int(rng.integers(0, max(1, n_frames - dur)))
        distractors.append((start, start + dur, rng.uniform(10, s - 10, 2), rng.normal(0, 0.6, 2)))
    base = rng.uniform(20, 50)
    drift = np.cumsum(rng.normal(0, 0.3, n_frames))
    frames = []
    for k in range(n_frames):
        level = np.clip(base + drift[k], 5, 80)
        img = np.clip(level + rng.normal(0, 3, (s, s, 1)), 0, 255).repeat(3, axis=2).astype(np.uint8)
        for start, end, pos, vel in distractors:
            if start <= k < end:
                cx, cy = np.clip(pos + vel * (k - start), 6, s - 6)
                img[_square(s, cx, cy, 5)] = (140, 140, 140)
        for i, (start, end, cls) in enumerate(actions):
            if start <= k < end:
                draw_action(img, cls, (k - start) / max(1, end - start - 1), k - start, params[i])
        frames.append(img)
    return frames, actions


def write_mp4(path: Path, frames: List[np.ndarray], fps: int) -> None:
    """H.264 (libx264, ultrafast, near-lossless) MP4, written atomically (:func:`rdfa_s6.atomic.atomic_output`)."""
    import av

    with atomic_output(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generate_videos(out_dir: Path, spec: VideoSynthSpec = VideoSynthSpec()) -> Dict[str, int]:
    """Write ``out_dir/<video_id>.mp4`` and ``out_dir/ground_truth.json``; returns videos per subset."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    database = {}
    counts = {"training": spec.train_videos, "validation": spec.val_videos, "test": spec.test_videos}
    for subset, vid in numbered_videos("synthvid", counts):
        n_frames = int(rng.integers(spec.min_frames, spec.max_frames + 1))
        frames, actions = render_video(n_frames, spec, rng)
        write_mp4(out_dir / f"{vid}.mp4", frames, spec.fps)
        database[vid] = {"subset": subset, "duration": round(n_frames / spec.fps, 6), "fps": spec.fps,
                         "annotations": [{"label": CLASSES[c], "segment": [round(st / spec.fps, 4),
                                                                           round(en / spec.fps, 4)],
                                          "label_id": c} for st, en, c in actions]}
    atomic_write_json(out_dir / "ground_truth.json", {"version": "rdfa-s6-synthetic-video-1", "database": database})
    return counts


def load_ground_truth(out_dir: Path) -> Dict[str, dict]:
    """The ``database`` of ``out_dir/ground_truth.json`` as :func:`generate_videos` wrote it."""
    data, _ = read_json(Path(out_dir) / "ground_truth.json", "synthetic ground truth")
    return data["database"]
