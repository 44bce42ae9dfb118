"""Timeline of one video: its ground-truth events and the top-scoring detections of each predicted class.
Nothing here imports matplotlib at module import time."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import UserError
from ..messages import plural, shown
from .mpl import PathLike, class_colors, label_text, pyplot, save_png

GtSegment = Tuple[float, float, str]
PredSegment = Tuple[float, float, str, float]

#: lowest opacity of a detection bar, so that low-score detections stay visible
MIN_ALPHA = 0.15


def _finite(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what}: expected a number, got {shown(repr(value), 40)}") from None
    if not math.isfinite(out):
        raise UserError(f"{what}: expected a finite number, got {shown(repr(value), 40)}")
    return out


def plot_timeline(
    video_id: str,
    gt_segments: Optional[Sequence[GtSegment]],
    predictions: Sequence[PredSegment],
    duration: Optional[float],
    out_png: PathLike,
    top_k_per_class: int = 3,
    class_names: Optional[Sequence[str]] = None,
) -> Path:
    """Draw one video's timeline and write it to ``out_png`` (returned).

    Row "ground truth": every event ``(start_s, end_s, label)``, coloured by class. Then one row per class
    with detections: its ``top_k_per_class`` highest-scoring detections ``(start_s, end_s, label, score)``,
    one thin lane each (best on top), opacity proportional to the score (relative to 1, or to the best
    score of the video when scores exceed 1), with the class's ground-truth events outlined behind them.
    Rows of classes present in the ground truth come first, then by best score. ``duration`` (seconds; None
    or <= 0: the last segment end) sets the x range. A class's colour is a function of its name
    (:mod:`rdfa_s6.viz.colors`, the viewer's too); ``class_names``, the dataset's classes, settles the rare
    clash of two classes on one colour the same way on every video's figure. ``gt_segments=None`` (no ground
    truth at all, unlike an empty list: a video without events) draws the detections alone.
    """
    if top_k_per_class < 1:
        raise UserError(f"top_k_per_class must be >= 1, got {top_k_per_class}")
    has_gt = gt_segments is not None
    gts: List[GtSegment] = []
    for i, seg in enumerate(gt_segments or []):
        if len(seg) != 3:
            raise UserError(f"gt_segments[{i}]: expected (start, end, label), got {shown(repr(seg))}")
        gts.append((_finite(seg[0], f"gt_segments[{i}] start"), _finite(seg[1], f"gt_segments[{i}] end"), str(seg[2])))
    preds: List[PredSegment] = []
    for i, seg in enumerate(predictions):
        if len(seg) != 4:
            raise UserError(f"predictions[{i}]: expected (start, end, label, score), got {shown(repr(seg))}")
        preds.append((_finite(seg[0], f"predictions[{i}] start"), _finite(seg[1], f"predictions[{i}] end"),
                      str(seg[2]), _finite(seg[3], f"predictions[{i}] score")))

    by_class: Dict[str, List[PredSegment]] = defaultdict(list)
    for p in preds:
        by_class[p[2]].append(p)
    gt_labels = list(dict.fromkeys(g[2] for g in gts))
    rows = sorted(by_class, key=lambda lab: (lab not in gt_labels, -max(p[3] for p in by_class[lab]), lab))
    top = {lab: sorted(by_class[lab], key=lambda p: -p[3])[:top_k_per_class] for lab in rows}

    ends = [e for _, e, _ in gts] + [p[1] for lab in rows for p in top[lab]]
    xmax = float(duration) if duration is not None and math.isfinite(float(duration)) and float(duration) > 0 else 0.0
    if xmax <= 0:
        xmax = max(ends + [1.0])
    max_score = max([p[3] for p in preds] + [1.0])

    plt = pyplot()
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch, Rectangle

    colors = class_colors(list(class_names or []) + gt_labels + rows)
    n_rows = int(has_gt) + max(len(rows), 1)  # a video without detections keeps an empty row that says so
    fig_h = 1.3 + 0.42 * n_rows
    fig, ax = plt.subplots(figsize=(11, fig_h))
    row_h = 0.8
    # the ground-truth row on top (y = n_rows - 1), then one row per predicted class
    y_gt = n_rows - 1 if has_gt else n_rows
    for s, e, lab in gts:
        ax.add_patch(Rectangle((s, y_gt - row_h / 2), max(e - s, 0.0), row_h, facecolor=colors[lab],
                               edgecolor="black", linewidth=0.6))
    show_scores = top_k_per_class <= 5
    for r, lab in enumerate(rows):
        y = n_rows - 1 - int(has_gt) - r
        ax.axhspan(y - 0.5, y + 0.5, color="0.96" if r % 2 == 0 else "white", zorder=0)
        for s, e, glab in gts:  # the class's ground truth, outlined
            if glab == lab:
                ax.add_patch(Rectangle((s, y - row_h / 2), max(e - s, 0.0), row_h, fill=False, edgecolor="black",
                                       linewidth=0.9, linestyle="--", zorder=3))
        lane = row_h / len(top[lab])
        for j, (s, e, _, score) in enumerate(top[lab]):
            y0 = y + row_h / 2 - (j + 1) * lane
            alpha = min(1.0, max(MIN_ALPHA, score / max_score))
            # the fill carries the score; the outline stays opaque so that weak detections remain visible
            ax.add_patch(Rectangle((s, y0 + 0.06 * lane), max(e - s, 0.0), 0.88 * lane,
                                   facecolor=to_rgba(colors[lab], alpha), edgecolor=colors[lab], linewidth=0.9,
                                   zorder=2))
            if show_scores:
                right = max(e, s) < 0.93 * xmax  # near the right edge the score goes left of the bar
                text = f" {score:.2f} " if right else f"{score:.2f} "
                ax.text(max(e, s) if right else min(s, e), y0 + lane / 2, text,
                        fontsize=6, va="center", ha="left" if right else "right", color="0.2", zorder=4,
                        clip_on=True, bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "alpha": 0.7,
                                            "edgecolor": "none"})
    labels = ["ground truth"] * int(has_gt) + [f"{label_text(lab)} (top {len(top[lab])}/{len(by_class[lab])})"
                                               for lab in rows]
    if not rows:
        labels.append("predictions")
        ax.text(xmax / 2, 0, "no predictions for this video", ha="center", va="center", fontsize=9, color="0.35")
    ax.set_yticks(list(range(n_rows - 1, -1, -1)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(-0.6, n_rows - 0.4)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("time (s)")
    if has_gt:
        ax.axhline(y_gt - 0.5, color="0.3", linewidth=0.8)
    ax.grid(axis="x", linestyle=":", linewidth=0.5, color="0.7")
    ax.set_axisbelow(True)
    subtitle = (f"{plural(len(gts), 'ground-truth event')}; top {plural(top_k_per_class, 'detection')} per class, "
                f"opacity = score, dashed = ground truth of the class" if has_gt else
                f"detections (no ground truth given): top {top_k_per_class} per class, opacity = score")
    ax.set_title(f"{label_text(video_id)}\n{subtitle}", fontsize=9)
    if has_gt and not gts:
        ax.text(xmax / 2, y_gt, "no ground-truth events", ha="center", va="center", fontsize=8, color="0.35")
    legend_labels = list(dict.fromkeys(gt_labels + rows))
    if legend_labels:
        handles = [Patch(facecolor=colors[lab], edgecolor="black", linewidth=0.5,
                         label=label_text(lab) + ("" if lab in gt_labels or not has_gt else " (no GT)"))
                   for lab in legend_labels]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                  title="class", title_fontsize=8)
    return save_png(fig, out_png)
