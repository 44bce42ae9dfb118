"""One call from a results file (and optional annotations and video folder) to the viewer page."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..messages import plural, shown
from .data import build_view_data, durations, find_videos, relative_url
from .html import write_html

log = logging.getLogger(__name__)

Source = Union[str, Path, Mapping[str, Any]]


@dataclass
class ReportInfo:
    """What :func:`write_report` wrote: ``path``, ``size`` (bytes), ``num_videos``, ``num_detections``,
    ``num_linked`` (videos with a playable file linked), ``metrics`` (the evaluate() dict, or None)."""

    path: Path
    size: int
    num_videos: int
    num_detections: int
    num_linked: int
    metrics: Optional[dict]


def write_report(
    pred: Source,
    out: Union[str, Path],
    gt: Optional[Source] = None,
    subset: str = "test",
    tiou_thresholds: Optional[Sequence[float]] = None,
    gt_policy: str = "official",
    error_tiou: float = 0.5,
    videos_dir: Optional[Union[str, Path]] = None,
    title: Optional[str] = None,
    threshold: float = 0.1,
) -> ReportInfo:
    """Write the self-contained viewer page for the detections ``pred`` (ActivityNet results JSON, path or
    dict) to ``out``.

    With ``gt`` (annotations, path or dict) the page also shows the ground truth of ``subset`` and the
    numbers of :func:`rdfa_s6.eval.evaluate` with the same arguments (strict: detections none of which can
    match are an error). With ``videos_dir``, ``<videos_dir>/<video_id>.<ext>`` is linked (relative to
    ``out``, not embedded) and played above the timeline. ``threshold``: initial score threshold of the page.
    """
    from ..eval import align_predictions, evaluate, load_ground_truth, load_predictions
    from ..eval.report import THUMOS_TIOUS

    out = Path(out)
    if title is None:
        title = f"{Path(pred).name if isinstance(pred, (str, Path)) else 'detections'} - rdfa-s6"
    # files are read by path (not parsed once here and passed as dicts) so that errors name them
    preds = load_predictions(pred)
    ground = metrics = aligned = None
    video_durations: dict = {}
    if gt is not None:
        metrics = evaluate(pred, gt, subset=subset, tiou_thresholds=tiou_thresholds or THUMOS_TIOUS,
                           gt_policy=gt_policy, error_tiou=error_tiou, strict=True)
        ground = load_ground_truth(gt, subset=subset, gt_policy=gt_policy)
        aligned, _ = align_predictions(preds, ground, log_warnings=False)  # evaluate() has logged them once
        video_durations = durations(gt)
    ids = list(ground.videos if ground is not None else []) + list(preds.videos)
    urls = {}
    if videos_dir is not None:
        urls = {vid: relative_url(path, out) for vid, path in find_videos(ids, videos_dir).items()}
    data = build_view_data(preds, ground, metrics, video_durations, urls, title=title, threshold=threshold,
                           aligned=aligned)
    size = write_html(out, data)
    log.info("viewer %s: %d bytes, %s", shown(out), size, plural(len(data["videos"]), "video"))
    return ReportInfo(out, size, len(data["videos"]), len(preds), len(urls), metrics)
