"""One call that evaluates a results file against a ground truth, and a table of the numbers."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Union

import numpy as np

from ..errors import DataError, UserError
from ..formats.jsonfile import preview
from ..messages import listed
from .detection import average_precision
from .false_positives import false_positive_breakdown
from .groundtruth import EVALUATE_GT_POLICY, load_ground_truth
from .predictions import align_predictions, check_usable, load_predictions
from .recall import average_recall

log = logging.getLogger(__name__)

#: THUMOS-14 thresholds, 0.3:0.1:0.7
THUMOS_TIOUS = tuple(np.linspace(0.3, 0.7, 5).tolist())
#: ActivityNet / HACS / FineAction thresholds, 0.5:0.05:0.95
ANET_TIOUS = tuple(np.linspace(0.5, 0.95, 10).tolist())

Source = Union[str, Path, Mapping[str, Any]]


def check_thresholds(tiou_thresholds: Sequence[float]) -> np.ndarray:
    """The thresholds as float64 [T]; :class:`UserError` unless there is at least one and each is in (0, 1]."""
    try:
        thr = np.asarray([float(t) for t in tiou_thresholds], dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"tIoU thresholds must be numbers, got {preview(tiou_thresholds, 80)}") from None
    if thr.ndim != 1 or thr.size == 0:
        raise UserError("at least one tIoU threshold is needed")
    bad = [t for t in thr.tolist() if not (math.isfinite(t) and 0.0 < t <= 1.0)]
    if bad:
        raise UserError(f"tIoU thresholds must be in (0, 1], got {bad}")
    return thr


def _display(t: float) -> float:
    """A threshold as printed and stored: 0.39999999999999997 -> 0.4 (the computation uses the exact value)."""
    return round(float(t), 10)


def evaluate(
    pred_path_or_dict: Source,
    gt_path_or_dict: Source,
    subset: str = "test",
    tiou_thresholds: Sequence[float] = THUMOS_TIOUS,
    gt_policy: str = EVALUATE_GT_POLICY,
    error_tiou: float = 0.5,
    strict: bool = False,
) -> Dict[str, Any]:
    """Evaluate detections (ActivityNet results JSON, path or dict) against annotations of ``subset``.

    ``gt_policy`` defaults to ``official`` (:data:`~rdfa_s6.eval.groundtruth.EVALUATE_GT_POLICY`: every event
    kept, as ActivityNet's eval_detection.py and ``rdfa-s6 evaluate``). This is not the config's default:
    ``eval.gt_policy`` is ``actionformer`` (zero-length and same-label duplicate events dropped, the official
    RDFA-S6 metric), which train validation, ``test`` and the demo pass explicitly. Pass
    ``gt_policy=cfg.eval.gt_policy`` to score as they do.

    Returns a JSON-able dict: ``tiou_thresholds`` [T], ``mAP`` [T] (fractions), ``average_mAP``,
    ``per_class_AP`` ({label: [T]}), ``recall`` (AR@AN for AN = 1..100, ``AUC``, ``R@1x``, ``R@5x``,
    averaged over the same thresholds), ``errors`` (false-positive breakdown at ``error_tiou``),
    ``num_videos`` (videos of the split), ``num_gt``, ``num_predictions`` (detections read), ``gt_policy``,
    ``subset`` and ``warnings`` (strings, also logged). With ``strict``, detections none of which can match
    (all for videos outside the split, or all with unknown labels) raise :class:`DataError` instead of
    warning and scoring 0 (:func:`~rdfa_s6.eval.predictions.check_usable`); the command line is strict.
    """
    thr = check_thresholds(tiou_thresholds)
    err_thr = check_thresholds([error_tiou])[0]
    gt = load_ground_truth(gt_path_or_dict, subset=subset, gt_policy=gt_policy)
    if gt.num_gt == 0:
        raise DataError(f"ground truth {gt.source}: subset {subset!r} has videos but no usable events")
    preds = load_predictions(pred_path_or_dict)
    if strict:
        check_usable(preds, gt, subset)
    aligned, warnings = align_predictions(preds, gt)
    det = average_precision(aligned, gt, thr)
    missing = [lab for lab, n in zip(gt.labels, np.bincount(aligned.label, minlength=len(gt.labels))) if n == 0]
    if missing and len(aligned):
        msg = f"no predictions for {len(missing)} class(es) ({listed(missing)}): AP 0"
        log.warning("%s", msg)
        warnings.append(msg)
    rec = average_recall(aligned, gt, thr)
    errs = false_positive_breakdown(aligned, gt, float(err_thr))
    metrics: Dict[str, Any] = {
        "subset": subset,
        "gt_policy": gt_policy,
        "tiou_thresholds": [_display(t) for t in thr],
        "mAP": [float(v) for v in det.mAP],
        "average_mAP": float(det.average_mAP),
        "per_class_AP": {lab: [float(v) for v in det.ap[:, c]] for c, lab in enumerate(gt.labels)},
        "recall": {
            "AN": [int(a) for a in rec.an],
            "AR@AN": [float(v) for v in rec.ar],
            "AUC": rec.auc,
            "R@1x": rec.recall_1x,
            "R@5x": rec.recall_5x,
            "AN@1x": rec.an_1x,
            "AN@5x": rec.an_5x,
        },
        "errors": errs,
        "num_videos": len(gt.videos),
        "num_gt": gt.num_gt,
        "num_predictions": len(preds),
        "warnings": list(warnings),
    }
    if preds.computed_with:
        metrics["computed_with"] = dict(preds.computed_with)
    return metrics


def format_table(metrics: Mapping[str, Any]) -> str:
    """mAP per tIoU threshold and their average, in percent, as a two-line text table, and a third line saying
    with which precision and on which device the detections were computed when the metrics know it."""
    thr: List[float] = list(metrics["tiou_thresholds"])
    head = ["tIoU"] + [f"{t:.2f}" for t in thr] + ["Avg"]
    row = ["mAP(%)"] + [f"{100 * v:.2f}" for v in metrics["mAP"]] + [f"{100 * metrics['average_mAP']:.2f}"]
    width = [max(len(a), len(b)) for a, b in zip(head, row)]

    def fmt(cells: List[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, width)))

    return fmt(head) + "\n" + fmt(row) + (f"\n{computed_with_text(metrics)}" if "computed_with" in metrics else "")


def computed_with_text(metrics: Mapping[str, Any]) -> str:
    """``detections computed in fp32 on cpu`` from the metrics' ``computed_with`` (empty when unknown)."""
    how = metrics.get("computed_with") or {}
    if not how:
        return ""
    return f"detections computed in {how.get('precision', '?')} on {how.get('device', '?')}"
