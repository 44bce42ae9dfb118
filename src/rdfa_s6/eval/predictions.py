"""Detection results (read by :mod:`rdfa_s6.formats.results`) aligned with a ground truth: the evaluator's
policy for videos and labels that the ground truth does not know."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Tuple, Union

import numpy as np

from ..errors import DataError
from ..formats.jsonfile import Source
from ..formats.results import Predictions, read_results
from ..messages import listed
from .groundtruth import GroundTruth

log = logging.getLogger(__name__)


def load_predictions(path_or_dict: Source) -> Predictions:
    """Parse a results JSON (path or dict) with :func:`rdfa_s6.formats.results.read_results`."""
    return read_results(path_or_dict, "predictions")


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


def align_predictions(preds: Predictions, gt: GroundTruth, log_warnings: bool = True) -> Tuple[Aligned, List[str]]:
    """Map video ids and labels onto ``gt``. Returns the aligned arrays and the warnings (also logged, unless
    ``log_warnings`` is False: a caller that has already evaluated, and so logged them once).

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
        warnings.append(f"{n_unk} predictions for {len(unknown)} video(s) not in the ground-truth split "
                        f"({listed(unknown)}): counted as false positives")
    lindex: Dict[Union[str, int], int] = {lab: i for i, lab in enumerate(gt.labels)}
    for lab, lid in gt.label_ids.items():
        if lab in lindex:
            lindex.setdefault(lid, lindex[lab])
    label = np.fromiter((lindex.get(lab, -1) for lab in preds.labels), dtype=np.int64, count=len(preds.labels))
    bad = label < 0
    if bad.any():
        names = sorted({str(lab) for lab, b in zip(preds.labels, bad.tolist()) if b})
        warnings.append(f"{int(bad.sum())} predictions with {len(names)} label(s) not in the ground-truth "
                        f"split ({listed(names)}): ignored")
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
    if log_warnings:
        for msg in warnings:
            log.warning("%s", msg)
    return aligned, warnings
