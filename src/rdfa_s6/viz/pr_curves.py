"""Precision-recall curves per class at one tIoU, matched as the evaluator matches (so each curve's area is
the evaluator's AP). Writes one PNG atomically and returns its path."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import numpy as np

from ..errors import DataError, UserError
from ..messages import plural
from .mpl import PathLike, label_text, pyplot, save_png


def precision_recall(preds: Any, gt: Any, tiou: float = 0.5) -> Dict[str, Dict[str, Any]]:
    """Precision and recall of each class of ``gt`` along its detections by decreasing score, at one tIoU.

    ``preds``: :class:`rdfa_s6.eval.predictions.Aligned`; ``gt``: :class:`rdfa_s6.eval.groundtruth.GroundTruth`.
    Matching is the evaluator's (:func:`rdfa_s6.eval.detection.greedy_match`), so ``ap`` equals the
    evaluator's AP at ``tiou``. Returns ``{label: {"precision", "recall" (float arrays [N]), "ap",
    "num_gt", "num_pred"}}`` in the order of ``gt.labels``.
    """
    from ..eval.detection import greedy_match, interpolated_ap

    order, tp = greedy_match(preds, gt, [float(tiou)])
    ranked_label = preds.label[order]
    num_gt = np.bincount(gt.label, minlength=len(gt.labels))
    out: Dict[str, Dict[str, Any]] = {}
    for c, lab in enumerate(gt.labels):
        hits = tp[0, ranked_label == c]
        cum = np.cumsum(hits, dtype=np.float64)
        npos = int(num_gt[c])
        out[lab] = {
            "precision": cum / np.arange(1, hits.shape[0] + 1, dtype=np.float64),
            "recall": cum / npos if npos else np.zeros_like(cum),
            "ap": float(interpolated_ap(hits[None, :], npos)[0]),
            "num_gt": npos,
            "num_pred": int(hits.shape[0]),
        }
    return out


def _ground_truth(gt: Any, subset: str, gt_policy: str):
    from ..eval.groundtruth import GroundTruth, load_ground_truth

    return gt if isinstance(gt, GroundTruth) else load_ground_truth(gt, subset=subset, gt_policy=gt_policy)


def _aligned(predictions: Any, gt: Any):
    from ..eval.predictions import Aligned, Predictions, align_predictions, load_predictions

    if isinstance(predictions, Aligned):
        return predictions
    preds = predictions if isinstance(predictions, Predictions) else load_predictions(predictions)
    return align_predictions(preds, gt)[0]


def plot_pr_curves(
    gt: Any,
    predictions: Any,
    out_png: PathLike,
    tiou: float = 0.5,
    subset: str = "test",
    gt_policy: str = "official",
    max_classes: int = 20,
) -> Path:
    """Per-class precision-recall curves at ``tiou``, one small panel per class, written to ``out_png``.

    ``gt``: annotation JSON path or dict, or a loaded ``GroundTruth`` (``subset`` and ``gt_policy`` apply
    when loading); ``predictions``: results JSON path or dict, ``Predictions`` or ``Aligned``. Each panel
    shows precision against recall (thin) and its interpolated envelope (filled: its area is the AP), and
    names the class, its AP and its numbers of events and detections. With more than ``max_classes``
    classes, those with the most ground-truth events are shown.
    """
    tiou = float(tiou)
    if not (math.isfinite(tiou) and 0.0 < tiou <= 1.0):
        raise UserError(f"tIoU must be in (0, 1], got {tiou}")
    if max_classes < 1:
        raise UserError(f"max_classes must be >= 1, got {max_classes}")
    g = _ground_truth(gt, subset, gt_policy)
    if g.num_gt == 0 or not g.labels:
        raise DataError(f"ground truth {g.source}: no events to draw precision-recall curves for")
    curves = precision_recall(_aligned(predictions, g), g, tiou)
    labels = list(curves)
    shown = sorted(labels, key=lambda lab: -curves[lab]["num_gt"])[:max_classes]
    shown = [lab for lab in labels if lab in shown]  # keep the ground truth's class order
    mean_ap = float(np.mean([c["ap"] for c in curves.values()]))

    plt = pyplot()
    n = len(shown)
    ncols = min(5, n)
    nrows = int(math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols + 0.4, 2.35 * nrows + 0.7), squeeze=False,
                             sharex=True, sharey=True)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        lab = shown[k]
        c = curves[lab]
        if c["num_pred"]:
            rec = np.concatenate([[0.0], c["recall"]])
            prec = np.concatenate([[c["precision"][0]], c["precision"]])
            envelope = np.maximum.accumulate(prec[::-1])[::-1]
            ax.fill_between(rec, envelope, step="post", alpha=0.25, color="C0", linewidth=0)
            ax.step(rec, envelope, where="post", color="C0", linewidth=1.4)
            ax.plot(rec, prec, color="C1", linewidth=0.7, alpha=0.8)
        else:
            ax.text(0.5, 0.5, "no predictions", ha="center", va="center", fontsize=8, color="0.4",
                    transform=ax.transAxes)
        name = label_text(lab, 24)
        ax.set_title(f"{name}\nAP {100 * c['ap']:.1f}%  ({c['num_gt']} GT, {c['num_pred']} det)", fontsize=7.5)
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, 1.05)
        ax.grid(linestyle=":", linewidth=0.5, color="0.75")
        ax.tick_params(labelsize=7)
        if k % ncols == 0:
            ax.set_ylabel("precision", fontsize=8)
        if k >= n - ncols:
            ax.set_xlabel("recall", fontsize=8)
            ax.tick_params(labelbottom=True)
    extra = (f", showing the {'class' if n == 1 else f'{n} classes'} with the most events of {len(labels)}"
             if n < len(labels) else "")
    fig.suptitle(f"Precision-recall per class at tIoU {tiou:.2f}: mAP {100 * mean_ap:.2f}% over "
                 f"{plural(len(labels), 'class', 'classes')}{extra}\n"
                 f"(filled: interpolated precision, its area is the AP; thin: raw precision)",
                 fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_png)
