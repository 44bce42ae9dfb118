"""The training curve of a run: loss per step and validation mAP per epoch, read from its ``metrics.jsonl``.
Writes one PNG atomically and returns its path."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..formats.metrics import read_metrics_jsonl
from .mpl import PathLike, label_text, pyplot, save_png

log = logging.getLogger(__name__)


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
    ax.set_title(f"Training curve: {label_text(path.parent.name or path.name)}", fontsize=9,
                 pad=24 if ep_step.size else 6)
    return save_png(fig, out_png)
