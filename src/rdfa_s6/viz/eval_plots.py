"""Plots of an evaluation's metrics JSON (``rdfa-s6 evaluate --json``): per-class AP and the false-positive
breakdown. Each function writes one PNG atomically and returns its path."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import DataError, MetricsError
from ..messages import plural, shown
from .mpl import PathLike, label_text, pyplot, save_png

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


def load_metrics(metrics: Source) -> Mapping[str, Any]:
    """The metrics dict of ``rdfa-s6 evaluate --json`` (a path or the dict itself)."""
    if isinstance(metrics, Mapping):
        return metrics
    from ..formats.jsonfile import read_json

    data, name = read_json(metrics, "metrics")
    if not isinstance(data, Mapping):
        raise DataError(f"metrics {name}: expected a JSON object as written by 'rdfa-s6 evaluate --json'")
    return data


#: points between a bar's end (or the dashed average line) and the bar's value label
LABEL_GAP = 3.0


def _clear_of_line(fig: Any, ax: Any, labels: List[Any], line_x: float) -> None:
    """Move each value label that would cross the vertical line at ``line_x`` (data coordinates) to just right
    of the line: measured in display coordinates once the figure is laid out."""
    renderer = fig.canvas.get_renderer()
    px = float(ax.transData.transform((line_x, 0.0))[0])
    gap = LABEL_GAP * fig.dpi / 72.0
    for text in labels:
        box = text.get_window_extent(renderer)
        if box.x0 - gap < px < box.x1 + gap:
            text.xy = (line_x, text.xy[1])


def plot_class_ap(metrics: Source, out_png: PathLike, max_classes: int = 40) -> Path:
    """Horizontal bars of each class's AP averaged over the tIoU thresholds, best first, written to
    ``out_png``; a dashed line marks the average mAP. With more than ``max_classes`` classes, the best and
    the worst halves are shown around a gap."""
    m = load_metrics(metrics)
    per_class = m.get("per_class_AP")
    if not isinstance(per_class, Mapping) or not per_class:
        raise MetricsError("no 'per_class_AP' object {class: [AP per tIoU]} (write it with "
                        "'rdfa-s6 evaluate --json')")
    means: List[Tuple[str, float]] = []
    for lab, values in per_class.items():
        vals = values if isinstance(values, (list, tuple)) else [values]
        try:
            arr = np.asarray([float(v) for v in vals], dtype=np.float64)
        except (TypeError, ValueError):
            raise MetricsError(f"per_class_AP['{shown(lab)}']: expected a list of numbers") from None
        if arr.size == 0:
            raise MetricsError(f"per_class_AP['{shown(lab)}'] is empty")
        means.append((str(lab), float(np.nanmean(arr))))
    means.sort(key=lambda x: (-x[1], x[0]))
    avg = m.get("average_mAP")
    if isinstance(avg, bool) or not isinstance(avg, (int, float)):
        avg = np.mean([v for _, v in means])
    avg = float(avg)
    rows: List[Optional[Tuple[str, float]]] = list(means)
    if max_classes >= 2 and len(means) > max_classes:
        half = max_classes // 2
        rows = means[:half] + [None] + means[len(means) - (max_classes - half):]

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.24 * len(rows)))
    y = np.arange(len(rows))[::-1]
    line_x = 100 * avg
    ax.axvline(line_x, color="0.2", linestyle="--", linewidth=1, zorder=1)
    ax.set_xlim(0, max(100.0, 100 * max(v for _, v in means) + 8, line_x + 8))
    ax.set_ylim(-0.7, len(rows) - 0.3)
    labels = []
    for yi, row in zip(y, rows):
        if row is not None:
            lab, v = row
            ax.barh(yi, 100 * v, color="C0" if v >= avg else "C3", alpha=0.85, height=0.75)
            labels.append(ax.annotate(f"{100 * v:.1f}", (100 * v, yi), xytext=(LABEL_GAP, 0),
                                      textcoords="offset points", va="center", fontsize=7))
    _clear_of_line(fig, ax, labels, line_x)
    ax.set_yticks(y)
    gap_note = f"... {plural(len(means) - max_classes, 'class', 'classes')} not shown ..."
    ax.set_yticklabels([gap_note if r is None else label_text(r[0]) for r in rows], fontsize=8)
    for tick, row in zip(ax.get_yticklabels(), rows):
        if row is None:  # the gap's note sits beside the axis, clear of the bars and of the dashed line
            tick.set_color("0.4")
            tick.set_fontstyle("italic")
    ax.set_xlabel("AP (%)")
    thr = m.get("tiou_thresholds")
    thr_text = ""
    if isinstance(thr, (list, tuple)) and thr:
        try:
            thr_text = f" over tIoU {', '.join(f'{float(t):g}' for t in thr)}" if len(thr) <= 6 else \
                f" over {len(thr)} tIoU thresholds {float(thr[0]):g}..{float(thr[-1]):g}"
        except (TypeError, ValueError):
            thr_text = ""
    ax.set_title(f"Per-class AP averaged{thr_text} ({plural(len(means), 'class', 'classes')})\n"
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
        raise MetricsError("no 'errors' object with 'counts' {category: number} (write it with "
                        "'rdfa-s6 evaluate --json')")
    cats = [c for c in ERROR_CATEGORIES if c in counts] + [c for c in counts if c not in ERROR_CATEGORIES]
    vals = []
    for c in cats:
        v = counts[c]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise MetricsError(f"errors.counts['{shown(c)}']: expected a count >= 0, got {shown(v, 40)}")
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
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers only
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
    detail = plural(int(total), "false positive")
    if isinstance(tp, (int, float)) and not isinstance(tp, bool):
        detail += f" and {plural(int(tp), 'true positive')}"
    detail += (" among the G best-scored detections of each class,\nG = the class's number of "
               "ground-truth events (detections below its G best are not counted)")
    fig.suptitle(f"{head}\n{detail}", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_png)
