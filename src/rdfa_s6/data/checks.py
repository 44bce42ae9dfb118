"""Dataset checks for ``rdfa-s6 check-data``: what would go wrong in training, found before it starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..config.schema import DataConfig
from ..errors import DataError
from .annotations import AnnotationSet
from .features import FeatureReader

#: feature length may differ from the one the duration implies by this many steps (or this fraction)
LENGTH_TOLERANCE_STEPS = 5
LENGTH_TOLERANCE_FRACTION = 0.05


@dataclass
class SplitReport:
    split: str
    videos: int = 0
    instances: int = 0
    classes: int = 0
    missing_features: List[str] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)
    length_mismatch: List[str] = field(default_factory=list)
    beyond_duration: int = 0
    zero_length: int = 0
    no_fps: List[str] = field(default_factory=list)
    lengths: List[int] = field(default_factory=list)
    input_dims: Dict[int, int] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return (len(self.missing_features) + len(self.unreadable) + len(self.no_fps)
                + (self.videos == 0) + (len(self.input_dims) > 1))


def expected_length(duration: float, fps: float, cfg: DataConfig) -> float:
    """Feature steps a video of ``duration`` seconds should have (clips of num_frames every feat_stride frames)."""
    stride = cfg.feat_stride * cfg.downsample_rate
    return max(0.0, (duration * fps - cfg.num_frames) / stride + 1)


def check_split(annotations: AnnotationSet, reader: FeatureReader, cfg: DataConfig, split: str) -> SplitReport:
    report = SplitReport(split)
    records = annotations.split(split)
    report.videos = len(records)
    report.classes = len({int(l) for r in records for l in r.labels})
    for rec in records:
        report.instances += len(rec.labels)
        report.beyond_duration += int((rec.segments[:, 1] > rec.duration + 1e-6).sum())
        report.zero_length += int((rec.segments[:, 1] <= rec.segments[:, 0]).sum())
        fps: Optional[float] = rec.fps
        if fps is None:
            report.no_fps.append(rec.video_id)
        path = reader.path(rec.video_id)
        if not path.is_file():
            report.missing_features.append(rec.video_id)
            continue
        try:
            feats = reader.load(rec.video_id)
        except DataError as err:
            report.unreadable.append(f"{rec.video_id}: {err}")
            continue
        report.lengths.append(int(feats.shape[1]))
        report.input_dims[int(feats.shape[0])] = report.input_dims.get(int(feats.shape[0]), 0) + 1
        if fps is not None and rec.duration < 1e7 and not cfg.force_upsampling:
            expect = expected_length(rec.duration, fps, cfg)
            tol = max(LENGTH_TOLERANCE_STEPS, LENGTH_TOLERANCE_FRACTION * expect)
            if abs(feats.shape[1] - expect) > tol:
                report.length_mismatch.append(
                    f"{rec.video_id}: {feats.shape[1]} steps, the duration {rec.duration:.1f} s at {fps:g} fps "
                    f"implies about {expect:.0f}")
    return report


def format_reports(reports: List[SplitReport]) -> str:
    head = ["split", "videos", "instances", "classes", "T min/median/max", "C", "missing", "unreadable",
            "len mismatch", "beyond dur.", "zero-len"]
    rows = []
    for r in reports:
        lengths = f"{min(r.lengths)}/{int(np.median(r.lengths))}/{max(r.lengths)}" if r.lengths else "-"
        dims = ",".join(str(d) for d in sorted(r.input_dims)) or "-"
        rows.append([r.split, str(r.videos), str(r.instances), str(r.classes), lengths, dims,
                     str(len(r.missing_features)), str(len(r.unreadable)), str(len(r.length_mismatch)),
                     str(r.beyond_duration), str(r.zero_length)])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
