"""A synthetic TAL dataset in the standard layout, learnable on a CPU in minutes.

    OUT_DIR/annotations.json        ActionFormer-style JSON, subsets "training", "validation", "test"
    OUT_DIR/features/<video>.npy    float32 [T, C] per video

Each class has a feature pattern that changes over the action's course (an onset, a body and an offset
direction in feature space), so both the class and the boundaries are visible in the features. Around the
actions: Gaussian noise, a slowly drifting background and *distractors*, short bursts along directions that
belong to no class. Coordinates follow docs/model.md §2.4 with fps 30, feat_stride 4 and num_frames 16, so one feature
step is 4 frames and a segment [a, b] in steps is [(4a + 8) / 30, (4b + 8) / 30] seconds.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Tuple

import numpy as np

from ..atomic import atomic_write_bytes
from .coords import covered_seconds, steps_to_seconds

FPS, FEAT_STRIDE, NUM_FRAMES = 30.0, 4, 16
CLASS_NAMES = ["Jump", "Throw", "Swing", "Dive", "Spin", "Kick", "Lift", "Roll"]


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Lengths in feature steps."""

    train_videos: int = 80
    val_videos: int = 16
    test_videos: int = 24
    num_classes: int = 5
    dim: int = 32
    min_len: int = 96
    max_len: int = 256
    max_actions: int = 4
    action_len: Tuple[int, int] = (6, 40)
    noise: float = 0.6
    distractors: float = 1.0  #: mean number of distractor bursts per video
    seed: int = 0


def _patterns(spec: SynthSpec, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Per class [onset, body, offset] directions [K, 3, C], and distractor directions [4, C], unit norm."""
    dirs = rng.standard_normal((spec.num_classes * 3 + 4, spec.dim))
    q, _ = np.linalg.qr(dirs.T)  # orthonormal: classes and distractors do not overlap
    dirs = q.T
    return dirs[: spec.num_classes * 3].reshape(spec.num_classes, 3, spec.dim), dirs[spec.num_classes * 3 :]


def _place_actions(length: int, spec: SynthSpec, rng: np.random.Generator) -> List[Tuple[int, int]]:
    spans: List[Tuple[int, int]] = []
    for _ in range(int(rng.integers(1, spec.max_actions + 1))):
        for _attempt in range(20):
            # at most the whole video (same random draws as before for every length that used to work)
            dur = min(int(rng.integers(spec.action_len[0], spec.action_len[1] + 1)), length)
            start = int(rng.integers(0, max(1, length - dur)))
            if all(start >= e + 2 or start + dur + 2 <= s for s, e in spans):
                spans.append((start, start + dur))
                break
    return sorted(spans)


def make_video(length: int, spec: SynthSpec, patterns: np.ndarray, distractor_dirs: np.ndarray,
               rng: np.random.Generator) -> Tuple[np.ndarray, List[Tuple[int, int, int]]]:
    """Features [T, C] float32 and the actions as (start_step, end_step, class)."""
    drift = np.cumsum(rng.standard_normal((length, spec.dim)) * 0.05, axis=0)
    feats = rng.standard_normal((length, spec.dim)) * spec.noise + drift
    actions = []
    for start, end in _place_actions(length, spec, rng):
        cls = int(rng.integers(spec.num_classes))
        phase = np.linspace(0.0, 1.0, end - start)[:, None]
        onset, body, offset = patterns[cls]
        shape = (np.exp(-((phase - 0.0) ** 2) / 0.02) * onset + body * 1.2
                 + np.exp(-((phase - 1.0) ** 2) / 0.02) * offset)
        feats[start:end] += shape * float(rng.uniform(1.5, 2.5))
        actions.append((start, end, cls))
    for _ in range(int(rng.poisson(spec.distractors))):
        dur = int(rng.integers(4, 20))
        start = int(rng.integers(0, max(1, length - dur)))
        feats[start : start + dur] += distractor_dirs[int(rng.integers(len(distractor_dirs)))] * 2.0
    return feats.astype(np.float32), actions


def numbered_videos(prefix: str, counts: Mapping[str, int]) -> Iterator[Tuple[str, str]]:
    """``(subset, video_id)`` for ``counts[subset]`` videos of each subset, in the order given; ids are
    ``<prefix>_<subset>_0000``, ``<prefix>_<subset>_0001``, ..."""
    for subset, n in counts.items():
        for i in range(n):
            yield subset, f"{prefix}_{subset}_{i:04d}"


def generate(out_dir: Path, spec: SynthSpec = SynthSpec()) -> Dict[str, int]:
    """Write the dataset to ``out_dir``; returns the number of videos per subset."""
    if spec.num_classes > len(CLASS_NAMES) or spec.num_classes < 1:
        raise ValueError(f"num_classes must be in 1..{len(CLASS_NAMES)}, got {spec.num_classes}")
    if spec.num_classes * 3 + 4 > spec.dim:
        raise ValueError(f"dim must be at least 3 * num_classes + 4 = {spec.num_classes * 3 + 4}")
    if min(spec.train_videos, spec.val_videos, spec.test_videos) < 0:
        raise ValueError("the number of videos of each subset must be >= 0")
    if spec.min_len < spec.action_len[0] + 2 or spec.max_len < spec.min_len:
        raise ValueError(f"need {spec.action_len[0] + 2} <= min_len <= max_len, got {spec.min_len}, {spec.max_len}")
    if not (np.isfinite(spec.noise) and spec.noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {spec.noise}")
    rng = np.random.default_rng(spec.seed)
    patterns, distractors = _patterns(spec, rng)
    out_dir = Path(out_dir)
    (out_dir / "features").mkdir(parents=True, exist_ok=True)
    database = {}
    counts = {"training": spec.train_videos, "validation": spec.val_videos, "test": spec.test_videos}
    for subset, vid in numbered_videos("synth", counts):
        length = int(rng.integers(spec.min_len, spec.max_len + 1))
        feats, actions = make_video(length, spec, patterns, distractors, rng)
        buffer = io.BytesIO()  # written atomically: never through a link planted at the file's name
        np.save(buffer, feats, allow_pickle=False)
        atomic_write_bytes(out_dir / "features" / f"{vid}.npy", buffer.getvalue())
        duration = covered_seconds(length, FPS, FEAT_STRIDE, NUM_FRAMES)  # T clips of NUM_FRAMES every FEAT_STRIDE
        annotations = []
        for start, end, cls in actions:
            steps = np.array([start, end], dtype=np.float64)
            s, e = steps_to_seconds(steps, FPS, FEAT_STRIDE, NUM_FRAMES, duration)
            annotations.append({"label": CLASS_NAMES[cls], "segment": [round(float(s), 3), round(float(e), 3)],
                                "label_id": cls})
        database[vid] = {"subset": subset, "duration": round(duration, 3), "fps": FPS, "annotations": annotations}
    document = {"version": "rdfa-s6-synthetic-1", "database": database}
    atomic_write_bytes(out_dir / "annotations.json", json.dumps(document).encode("utf-8"))
    return counts
