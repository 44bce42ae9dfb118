"""External video-level classification-score fusion (docs/model.md §5.3), ActivityNet/HACS style.

The model's segments are kept (its own class prediction is discarded); each of the top ``num_pred`` segments is
duplicated for the ``topk`` best classes of an external video classifier, with score
``sqrt(p_class * p_segment)``. Segment times are passed through unchanged (whatever unit, usually seconds).

External score files (``{"results": {video_id: [s_1, ..., s_K]}}`` or ``{video_id: [[s_1, ..., s_K]]}``, the
class index being the evaluator's label id) are read by :mod:`rdfa_s6.formats.scores`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..data.paths import under_root
from ..errors import DataError
from ..formats.jsonfile import where
from ..formats.scores import WHAT, load_external_scores, score_array

log = logging.getLogger(__name__)

PathLike = Union[str, Path]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def fuse_scores(segments, scores, class_scores, *, num_pred: int = 200, topk: int = 2) -> Tuple[Tensor, Tensor, Tensor]:
    """Fuse one video's detections with its external class scores.

    Args:
        segments: ``[N, 2]`` (start, end), any unit; scores: ``[N]`` segment scores in [0, 1].
        class_scores: ``[K]`` external scores; softmax-ed when any lies outside [0, 1].
        num_pred: segments kept, by decreasing score (ties: input order).
        topk: classes kept, by decreasing external score (ties: lower class id); fewer if ``K < topk``.

    Returns:
        ``segments [k*n, 2]``, ``scores [k*n]`` (``sqrt(p_class * p_segment)``), ``labels [k*n]`` long, class-major:
        all ``n`` segments for the best class, then for the second, ...
    """
    segs = torch.as_tensor(segments).detach().cpu().reshape(-1, 2)
    seg_scores = torch.as_tensor(scores).detach().cpu().reshape(-1)
    if segs.shape[0] != seg_scores.shape[0]:
        raise ValueError(f"segments {tuple(segs.shape)} and scores {tuple(seg_scores.shape)} disagree")
    p_cls = np.asarray(class_scores, dtype=np.float64).reshape(-1)
    if p_cls.size == 0:
        raise ValueError("class_scores is empty")
    if p_cls.max() > 1.0 or p_cls.min() < 0.0:
        log.debug("external class scores outside [0, 1]: applying softmax")
        p_cls = _softmax(p_cls)
    order = torch.argsort(seg_scores, descending=True, stable=True)[:num_pred]
    segs, seg_scores = segs[order], seg_scores[order]
    cls_order = np.argsort(-p_cls, kind="stable")[:topk]
    p_top = torch.from_numpy(p_cls[cls_order])
    fused = torch.sqrt(p_top[:, None] * seg_scores.to(torch.float64)[None, :]).flatten()
    n, k = segs.shape[0], len(cls_order)
    labels = torch.from_numpy(cls_order.astype(np.int64)).repeat_interleave(n)
    return segs.repeat(k, 1), fused.to(seg_scores.dtype), labels


def fuse_video(video_id: str, segments, scores, external: Mapping[str, np.ndarray], *,
               source: PathLike = "external scores", num_pred: int = 200,
               topk: int = 2) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`fuse_scores` with the scores of ``video_id`` looked up in ``external`` (as returned by
    :func:`load_external_scores`); ``source`` names the file in the DataError raised for a missing video."""
    at = where(WHAT, str(source), video_id)
    if video_id not in external:
        raise DataError(f"{at}: no scores for this video")
    class_scores = score_array(external[video_id], at)
    return fuse_scores(segments, scores, class_scores, num_pred=num_pred, topk=topk)


def external_scores_for(given: Optional[PathLike], configured: Optional[str],
                        data_root: Optional[PathLike]) -> Optional[Dict[str, np.ndarray]]:
    """The external scores an inference run fuses with: the file ``given`` (e.g. ``--ext-scores``), else the
    config's ``infer.ext_score_file`` (relative paths under ``data_root`` when given, else the working
    directory), else None. A configured file that is not there is a DataError that says how to proceed."""
    if given is not None:
        return load_external_scores(given)
    if not configured:
        return None
    path = under_root(configured, data_root)
    if not path.is_file():
        raise DataError(f"the model's config names the external score file {configured!r} (infer.ext_score_file), "
                        f"not found at {path}: pass --data-root DIR, --ext-scores FILE, or --no-ext-scores")
    return load_external_scores(path)
