"""Plots of detections, evaluation metrics and training runs (PNG files, headless matplotlib).

matplotlib is optional (``pip install 'rdfa-s6[viz]'``): it is imported only when a plot is drawn, and its
absence is then a :class:`rdfa_s6.errors.UserError`. Importing this package has no side effect.

Every plot function writes its PNG atomically (through :mod:`.mpl`, the shared matplotlib helpers) and
returns the path:

- :func:`plot_timeline`: one video's ground truth and top detections per class (opacity = score);
- :func:`plot_pr_curves`: precision-recall curves per class at one tIoU;
- :func:`plot_class_ap`: per-class AP averaged over the tIoU thresholds of an evaluation;
- :func:`plot_error_breakdown`: the false-positive breakdown of an evaluation;
- :func:`plot_training_curve`: loss per step and validation mAP per epoch of a run's ``metrics.jsonl``.
"""
from __future__ import annotations

from .eval_plots import load_metrics, plot_class_ap, plot_error_breakdown
from .pr_curves import plot_pr_curves, precision_recall
from .timeline import plot_timeline
from .training_curve import plot_training_curve, read_metrics_jsonl

__all__ = [
    "load_metrics",
    "plot_class_ap",
    "plot_error_breakdown",
    "plot_pr_curves",
    "plot_timeline",
    "plot_training_curve",
    "precision_recall",
    "read_metrics_jsonl",
]
