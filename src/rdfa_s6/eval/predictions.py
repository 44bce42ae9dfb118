"""Detection results in the ActivityNet results format, and their alignment with a ground truth.

The file looks like ``{"results": {video_id: [{"segment": [start_s, end_s], "label": name or label_id,
"score": float}]}}`` (``version`` and ``external_data`` are allowed and ignored).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

import numpy as np

from ..errors import DataError
from .groundtruth import GroundTruth, parse_number, parse_segment, preview, read_json

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Parsed detections as flat arrays, in file order.

    ``videos``: video ids in order of first appearance; ``video``: int64 [P] index into ``videos``;
    ``start``, ``end``: float64 [P] seconds; ``score``: float64 [P]; ``labels``: [P] label names (str) or
    label ids (int) as written in the file.
    """

    videos: List[str]
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray
    labels: List[Union[str, int]]
    source: str = "<dict>"

    def __len__(self) -> int:
        return int(self.video.shape[0])


def load_predictions(path_or_dict: Union[str, Path, Mapping[str, Any]]) -> Predictions:
    """Parse a results JSON (path or dict). Any malformation raises :class:`DataError` naming file, video
    and field; nothing else is raised for JSON-like input."""
    data, name = read_json(path_or_dict, "predictions")
    if not isinstance(data, Mapping) or "results" not in data:
        raise DataError(f"predictions {name}: missing top-level field 'results'")
    results = data["results"]
    if not isinstance(results, Mapping):
        raise DataError(f"predictions {name}: field 'results' must be an object {{video_id: [detections]}}, "
                        f"got {type(results).__name__}")
    videos: List[str] = []
    vid_col: List[int] = []
    starts: List[float] = []
    ends: List[float] = []
    scores: List[float] = []
    labels: List[Union[str, int]] = []
    for vid, dets in results.items():
        where = f"predictions {name}: results[{preview(vid, 80)}]"
        if not isinstance(dets, list):
            raise DataError(f"{where}: expected a list of detections, got {type(dets).__name__}")
        vidx = len(videos)
        videos.append(str(vid))
        for i, det in enumerate(dets):
            w = f"{where}[{i}]"
            if not isinstance(det, Mapping):
                raise DataError(f"{w}: expected an object with 'segment', 'label', 'score'")
            for key in ("segment", "label", "score"):
                if key not in det:
                    raise DataError(f"{w}: missing field '{key}'")
            s, e = parse_segment(det["segment"], f"{w}.segment")
            score = parse_number(det["score"], f"{w}.score")
            lab = det["label"]
            if isinstance(lab, bool) or not isinstance(lab, (str, int)):
                raise DataError(f"{w}.label: expected a class name or an integer label_id, got {preview(lab)}")
            vid_col.append(vidx)
            starts.append(s)
            ends.append(e)
            scores.append(score)
            labels.append(lab)
    return Predictions(
        videos=videos,
        video=np.array(vid_col, dtype=np.int64),
        start=np.array(starts, dtype=np.float64),
        end=np.array(ends, dtype=np.float64),
        score=np.array(scores, dtype=np.float64),
        labels=labels,
        source=name,
    )


@dataclass
class Aligned:
    """Predictions expressed in a ground truth's numbering, each array [P'] (unknown-label ones dropped).

    ``video``: index into ``gt.videos``, or ``len(gt.videos) + k`` for the k-th video absent from the ground
    truth (such detections match nothing, i.e. they are false positives, as in the official code).
    ``label``: class index into ``gt.labels``.
    """

    video: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.video.shape[0])


def check_usable(preds: Predictions, gt: GroundTruth, subset: str) -> None:
    """DataError when there are detections but none can ever match: every one is for a video outside the
    ground-truth split, or every label is unknown to it. Single unknown videos or labels are only warnings
    (see :func:`align_predictions`); all of them at once is a mix-up of files, splits or label names."""
    if len(preds) == 0:
        return
    where = f"predictions {preds.source}"
    if not set(preds.videos) & set(gt.videos):
        raise DataError(f"{where}: none of its {len(preds.videos)} video(s) ({', '.join(preds.videos[:3])}"
                        f"{' ...' if len(preds.videos) > 3 else ''}) is in subset {subset!r} of the ground truth "
                        f"{gt.source}; expected detections for videos such as {', '.join(gt.videos[:3])}")
    known = set(gt.labels) | set(gt.label_ids.values())
    if not any(lab in known for lab in preds.labels):
        found = sorted({str(lab) for lab in preds.labels})
        raise DataError(f"{where}: no detection has a label of subset {subset!r} of the ground truth {gt.source} "
                        f"(field 'label': {', '.join(found[:5])}{' ...' if len(found) > 5 else ''}); expected class "
                        f"names such as {', '.join(gt.labels[:5])} or their integer label_id")


def align_predictions(preds: Predictions, gt: GroundTruth) -> Tuple[Aligned, List[str]]:
    """Map video ids and labels onto ``gt``. Returns the aligned arrays and the warnings (also logged).

    Detections of a video absent from the ground-truth split are kept and count as false positives (the
    official code does the same: their video has no ground truth). Detections with a label absent from the
    split's ground truth are dropped with a warning (the official code fails with a KeyError). An integer
    label is read as the annotation file's ``label_id``.
    """
    warnings: List[str] = []
    vindex = {v: i for i, v in enumerate(gt.videos)}
    unknown = [v for v in preds.videos if v not in vindex]
    extra = {v: len(gt.videos) + k for k, v in enumerate(unknown)}
    vmap = np.array([vindex.get(v, extra.get(v, -1)) for v in preds.videos], dtype=np.int64)
    if unknown:
        counts = np.bincount(preds.video, minlength=len(preds.videos))
        n_unk = int(sum(counts[i] for i, v in enumerate(preds.videos) if v in extra))
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        warnings.append(f"{n_unk} predictions for {len(unknown)} video(s) not in the ground-truth split "
                        f"({shown}): counted as false positives")
    lindex: Dict[Union[str, int], int] = {lab: i for i, lab in enumerate(gt.labels)}
    for lab, lid in gt.label_ids.items():
        if lab in lindex:
            lindex.setdefault(lid, lindex[lab])
    label = np.fromiter((lindex.get(lab, -1) for lab in preds.labels), dtype=np.int64, count=len(preds.labels))
    bad = label < 0
    if bad.any():
        names = sorted({str(lab) for lab, b in zip(preds.labels, bad.tolist()) if b})
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        warnings.append(f"{int(bad.sum())} predictions with {len(names)} label(s) not in the ground-truth "
                        f"split ({shown}): ignored")
    keep = ~bad
    aligned = Aligned(
        video=vmap[preds.video][keep] if len(preds) else np.zeros(0, dtype=np.int64),
        label=label[keep],
        start=preds.start[keep],
        end=preds.end[keep],
        score=preds.score[keep],
    )
    if len(aligned) == 0:
        warnings.append("no usable predictions: every AP is 0")
    for msg in warnings:
        log.warning("%s", msg)
    return aligned, warnings
