"""Synthetic result sets and short videos for the viewer and export tests (no model, no data files)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np


def synthetic_results(num_videos: int = 6, dets_per_video: int = 30, num_classes: int = 4, seed: int = 0,
                      duration: float = 120.0) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(annotations, results)``: a test split of ``num_videos`` videos with 1-6 events each, and detections
    around them (jittered copies, some with the wrong class) plus random background ones, scores in (0, 1)."""
    rng = np.random.default_rng(seed)
    classes = [f"Class{c:02d}" for c in range(num_classes)]
    database: Dict[str, Any] = {}
    results: Dict[str, Any] = {}
    for v in range(num_videos):
        vid = f"video_test_{v:07d}"
        events = []
        for _ in range(int(rng.integers(1, 7))):
            length = float(rng.uniform(0.02, 0.12)) * duration
            start = float(rng.uniform(0.0, duration - length))
            c = int(rng.integers(num_classes))
            events.append({"label": classes[c], "label_id": c, "segment": [round(start, 2), round(start + length, 2)]})
        database[vid] = {"subset": "test", "duration": duration, "fps": 30.0, "annotations": events}
        dets = []
        for k in range(dets_per_video):
            if k < 3 * len(events):
                ev = events[k % len(events)]
                s, e = ev["segment"]
                shift = float(rng.normal(0, 0.15 * (e - s)))
                s, e = s + shift, e + shift + float(rng.normal(0, 0.1 * (e - s)))
                label = ev["label"] if rng.random() > 0.15 else classes[int(rng.integers(num_classes))]
                score = float(rng.uniform(0.3, 0.99))
            else:
                length = float(rng.uniform(0.01, 0.17)) * duration
                s = float(rng.uniform(0.0, duration - length))
                e = s + length
                label = classes[int(rng.integers(num_classes))]
                score = float(rng.uniform(0.001, 0.6))
            segment = [max(0.0, s), min(duration, max(s + 0.01 * duration, e))]
            dets.append({"segment": segment, "label": label, "score": score})
        results[vid] = dets
    return {"database": database}, {"version": "test", "results": results}


def make_video(path: Path, seconds: float = 4.0, fps: int = 10, codec: str = "libx264") -> Path:
    """A small moving-gradient video (64x48) written with PyAV: H.264 in MP4 or VP9 in WebM."""
    import av

    frames = int(round(seconds * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.zeros((48, 64, 3), dtype=np.uint8)
            img[:, :, 0] = (np.arange(64) * 4 + i * 8) % 256
            img[:, :, 1] = 255 * i // max(frames - 1, 1)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
