"""Temporal action detection evaluation with the ActivityNet protocol (mAP at tIoU thresholds).

``evaluate(results, annotations, subset, tiou_thresholds)`` gives mAP per threshold, per-class AP, average
recall and a false-positive breakdown; it matches ActivityNet's ``Evaluation/eval_detection.py``.
"""
from __future__ import annotations

from .detection import DetectionResult, average_precision, interpolated_ap, segment_iou
from .false_positives import false_positive_breakdown
from .groundtruth import GT_POLICIES, GroundTruth, load_ground_truth
from .predictions import Aligned, Predictions, align_predictions, load_predictions
from .recall import RecallResult, average_recall
from .report import ANET_TIOUS, THUMOS_TIOUS, evaluate, format_table

__all__ = [
    "ANET_TIOUS",
    "Aligned",
    "DetectionResult",
    "GT_POLICIES",
    "GroundTruth",
    "Predictions",
    "RecallResult",
    "THUMOS_TIOUS",
    "align_predictions",
    "average_precision",
    "average_recall",
    "evaluate",
    "false_positive_breakdown",
    "format_table",
    "interpolated_ap",
    "load_ground_truth",
    "load_predictions",
    "segment_iou",
]
