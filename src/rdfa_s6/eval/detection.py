"""Detection mAP at several tIoU thresholds, as ActivityNet's ``Evaluation/eval_detection.py`` computes it.

Per class, detections are taken by decreasing score; each one becomes a true positive of the not-yet-matched
ground-truth event of the same video and class with the highest tIoU, provided that tIoU reaches the
threshold; otherwise it is a false positive (also when its video has no ground truth of the class). AP is the
VOC-2011 interpolated area under the precision envelope; mAP is the mean over the classes of the ground truth
(a class without detections has AP 0). Ties are resolved as the official code does on small arrays: among
equal tIoUs the later ground-truth event is tried first, and a NaN tIoU (zero-length detection against a
zero-length event: 0/0) sorts above every number and counts as a match.

Everything is vectorised except the greedy matching itself, a scalar loop over the (detection, event) pairs
that reach the lowest threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .groundtruth import GroundTruth
from .predictions import Aligned


def segment_iou(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """Elementwise tIoU of segments ``[ps, pe]`` and ``[gs, ge]`` (seconds, broadcastable arrays).

    Same formula as the official ``segment_iou``: intersection clipped at 0, union = sum of lengths minus
    intersection, no clipping of the union, so 0/0 gives NaN.
    """
    inter = (np.minimum(pe, ge) - np.maximum(ps, gs)).clip(0)
    union = (ge - gs) + (pe - ps) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        tiou: np.ndarray = inter / union
    return tiou


def pairs_by_key(pred_key: np.ndarray, gt_key: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """All (prediction, ground-truth) index pairs with equal keys, as two int64 arrays [K].

    Pairs come grouped by prediction in input order, ground-truth indices ascending within a prediction.
    """
    g_order = np.argsort(gt_key, kind="mergesort")
    g_sorted = gt_key[g_order]
    lo = np.searchsorted(g_sorted, pred_key, side="left")
    hi = np.searchsorted(g_sorted, pred_key, side="right")
    counts = hi - lo
    total = int(counts.sum())
    pi = np.repeat(np.arange(pred_key.shape[0], dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    gi = g_order[lo[pi] + (np.arange(total, dtype=np.int64) - starts[pi])]
    return pi, gi


def score_order(score: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(order, rank)``: indices by decreasing score (stable: ties keep file order) and each one's rank."""
    order = np.argsort(-score, kind="mergesort")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return order, rank


def greedy_match(preds: Aligned, gt: GroundTruth, thresholds: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Official greedy matching at every threshold.

    Returns ``(order, tp)``: ``order`` int64 [P], the detections by decreasing score; ``tp`` bool [T, P],
    ``tp[t, r]`` true when the detection of rank ``r`` is a true positive at ``thresholds[t]``.
    """
    thr = np.asarray(thresholds, dtype=np.float64)
    order, rank = score_order(preds.score)
    tp = np.zeros((thr.shape[0], len(preds)), dtype=bool)
    if len(preds) == 0 or gt.num_gt == 0:
        return order, tp
    ncls = max(len(gt.labels), 1)
    pi, gi = pairs_by_key(preds.video * ncls + preds.label, gt.video * ncls + gt.label)
    tiou = segment_iou(preds.start[pi], preds.end[pi], gt.start[gi], gt.end[gi])
    keep = ~(tiou < thr.min())  # NaN is kept: the official test is `tiou < thr -> stop`
    pi, gi, tiou = pi[keep], gi[keep], tiou[keep]
    nan = np.isnan(tiou)
    sort = np.lexsort((-gi, -np.where(nan, 0.0, tiou), ~nan, rank[pi]))
    pr, gi, tiou = rank[pi][sort], gi[sort], tiou[sort]
    for t, th in enumerate(thr.tolist()):
        ok = ~(tiou < th)
        taken_p = bytearray(len(preds))
        taken_g = bytearray(gt.num_gt)
        for p, g in zip(pr[ok].tolist(), gi[ok].tolist()):
            if taken_p[p] or taken_g[g]:
                continue
            taken_p[p] = 1
            taken_g[g] = 1
        tp[t] = np.frombuffer(bytes(taken_p), dtype=np.uint8).astype(bool)
    return order, tp


def interpolated_ap(tp: np.ndarray, npos: int) -> np.ndarray:
    """VOC-2011 interpolated AP of each row of ``tp`` (bool [T, N], detections by decreasing score).

    ``npos``: number of ground-truth events. Returns float64 [T]; all zeros when ``N == 0`` or ``npos == 0``.
    """
    n_t, n = tp.shape
    if n == 0 or npos == 0:
        return np.zeros(n_t)
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    prec = tp_cum / np.arange(1, n + 1, dtype=np.float64)
    rec = tp_cum / float(npos)
    zero, one = np.zeros((n_t, 1)), np.ones((n_t, 1))
    mprec = np.concatenate([zero, prec, zero], axis=1)
    mrec = np.concatenate([zero, rec, one], axis=1)
    envelope = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    ap: np.ndarray = np.sum((mrec[:, 1:] - mrec[:, :-1]) * envelope[:, 1:], axis=1)
    return ap


@dataclass
class DetectionResult:
    """``ap``: float64 [T, C] per threshold and class (order of ``gt.labels``); ``mAP``: [T];
    ``average_mAP``: mean of ``mAP``; ``num_gt``: int64 [C] ground-truth events per class."""

    thresholds: np.ndarray
    ap: np.ndarray
    mAP: np.ndarray
    average_mAP: float
    num_gt: np.ndarray


def average_precision(preds: Aligned, gt: GroundTruth, thresholds: Sequence[float]) -> DetectionResult:
    """AP per threshold and class, mAP per threshold and its mean (fractions in [0, 1])."""
    thr = np.asarray(thresholds, dtype=np.float64)
    order, tp = greedy_match(preds, gt, thresholds)
    ncls = len(gt.labels)
    num_gt = np.bincount(gt.label, minlength=ncls)
    ranked_label = preds.label[order]
    by_class = np.argsort(ranked_label, kind="mergesort")  # ranks grouped by class, score order kept
    bounds = np.searchsorted(ranked_label[by_class], np.arange(ncls + 1))
    ap = np.zeros((thr.shape[0], ncls))
    for c in range(ncls):
        cols = by_class[bounds[c]:bounds[c + 1]]
        ap[:, c] = interpolated_ap(tp[:, cols], int(num_gt[c]))
    m_ap = ap.mean(axis=1) if ncls else np.zeros(thr.shape[0])
    return DetectionResult(thr, ap, m_ap, float(m_ap.mean()) if m_ap.size else 0.0, num_gt)
