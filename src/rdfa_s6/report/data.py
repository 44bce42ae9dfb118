"""The data of the HTML viewer: detections (and ground truth) per video as compact arrays, per-video AP and
the evaluator's metrics, as one JSON-able dict.

Times are stored as integer milliseconds and scores as integers in units of 1e-4 (``SCORE_SCALE``), labels as
indices into ``classes``: a THUMOS-14-sized result set (212 videos x 200 detections) stays under 1 MB.
Everything numeric that the page shows about the evaluation comes from :func:`rdfa_s6.eval.evaluate`, the
function behind ``rdfa-s6 evaluate --json``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote

import numpy as np

from ..errors import DataError
from ..eval.detection import average_precision
from ..eval.groundtruth import GroundTruth
from ..eval.predictions import Aligned, Predictions
from ..formats.annotations import video_durations
from ..messages import shown
from ..video.decode import VIDEO_EXTENSIONS
from ..viz.colors import class_colors

log = logging.getLogger(__name__)

#: scores are stored as round(score * SCORE_SCALE)
SCORE_SCALE = 10000
#: the largest time (seconds, either sign) the page can hold: times are stored as integer milliseconds, which
#: JavaScript holds exactly up to 2**53 (9.007e15 ms); a file with a longer time (about 31,700 years) is
#: refused, one line naming the video, rather than drawn wrong
MAX_TIME_S = 1e12
#: scores beyond +-SCORE_LIMIT are stored as +-SCORE_LIMIT (still exact integers in JavaScript after scaling)
#: after the detections are sorted by their true score, so the best detection stays first; a warning says so
SCORE_LIMIT = 1e9
#: evaluate() keys the page shows
METRIC_KEYS = ("subset", "gt_policy", "tiou_thresholds", "mAP", "average_mAP", "per_class_AP", "errors",
               "num_videos", "num_gt", "num_predictions", "warnings", "computed_with")

PathLike = Union[str, Path]


def _check_times(values: np.ndarray, what: str, video: str) -> None:
    bad = ~(np.abs(values) <= MAX_TIME_S)
    if bad.any():
        t = float(values[bad.nonzero()[0][0]])
        raise DataError(f"{what}: video '{shown(video)}': the time {t:g} s is beyond what the viewer can draw "
                        f"(|time| <= {MAX_TIME_S:g} s, times are stored as integer milliseconds)")


def _ms(seconds: np.ndarray) -> np.ndarray:
    return np.rint(seconds * 1000.0)


def per_video_ap(aligned: Aligned, gt: GroundTruth, thresholds: Sequence[float]) -> List[Optional[float]]:
    """AP of each video of ``gt.videos`` on its own: the mean over the classes of the video's ground truth of
    the AP at each threshold (the evaluator's matching and interpolation), averaged over ``thresholds``.

    Detections of classes absent from the video's ground truth do not change it (AP is per class, as in the
    dataset-level mAP). Returns one float per video, None for a video without ground-truth events.
    """
    out: List[Optional[float]] = [None] * len(gt.videos)
    for v in np.unique(gt.video).tolist():
        gmask = gt.video == v
        classes = np.unique(gt.label[gmask])
        remap = np.full(max(len(gt.labels), 1), -1, dtype=np.int64)
        remap[classes] = np.arange(classes.shape[0])
        sub_gt = GroundTruth(videos=[gt.videos[v]], labels=[gt.labels[c] for c in classes.tolist()],
                             video=np.zeros(int(gmask.sum()), dtype=np.int64), label=remap[gt.label[gmask]],
                             start=gt.start[gmask], end=gt.end[gmask])
        pmask = aligned.video == v
        plabel = remap[aligned.label[pmask]]
        keep = plabel >= 0
        sub = Aligned(video=np.zeros(int(keep.sum()), dtype=np.int64), label=plabel[keep],
                      start=aligned.start[pmask][keep], end=aligned.end[pmask][keep], score=aligned.score[pmask][keep])
        out[v] = average_precision(sub, sub_gt, thresholds).average_mAP
    return out


def durations(gt_path_or_dict: Union[PathLike, Mapping[str, Any]]) -> Dict[str, float]:
    """Each video's ``duration`` (seconds) where the annotation file gives a positive one."""
    return video_durations(gt_path_or_dict, "ground truth")


def find_videos(video_ids: Sequence[str], folder: PathLike) -> Dict[str, Path]:
    """``{video_id: file}`` for the ids that have a file ``folder/<id><ext>`` (``VIDEO_EXTENSIONS``, first
    match wins; also looked up one level down, e.g. ``folder/test/<id>.mp4``)."""
    folder = Path(folder)
    by_stem: Dict[str, Path] = {}
    candidates = sorted(folder.glob("*")) + sorted(folder.glob("*/*"))
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    for path in candidates:
        ext = path.suffix.lower()
        if ext in rank and path.is_file():
            old = by_stem.get(path.stem)
            if old is None or rank[ext] < rank[old.suffix.lower()]:
                by_stem[path.stem] = path
    return {vid: by_stem[vid] for vid in video_ids if vid in by_stem}


def relative_url(target: PathLike, html_path: PathLike) -> str:
    """URL of ``target`` relative to the folder of ``html_path`` (percent-encoded, forward slashes); an
    absolute ``file:`` URL where no relative path exists (another drive on Windows)."""
    try:
        rel = os.path.relpath(Path(target).resolve(), Path(html_path).resolve().parent)
    except ValueError:
        return Path(target).resolve().as_uri()
    return quote(Path(rel).as_posix())


def build_view_data(
    preds: Predictions,
    gt: Optional[GroundTruth] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    video_durations: Optional[Mapping[str, float]] = None,
    video_urls: Optional[Mapping[str, str]] = None,
    title: str = "rdfa-s6 detections",
    threshold: float = 0.1,
    aligned: Optional[Aligned] = None,
) -> Dict[str, Any]:
    """The JSON-able dict the viewer reads.

    ``videos``: one entry per video: the ground-truth split's videos (all of them) then videos that only the
    predictions name (``ingt`` false), each with ``det`` (flat [start_ms, end_ms, class, score*1e4] per
    detection, by decreasing score), ``gt`` (flat [start_ms, end_ms, class] per event), ``dur`` (seconds or
    None: the page then uses the last segment end), ``src`` (relative URL of the video file or None) and
    ``ap`` (per-video AP averaged over the metrics' thresholds, None without ground truth).
    ``classes``: ground-truth classes in the evaluator's order, then other predicted labels sorted;
    ``colors``: each class's ``#rrggbb`` colour (:func:`rdfa_s6.viz.colors.class_colors`: a function of the class
    name, the same as in the figures of :mod:`rdfa_s6.viz`).
    ``metrics``: the :func:`rdfa_s6.eval.evaluate` keys in ``METRIC_KEYS`` (None without ground truth).
    ``aligned``: the predictions aligned to ``gt``; computed when not given.
    Every number is finite and exact in JavaScript: a time or duration beyond :data:`MAX_TIME_S` is a DataError
    naming the video, scores beyond :data:`SCORE_LIMIT` are clipped to it (after sorting, with a warning).
    """
    id_to_name: Dict[int, str] = {}
    classes: List[str] = []
    if gt is not None:
        classes = list(gt.labels)
        id_to_name = {lid: lab for lab, lid in gt.label_ids.items()}
    names = [id_to_name.get(lab, str(lab)) if isinstance(lab, int) else lab for lab in preds.labels]
    known = set(classes)
    classes += sorted({n for n in names if n not in known})
    cindex = {c: i for i, c in enumerate(classes)}
    label = np.fromiter((cindex[n] for n in names), dtype=np.int64, count=len(names))

    video_ids = list(gt.videos) if gt is not None else []
    in_gt = set(video_ids)
    video_ids += [v for v in preds.videos if v not in in_gt]
    ap: List[Optional[float]] = []
    thresholds = list(metrics["tiou_thresholds"]) if metrics is not None else None
    if gt is not None and thresholds is not None:
        if aligned is None:
            from ..eval.predictions import align_predictions

            aligned, _ = align_predictions(preds, gt)
        ap = per_video_ap(aligned, gt, thresholds)

    order_all = np.argsort(preds.video, kind="mergesort")
    bounds = np.searchsorted(preds.video[order_all], np.arange(len(preds.videos) + 1))
    pidx = {v: i for i, v in enumerate(preds.videos)}
    gidx = {v: i for i, v in enumerate(gt.videos)} if gt is not None else {}
    videos: List[Dict[str, Any]] = []
    clipped: List[str] = []
    for vid in video_ids:
        entry: Dict[str, Any] = {"id": vid, "ingt": vid in in_gt}
        det: List[int] = []
        if vid in pidx:
            rows = order_all[bounds[pidx[vid]]:bounds[pidx[vid] + 1]]
            rows = rows[np.argsort(-preds.score[rows], kind="mergesort")]
            _check_times(preds.start[rows], f"predictions {shown(preds.source)}", vid)
            _check_times(preds.end[rows], f"predictions {shown(preds.source)}", vid)
            score = preds.score[rows]
            if (np.abs(score) > SCORE_LIMIT).any():
                clipped.append(vid)
                score = np.clip(score, -SCORE_LIMIT, SCORE_LIMIT)
            cols = np.stack([_ms(preds.start[rows]), _ms(preds.end[rows]), label[rows],
                             np.rint(score * SCORE_SCALE)], axis=1)
            det = cols.astype(np.int64).reshape(-1).tolist()
        entry["det"] = det
        gflat: List[int] = []
        if gt is not None and vid in gidx:
            g = (gt.video == gidx[vid]).nonzero()[0]
            _check_times(gt.start[g], "ground truth", vid)
            _check_times(gt.end[g], "ground truth", vid)
            gcols = np.stack([_ms(gt.start[g]), _ms(gt.end[g]), gt.label[g]], axis=1)
            gflat = gcols.astype(np.int64).reshape(-1).tolist()
        entry["gt"] = gflat
        dur = (video_durations or {}).get(vid)
        if dur is not None:
            _check_times(np.array([dur], dtype=np.float64), "ground truth, field 'duration'", vid)
        entry["dur"] = dur
        entry["src"] = (video_urls or {}).get(vid)
        entry["ap"] = ap[gidx[vid]] if ap and vid in gidx else None
        videos.append(entry)
    if clipped:
        log.warning("scores beyond +-%g are shown as +-%g in the viewer (the order of the detections is kept): "
                    "%d video(s), the first '%s'", SCORE_LIMIT, SCORE_LIMIT, len(clipped), shown(clipped[0]))
    colors = class_colors(classes)
    return {
        "version": 1,
        "title": title,
        "scoreScale": SCORE_SCALE,
        "threshold": float(threshold),
        "classes": classes,
        "colors": [colors[c] for c in classes],
        "videos": videos,
        "numDetections": len(preds),
        "metrics": {k: metrics[k] for k in METRIC_KEYS if k in metrics} if metrics is not None else None,
    }
