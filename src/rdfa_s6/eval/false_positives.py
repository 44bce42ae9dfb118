"""False-positive breakdown at one tIoU threshold, after Alwassel et al., "Diagnosing Error in Temporal
Action Detectors" (ECCV 2018).

For each class, the top-G detections by score are considered (G = number of ground-truth events of the
class); detections are matched as in :func:`rdfa_s6.eval.detection.greedy_match`. Each false positive among
them gets the first category that applies:

``double_detection``  tIoU >= thr with an event of its label (so that event was already matched),
``wrong_label``       tIoU >= thr with an event of another label,
``localization``      0.1 <= tIoU < thr with an event of its label,
``confusion``         0.1 <= tIoU < thr with an event of another label only,
``background``        tIoU < 0.1 with every event of its video (or a video without ground truth).

A NaN tIoU (zero-length detection against a zero-length event) counts as 1, as the matching treats it.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..messages import plural
from .detection import greedy_match, pairs_by_key, segment_iou
from .groundtruth import GroundTruth
from .predictions import Aligned

CATEGORIES = ("double_detection", "wrong_label", "localization", "confusion", "background")
#: tIoU (fraction) below which a false positive is background
BACKGROUND_TIOU = 0.1


def false_positive_breakdown(preds: Aligned, gt: GroundTruth, threshold: float = 0.5) -> Dict[str, Any]:
    """Counts and fractions of each false-positive category at ``threshold`` (JSON-able dict).

    Keys: ``tiou_threshold``, ``num_considered`` (detections in the top-G of their class),
    ``num_true_positives``, ``num_false_positives``, ``counts`` and ``fractions`` ({category: value},
    fractions of the false positives, all 0 when there are none) and ``summary`` (one line of text).
    """
    ncls = len(gt.labels)
    order, tp = greedy_match(preds, gt, [threshold])
    tp = tp[0]
    ranked_label = preds.label[order]
    by_class = np.argsort(ranked_label, kind="mergesort")
    class_start = np.searchsorted(ranked_label[by_class], ranked_label[by_class], side="left")
    pos_in_class = np.empty(len(preds), dtype=np.int64)
    pos_in_class[by_class] = np.arange(len(preds)) - class_start
    num_gt = np.bincount(gt.label, minlength=ncls)
    top = pos_in_class < num_gt[ranked_label] if len(preds) else np.zeros(0, dtype=bool)
    fp = order[top & ~tp]  # indices into preds

    best_same = np.zeros(fp.shape[0])
    best_other = np.zeros(fp.shape[0])
    if fp.size and gt.num_gt:
        pi, gi = pairs_by_key(preds.video[fp], gt.video)
        p = fp[pi]
        tiou = np.nan_to_num(segment_iou(preds.start[p], preds.end[p], gt.start[gi], gt.end[gi]), nan=1.0)
        same = preds.label[p] == gt.label[gi]
        np.maximum.at(best_same, pi[same], tiou[same])
        np.maximum.at(best_other, pi[~same], tiou[~same])
    category = np.select(
        [best_same >= threshold, best_other >= threshold, best_same >= BACKGROUND_TIOU,
         best_other >= BACKGROUND_TIOU],
        [0, 1, 2, 3],
        default=4,
    )
    counts = np.bincount(category, minlength=len(CATEGORIES)) if fp.size else np.zeros(len(CATEGORIES), int)
    n_fp = int(fp.shape[0])
    result: Dict[str, Any] = {
        "tiou_threshold": float(threshold),
        "num_considered": int(top.sum()),
        "num_true_positives": int((top & tp).sum()),
        "num_false_positives": n_fp,
        "counts": {name: int(c) for name, c in zip(CATEGORIES, counts)},
        "fractions": {name: (float(c) / n_fp if n_fp else 0.0) for name, c in zip(CATEGORIES, counts)},
    }
    result["summary"] = summarize(result)
    return result


def summarize(breakdown: Dict[str, Any]) -> str:
    """One line: the number of false positives and the share of each category in percent."""
    parts = ", ".join(f"{name.replace('_', ' ')} {100 * breakdown['fractions'][name]:.1f}%" for name in CATEGORIES)
    return (f"{plural(breakdown['num_false_positives'], 'false positive')} among the G best-scored detections of "
            f"each class (G = the class's number of ground-truth events) at tIoU {breakdown['tiou_threshold']:.2f} "
            f"({plural(breakdown['num_true_positives'], 'true positive')}): {parts}")
