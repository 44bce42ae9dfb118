"""Average recall of detections, labels ignored, against the number of detections kept per video.

As in ActivityNet's proposal evaluation (``Evaluation/eval_proposal.py``), a ground-truth event counts as
recalled at threshold ``t`` when any kept detection of its video has ``tIoU >= t`` with it (no one-to-one
matching; a NaN tIoU does not count), the recall is pooled over all events of the videos that have ground
truth, and AR is its mean over the thresholds. Unlike the official code, which keeps a *percentage* of each
video's proposals, AN here is simply the number of top-scored detections kept in every video (AN = 1..100);
``AUC`` is the trapezoid area under AR(AN) divided by the largest AN, as the official code normalises it.
``R@1x`` / ``R@5x`` are the AR with AN = 1x / 5x the average number of events per annotated video (rounded,
at least 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .detection import pairs_by_key, segment_iou
from .groundtruth import GroundTruth
from .predictions import Aligned


@dataclass
class RecallResult:
    """``an``: int [A] = 1..max_an; ``recall``: float [T, A]; ``ar``: [A] mean over thresholds; ``auc`` in
    [0, 1]; ``recall_1x`` / ``recall_5x`` at ``an_1x`` / ``an_5x`` detections per video."""

    thresholds: np.ndarray
    an: np.ndarray
    recall: np.ndarray
    ar: np.ndarray
    auc: float
    an_1x: int
    an_5x: int
    recall_1x: float
    recall_5x: float


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0)) if x.shape[0] > 1 else 0.0


def first_hit_rank(preds: Aligned, gt: GroundTruth, thresholds: Sequence[float], max_rank: int) -> np.ndarray:
    """int64 [T, G]: for each threshold and event, the smallest per-video score rank (0 = best detection of
    the video, labels ignored) of a detection with ``tIoU >= t``; ``max_rank`` when none ranks below it."""
    thr = np.asarray(thresholds, dtype=np.float64)
    first = np.full((thr.shape[0], gt.num_gt), max_rank, dtype=np.int64)
    if len(preds) == 0 or gt.num_gt == 0:
        return first
    order = np.lexsort((-preds.score, preds.video))  # by video, then decreasing score (stable)
    vids = preds.video[order]
    group_start = np.searchsorted(vids, vids, side="left")
    rank = np.empty(len(preds), dtype=np.int64)
    rank[order] = np.arange(len(preds)) - group_start
    keep = np.flatnonzero(rank < max_rank)
    pi, gi = pairs_by_key(preds.video[keep], gt.video)
    pi = keep[pi]
    tiou = segment_iou(preds.start[pi], preds.end[pi], gt.start[gi], gt.end[gi])
    hit = tiou >= thr.min()
    pr, gi, tiou = rank[pi][hit], gi[hit], tiou[hit]
    for t, th in enumerate(thr.tolist()):
        ok = tiou >= th
        np.minimum.at(first[t], gi[ok], pr[ok])
    return first


def average_recall(preds: Aligned, gt: GroundTruth, thresholds: Sequence[float], max_an: int = 100) -> RecallResult:
    """AR@AN for AN = 1..``max_an``, its normalised AUC, and R@1x / R@5x (fractions in [0, 1])."""
    thr = np.asarray(thresholds, dtype=np.float64)
    an = np.arange(1, max_an + 1)
    n_gt = gt.num_gt
    n_vid = int(np.unique(gt.video).shape[0]) if n_gt else 0
    avg_gt = n_gt / n_vid if n_vid else 0.0
    an_1x, an_5x = max(1, int(round(avg_gt))), max(1, int(round(5 * avg_gt)))
    limit = max(max_an, an_5x)
    first = first_hit_rank(preds, gt, thr, limit)
    if n_gt == 0:
        zeros = np.zeros((thr.shape[0], max_an))
        return RecallResult(thr, an, zeros, zeros.mean(axis=0), 0.0, an_1x, an_5x, 0.0, 0.0)
    counts = (np.stack([np.bincount(row, minlength=limit + 1) for row in first]) if thr.size
              else np.zeros((0, limit + 1)))
    recall_at = np.cumsum(counts, axis=1)[:, :limit] / float(n_gt)  # [T, limit]: recall with AN = 1..limit
    recall = recall_at[:, :max_an]
    ar = recall.mean(axis=0)
    return RecallResult(
        thresholds=thr,
        an=an,
        recall=recall,
        ar=ar,
        auc=_trapezoid(ar, an.astype(np.float64)) / float(an[-1]),
        an_1x=an_1x,
        an_5x=an_5x,
        recall_1x=float(recall_at[:, an_1x - 1].mean()),
        recall_5x=float(recall_at[:, an_5x - 1].mean()),
    )
