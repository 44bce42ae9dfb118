"""Evaluation and training plots: precision-recall curves per class, per-class AP, the false-positive
breakdown and the training curve of a run. Each function writes one PNG atomically and returns its path."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataError, UserError
from .timeline import PathLike, pyplot, save_png

log = logging.getLogger(__name__)

Source = Union[str, Path, Mapping[str, Any]]

#: false-positive categories of :mod:`rdfa_s6.eval.false_positives`, in its order, with readable names and colours
ERROR_CATEGORIES = ("double_detection", "wrong_label", "localization", "confusion", "background")
ERROR_NAMES = {
    "double_detection": "double detection",
    "wrong_label": "wrong label",
    "localization": "localization",
    "confusion": "confusion",
    "background": "background",
}
ERROR_COLORS = {
    "double_detection": "#4c72b0",
    "wrong_label": "#dd8452",
    "localization": "#55a868",
    "confusion": "#c44e52",
    "background": "#8172b3",
}


# ---- precision-recall -------------------------------------------------------------------------------------

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
        name = lab if len(lab) <= 24 else lab[:22] + "..."
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
    extra = f", showing the {n} classes with the most events of {len(labels)}" if n < len(labels) else ""
    fig.suptitle(f"Precision-recall per class at tIoU {tiou:.2f}: mAP {100 * mean_ap:.2f}% over {len(labels)} "
                 f"classes{extra}\n(filled: interpolated precision, its area is the AP; thin: raw precision)",
                 fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_png)


# ---- metrics JSON -----------------------------------------------------------------------------------------

def load_metrics(metrics: Source) -> Mapping[str, Any]:
    """The metrics dict of ``rdfa-s6 evaluate --json`` (a path or the dict itself)."""
    if isinstance(metrics, Mapping):
        return metrics
    from ..eval.groundtruth import read_json

    data, name = read_json(metrics, "metrics")
    if not isinstance(data, Mapping):
        raise DataError(f"metrics {name}: expected a JSON object as written by 'rdfa-s6 evaluate --json'")
    return data


def plot_class_ap(metrics: Source, out_png: PathLike, max_classes: int = 40) -> Path:
    """Horizontal bars of each class's AP averaged over the tIoU thresholds, best first, written to
    ``out_png``; a dashed line marks the average mAP. With more than ``max_classes`` classes, the best and
    the worst halves are shown around a gap."""
    m = load_metrics(metrics)
    per_class = m.get("per_class_AP")
    if not isinstance(per_class, Mapping) or not per_class:
        raise DataError("metrics: no 'per_class_AP' object {class: [AP per tIoU]} (write it with "
                        "'rdfa-s6 evaluate --json')")
    means: List[Tuple[str, float]] = []
    for lab, values in per_class.items():
        vals = values if isinstance(values, (list, tuple)) else [values]
        try:
            arr = np.asarray([float(v) for v in vals], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"metrics: per_class_AP[{lab!r}]: expected a list of numbers") from None
        if arr.size == 0:
            raise DataError(f"metrics: per_class_AP[{lab!r}] is empty")
        means.append((str(lab), float(np.nanmean(arr))))
    means.sort(key=lambda x: (-x[1], x[0]))
    avg = m.get("average_mAP")
    avg = float(avg) if isinstance(avg, (int, float)) and not isinstance(avg, bool) else float(np.mean([v for _, v in means]))
    rows: List[Optional[Tuple[str, float]]] = list(means)
    if max_classes >= 2 and len(means) > max_classes:
        half = max_classes // 2
        rows = means[:half] + [None] + means[len(means) - (max_classes - half):]

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.24 * len(rows)))
    y = np.arange(len(rows))[::-1]
    for yi, row in zip(y, rows):
        if row is None:
            ax.text(0.5, yi, f"... {len(means) - max_classes} classes not shown ...", ha="center", va="center",
                    fontsize=7, color="0.4", transform=ax.get_yaxis_transform())
            continue
        lab, v = row
        ax.barh(yi, 100 * v, color="C0" if v >= avg else "C3", alpha=0.85, height=0.75)
        ax.text(100 * v + 0.8, yi, f"{100 * v:.1f}", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(["" if r is None else r[0] for r in rows], fontsize=8)
    ax.axvline(100 * avg, color="0.2", linestyle="--", linewidth=1, zorder=1)
    ax.set_xlim(0, max(100.0, 100 * max(v for _, v in means) + 8))
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("AP (%)")
    thr = m.get("tiou_thresholds")
    thr_text = ""
    if isinstance(thr, (list, tuple)) and thr:
        try:
            thr_text = f" over tIoU {', '.join(f'{float(t):g}' for t in thr)}" if len(thr) <= 6 else \
                f" over {len(thr)} tIoU thresholds {float(thr[0]):g}..{float(thr[-1]):g}"
        except (TypeError, ValueError):
            thr_text = ""
    ax.set_title(f"Per-class AP averaged{thr_text} ({len(means)} classes)\n"
                 f"dashed: average mAP {100 * avg:.2f}%; blue: classes at or above it, red: below", fontsize=9)
    ax.grid(axis="x", linestyle=":", linewidth=0.5, color="0.7")
    ax.set_axisbelow(True)
    return save_png(fig, out_png)


def plot_error_breakdown(metrics: Source, out_png: PathLike) -> Path:
    """The false-positive breakdown of ``metrics["errors"]`` (see :mod:`rdfa_s6.eval.false_positives`): counts per
    category as bars (with their share in percent) and the shares as a pie, written to ``out_png``.
    ``metrics`` may also be the breakdown dict itself."""
    m = load_metrics(metrics)
    errs = m.get("errors", m)
    counts = errs.get("counts") if isinstance(errs, Mapping) else None
    if not isinstance(counts, Mapping):
        raise DataError("metrics: no 'errors' object with 'counts' {category: number} (write it with "
                        "'rdfa-s6 evaluate --json')")
    cats = [c for c in ERROR_CATEGORIES if c in counts] + [c for c in counts if c not in ERROR_CATEGORIES]
    vals = []
    for c in cats:
        v = counts[c]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise DataError(f"metrics: errors.counts[{c!r}]: expected a count >= 0, got {v!r}")
        vals.append(float(v))
    total = sum(vals)
    names = [ERROR_NAMES.get(c, c.replace("_", " ")) for c in cats]
    colors = [ERROR_COLORS.get(c, f"C{i}") for i, c in enumerate(cats)]

    plt = pyplot()
    fig, (ax, ax_pie) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.5, 1]})
    y = np.arange(len(cats))[::-1]
    ax.barh(y, vals, color=colors, height=0.7)
    for yi, v in zip(y, vals):
        share = f" ({100 * v / total:.1f}%)" if total else ""
        ax.text(v, yi, f" {int(v) if float(v).is_integer() else v}{share}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlim(0, max(vals + [1.0]) * 1.3)
    ax.set_xlabel("false positives")
    ax.grid(axis="x", linestyle=":", linewidth=0.5, color="0.7")
    ax.set_axisbelow(True)
    if total:
        wedges, _t, autotexts = ax_pie.pie(vals, colors=colors, startangle=90, counterclock=False,
                                           autopct=lambda p: f"{p:.0f}%" if p >= 4 else "",
                                           pctdistance=0.72, wedgeprops={"linewidth": 0.8, "edgecolor": "white"})
        for t in autotexts:
            t.set_fontsize(8)
            t.set_color("white")
        ax_pie.legend(wedges, names, loc="center left", bbox_to_anchor=(0.95, 0.5), fontsize=8, frameon=False)
        ax_pie.set_aspect("equal")
    else:
        ax_pie.text(0.5, 0.5, "no false positives", ha="center", va="center", fontsize=10, color="0.4")
        ax_pie.set_axis_off()
    thr = errs.get("tiou_threshold")
    tp = errs.get("num_true_positives")
    head = "False-positive breakdown"
    if isinstance(thr, (int, float)) and not isinstance(thr, bool):
        head += f" at tIoU {float(thr):.2f}"
    detail = f"{int(total)} false positives"
    if isinstance(tp, (int, float)) and not isinstance(tp, bool):
        detail += f", {int(tp)} true positives among the top-G detections per class"
    fig.suptitle(f"{head}\n{detail}", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_png)


# ---- training curve ---------------------------------------------------------------------------------------

def read_metrics_jsonl(path: PathLike) -> List[Dict[str, Any]]:
    """The records of a run's ``metrics.jsonl``. Blank lines are skipped; a malformed last line (a run
    killed while writing) is skipped with a warning, a malformed line elsewhere is a :class:`DataError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"training metrics file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"training metrics file {p}: cannot read: {err}") from None
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    records: List[Dict[str, Any]] = []
    for k, (lineno, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            if k == len(lines) - 1:
                log.warning("%s line %d: not valid JSON (a run stopped while writing?): skipped", p, lineno)
                continue
            raise DataError(f"training metrics file {p} line {lineno}: not valid JSON: {err.msg}") from None
        if not isinstance(rec, dict):
            raise DataError(f"training metrics file {p} line {lineno}: expected a JSON object")
        records.append(rec)
    return records


def _series(records: Sequence[Mapping[str, Any]], kind: str, x: str, y: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the records of ``kind`` having both numbers, sorted by x; a repeated x (a resumed run
    logs some steps again) keeps its last value."""
    pts: Dict[float, float] = {}
    for r in records:
        if r.get("kind") != kind:
            continue
        xv, yv = r.get(x), r.get(y)
        if isinstance(xv, bool) or isinstance(yv, bool):
            continue
        if isinstance(xv, (int, float)) and isinstance(yv, (int, float)) and math.isfinite(xv):
            pts[float(xv)] = float(yv)
    xs = np.array(sorted(pts), dtype=np.float64)
    return xs, np.array([pts[v] for v in xs.tolist()], dtype=np.float64)


def plot_training_curve(metrics_jsonl_path: PathLike, out_png: PathLike) -> Path:
    """Training loss against the global step (total, classification and regression of the logged steps,
    and each epoch's mean loss as dots) and, when the run was validated, the validation average mAP of each
    epoch on a right-hand axis (placed at the epoch's last step; the top axis numbers the epochs). Written
    to ``out_png``. An empty file, or one without training records, is a :class:`UserError`."""
    path = Path(metrics_jsonl_path)
    records = read_metrics_jsonl(path)
    step_x, loss = _series(records, "train", "step", "loss")
    _, cls_loss = _series(records, "train", "step", "cls_loss")
    _, reg_loss = _series(records, "train", "step", "reg_loss")
    ep_x, ep_loss = _series(records, "epoch", "step", "loss")
    ep_step, ep_num = _series(records, "epoch", "step", "epoch")
    val_x, val_map = _series(records, "epoch", "step", "val_average_mAP")
    if not step_x.size and not ep_x.size:
        raise UserError(f"training metrics file {path}: no training records (lines with \"kind\": \"train\" or "
                        f"\"epoch\" and a step and loss); is it the metrics.jsonl of a run that has started?")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.6))
    if step_x.size:
        ax.plot(step_x, loss, color="C0", linewidth=1.2, label="loss")
        if cls_loss.size == step_x.size:
            ax.plot(step_x, cls_loss, color="C2", linewidth=0.8, linestyle="--", alpha=0.8, label="cls loss")
        if reg_loss.size == step_x.size:
            ax.plot(step_x, reg_loss, color="C4", linewidth=0.8, linestyle=":", alpha=0.9, label="reg loss")
    if ep_x.size:
        ax.plot(ep_x, ep_loss, "o", color="C0", markersize=4, markeredgecolor="black", markeredgewidth=0.5,
                label="epoch mean loss", linestyle="-" if not step_x.size else "none")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(linestyle=":", linewidth=0.5, color="0.7")
    handles, labels = ax.get_legend_handles_labels()
    if val_x.size:
        ax2 = ax.twinx()
        ax2.plot(val_x, 100 * val_map, "s-", color="C3", markersize=4, linewidth=1.2, label="val average mAP")
        ax2.set_ylabel("validation average mAP (%)", color="C3")
        ax2.tick_params(axis="y", colors="C3")
        ax2.margins(y=0.12)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
        best = int(np.nanargmax(val_map)) if np.isfinite(val_map).any() else None
        if best is not None:
            ax2.annotate(f"{100 * val_map[best]:.2f}", (val_x[best], 100 * val_map[best]), textcoords="offset points",
                         xytext=(0, 6), ha="center", fontsize=7, color="C3")
    if ep_step.size:
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        every = max(1, int(math.ceil(ep_step.size / 12)))
        top.set_xticks(ep_step[::every])
        top.set_xticklabels([f"{int(e)}" for e in ep_num[::every]], fontsize=7)
        top.set_xlabel("end of epoch", fontsize=8)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(labels), fontsize=8,
              frameon=False)
    ax.set_title(f"Training curve: {path.parent.name or path.name}", fontsize=9,
                 pad=24 if ep_step.size else 6)
    return save_png(fig, out_png)
