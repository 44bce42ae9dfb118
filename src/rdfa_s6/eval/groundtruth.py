"""Ground truth of one split from an ActionFormer-style annotation JSON (read by
:mod:`rdfa_s6.formats.annotations`, the reader training uses too; ``label_id`` is optional here).

The file looks like ``{"database": {video_id: {"subset", "duration", "fps", "annotations": [{"label",
"segment": [start_s, end_s], "label_id"}]}}}``. Two policies decide which ground-truth events are kept:

``"official"``
    what ActivityNet's ``Evaluation/eval_detection.py`` does: every annotation of the split is kept as is,
    zero-length and duplicated events included; classes are the labels present in the split, in the order
    they are first seen.
``"actionformer"``
    what ActionFormer's evaluation does: events with ``end - start <= 0`` are dropped, as are duplicates
    (same label, both boundaries within 1e-3 s of an earlier event of the same video); classes are the
    sorted set of labels present in the split (sorted by ``label_id`` when every event has one, else by name).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from ..errors import DataError, UserError
from ..formats.annotations import read_annotations
from ..formats.jsonfile import Source

log = logging.getLogger(__name__)

#: the ground-truth policies (the values of the config's ``eval.gt_policy`` and of ``--gt-policy``)
GT_POLICIES = ("official", "actionformer")
#: the policy of the library's metric functions (:func:`load_ground_truth`, :func:`rdfa_s6.eval.evaluate`) and of
#: ``rdfa-s6 evaluate``: every event kept, as ActivityNet's eval_detection.py. Train validation, ``test`` and the
#: demo score with the config's ``eval.gt_policy`` instead, whose default is ``actionformer``.
EVALUATE_GT_POLICY = "official"
#: boundary tolerance (seconds) of the ActionFormer duplicate test
DUPLICATE_TOL = 1e-3


@dataclass
class GroundTruth:
    """Ground-truth events of one split as flat arrays.

    ``videos``: ids of every video of the split (annotated or not), index = video number.
    ``labels``: class names, index = class number. ``video``, ``label``: int64 [G]; ``start``, ``end``:
    float64 [G] seconds. ``label_ids``: the annotation file's integer ``label_id`` of each class name (where
    given), used to read predictions whose label is an integer.
    """

    videos: List[str]
    labels: List[str]
    video: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label_ids: Dict[str, int] = field(default_factory=dict)
    source: str = "<dict>"

    @property
    def num_gt(self) -> int:
        return int(self.video.shape[0])


def _dedupe_actionformer(events: List[Tuple[str, float, float]]) -> List[Tuple[str, float, float]]:
    """Drop ``end - start <= 0`` and same-label events whose both boundaries are within 1e-3 s of a kept one."""
    kept: List[Tuple[str, float, float]] = []
    for lab, s, e in events:
        if e - s <= 0:
            continue
        if any(k[0] == lab and abs(k[1] - s) <= DUPLICATE_TOL and abs(k[2] - e) <= DUPLICATE_TOL for k in kept):
            continue
        kept.append((lab, s, e))
    return kept


def load_ground_truth(
    path_or_dict: Source, subset: str = "test", gt_policy: str = EVALUATE_GT_POLICY
) -> GroundTruth:
    """Load the ground truth of ``subset`` (case-insensitive) with the given ``gt_policy``.

    Raises :class:`DataError` for a malformed file (naming the video and field) or a split without videos,
    :class:`UserError` for an unknown policy.
    """
    if gt_policy not in GT_POLICIES:
        raise UserError(f"gt_policy must be one of {', '.join(GT_POLICIES)}, got {gt_policy!r}")
    raw = read_annotations(path_or_dict, "ground truth")
    name = raw.name
    want = str(subset).lower()
    videos: List[str] = []
    rows: List[Tuple[int, str, float, float]] = []
    label_ids: Dict[str, int] = {}
    subsets = set()
    for vid, entry in raw.videos.items():
        subsets.add(entry.subset)
        if entry.subset.lower() != want:
            continue
        events = [(ev.label, ev.start, ev.end) for ev in entry.events]
        for ev in entry.events:
            if ev.label_id is not None:
                label_ids.setdefault(ev.label, ev.label_id)
        if gt_policy == "actionformer":
            events = _dedupe_actionformer(events)
        vidx = len(videos)
        videos.append(vid)
        rows.extend((vidx, lab, s, e) for lab, s, e in events)
    if not videos:
        raise DataError(f"ground truth {name}: no video of subset {subset!r} (subsets present: {sorted(subsets)})")
    seen: List[str] = list(dict.fromkeys(r[1] for r in rows))
    if gt_policy == "actionformer":
        if all(lab in label_ids for lab in seen):
            seen.sort(key=lambda lab: (label_ids[lab], lab))
        else:
            seen.sort()
    index = {lab: i for i, lab in enumerate(seen)}
    gt = GroundTruth(
        videos=videos,
        labels=seen,
        video=np.array([r[0] for r in rows], dtype=np.int64),
        label=np.array([index[r[1]] for r in rows], dtype=np.int64),
        start=np.array([r[2] for r in rows], dtype=np.float64),
        end=np.array([r[3] for r in rows], dtype=np.float64),
        label_ids={lab: lid for lab, lid in label_ids.items()},
        source=name,
    )
    log.debug("ground truth %s: %d videos, %d events, %d classes", name, len(videos), gt.num_gt, len(seen))
    return gt
