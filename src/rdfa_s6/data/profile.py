"""What ``rdfa-s6 init`` and ``check-data``'s fit report know about a dataset: one :class:`VideoProfile` per
video (its subset, feature length T in steps, fps, duration and segments in seconds), the feature files'
naming and C, and the settings of ``extraction.json`` when ``rdfa-s6 extract`` wrote the features.

The fitting rules (:mod:`rdfa_s6.config.fit`) work on this profile only. ``.npy`` headers are read without the
data (:meth:`FeatureReader.peek`); ``.npz``/``.pt`` files are loaded once each.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import DataError
from ..messages import listed, shown
from ..progress import Progress, report
from .annotations import AnnotationSet, load_annotations
from .features import EXTENSIONS, FeatureReader


@dataclass(frozen=True)
class VideoProfile:
    """One video. ``steps``: T of its features after ``downsample_rate`` (feature steps); ``segments``:
    ``(start, end)`` seconds; ``labels``: class ids, one per segment; ``duration``: seconds (None if the file has
    none); ``fps``: None if the annotation file has none."""

    video_id: str
    subset: str
    steps: int
    fps: Optional[float]
    duration: Optional[float]
    segments: Tuple[Tuple[float, float], ...]
    labels: Tuple[int, ...]


@dataclass
class DatasetProfile:
    """A dataset as the fitting rules see it. ``subsets`` as written (lower case, the way splits match them)."""

    annotation_file: Path
    feature_dir: Path
    file_prefix: str
    file_suffix: str
    file_ext: str
    input_dim: int
    label_names: Dict[int, str]
    videos: List[VideoProfile]
    #: ``extraction.json``'s settings (``fps``, ``stride``, ``window``, ``feature_dim``, ...), None without one
    extraction: Optional[Dict[str, Any]] = None
    downsample_rate: int = 1
    #: video ids without a feature file (left out of ``videos``)
    missing: List[str] = field(default_factory=list)
    #: C -> number of feature files with that many channels (more than one key: the files disagree)
    input_dims: Dict[int, int] = field(default_factory=dict)

    def subset(self, name: Optional[str]) -> List[VideoProfile]:
        """The videos whose subset is ``name`` (ignoring case)."""
        if name is None:
            return []
        return [v for v in self.videos if v.subset == name.lower()]

    def subsets(self) -> Dict[str, int]:
        """Subset name (lower case) -> number of videos, in order of first appearance."""
        return dict(Counter(v.subset for v in self.videos))


def feature_naming(feature_dir: Path, video_ids: List[str]) -> Tuple[str, str, str]:
    """``(prefix, suffix, ext)`` of the feature files: the naming ``prefix + video_id + suffix + ext`` that the
    most videos' files follow (``("", "", ".npy")`` for ``extract``'s files). DataError naming the folder when no
    file of any video is found."""
    names = [p.name for p in Path(feature_dir).iterdir() if p.suffix in EXTENSIONS and p.is_file()]
    present = set(names)
    exact = Counter(ext for ext in EXTENSIONS for vid in video_ids if f"{vid}{ext}" in present)
    if exact:
        return "", "", exact.most_common(1)[0][0]
    votes: Counter = Counter()
    for vid in video_ids[:200]:
        for name in names:
            at = name.find(vid)
            if at >= 0:
                ext = Path(name).suffix
                votes[(name[:at], name[at + len(vid):len(name) - len(ext)], ext)] += 1
    if not votes:
        raise DataError(f"{shown(feature_dir)}: no feature file ({'/'.join(EXTENSIONS)}) is named after a video of "
                        f"the annotation file (e.g. {listed(video_ids, 2)}); expected files like "
                        f"<video_id>.npy")
    return votes.most_common(1)[0][0]


def profile_from(annotations: AnnotationSet, reader: FeatureReader, subsets: Optional[List[str]] = None,
                 extraction: Optional[Dict[str, Any]] = None, progress: Optional[Progress] = None) -> DatasetProfile:
    """The profile of ``annotations`` (only the videos of ``subsets`` when given) whose features ``reader``
    finds. C is the most common channel count; a video without a feature file is listed in ``missing``."""
    wanted = None if subsets is None else {s.lower() for s in subsets}
    records = [r for r in annotations.videos.values()
               if (wanted is None or r.subset.lower() in wanted) and r.video_id not in annotations.skipped]
    videos: List[VideoProfile] = []
    missing: List[str] = []
    dims: Counter = Counter()
    for i, rec in enumerate(records):
        if not reader.path(rec.video_id).is_file():
            missing.append(rec.video_id)
        else:
            shape = reader.peek(rec.video_id)
            if shape is None:  # .npz/.pt: the whole file
                feats = reader.load(rec.video_id)
                steps, dim = int(feats.shape[1]), int(feats.shape[0])
            else:
                steps, dim = -(-shape[0] // reader.downsample_rate), shape[1]
            dims[dim] += 1
            duration = None if rec.duration >= 1e7 else float(rec.duration)
            videos.append(VideoProfile(rec.video_id, rec.subset.lower(), steps, rec.fps, duration,
                                       tuple((float(s), float(e)) for s, e in rec.segments),
                                       tuple(int(label) for label in rec.labels)))
        report(progress, i + 1, len(records))
    return DatasetProfile(Path(annotations.path), Path(reader.feature_dir), reader.prefix, reader.suffix, reader.ext,
                          dims.most_common(1)[0][0] if dims else 0, dict(annotations.label_names), videos,
                          extraction, reader.downsample_rate, missing, dict(dims))


def read_profile(data_root: Path, downsample_rate: int = 1,
                 progress: Optional[Progress] = None) -> DatasetProfile:
    """The profile of the dataset in ``data_root`` (``annotations.json``, ``features/``, optional
    ``extraction.json``); DataError (one line) when the layout is not there or no video has features."""
    from ..video.records import read_extraction

    root = Path(data_root)
    ann_path, feat_dir = root / "annotations.json", root / "features"
    if not root.is_dir():
        raise DataError(f"data folder {shown(root)} not found; expected DIR/annotations.json and DIR/features/")
    if not ann_path.is_file():
        raise DataError(f"{shown(ann_path)} not found; expected the annotation file DIR/annotations.json "
                        f"(rdfa-s6 extract and rdfa-s6 import write it)")
    if not feat_dir.is_dir():
        raise DataError(f"feature folder {shown(feat_dir)} not found; expected DIR/features/<video_id>.npy")
    annotations = load_annotations(ann_path)
    if not annotations.videos:
        raise DataError(f"{shown(ann_path)}: the annotation file holds no video")
    prefix, suffix, ext = feature_naming(feat_dir, list(annotations.videos))
    reader = FeatureReader(feat_dir, prefix, suffix, ext, downsample_rate)
    profile = profile_from(annotations, reader, extraction=read_extraction(root), progress=progress)
    if not profile.videos:
        raise DataError(f"{shown(feat_dir)}: no video of {shown(ann_path)} has a feature file")
    return profile
