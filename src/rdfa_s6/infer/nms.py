"""Temporal (1-D) NMS with ActionFormer's semantics (docs/model.md §5.2), vectorised with NumPy, no compiled extension.

Segments are ``[N, 2]`` rows ``(start, end)`` in any unit (the pipeline uses level-0 feature steps, i.e. grid
units, and converts to seconds afterwards); scores ``[N]``; labels ``[N]`` integer class ids. Work is done in
float32 on the CPU, as ActionFormer's ``nms_cpu.cpp`` does, with the same arithmetic:

* ``area = end - start + 1e-6``; ``IoU = inter / ((area_i + area_j) - inter)``, ``inter = max(0, min(e) - max(s))``.
* soft-NMS (``softnms_1d_cpu``) works on the candidates **in input order** (no pre-sort): at step ``i`` it picks
  the first maximum of the remaining scores *in its working order*, swaps it to position ``i``, decays every later
  score (gaussian ``exp(-IoU^2 / sigma)``; linear ``1 - IoU`` when ``IoU >= iou_threshold``) and removes a
  candidate as soon as its score is ``< min_score`` by moving the *last* candidate into its slot. Hence ties are
  broken by a working order that depends on earlier swaps; the pick itself is never tested against ``min_score``.
* hard NMS (``nms_1d_cpu`` + ``NMSop``) first keeps scores ``> min_score`` (when ``min_score > 0``), visits the
  candidates by decreasing score and suppresses later ones with ``IoU >= iou_threshold``.

The selection loops (all classes at once, and the exact tie-breaking loop) are in :mod:`.nms_loops`.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from .nms_loops import greedy, hard_update, soft_nms_exact, soft_update

log = logging.getLogger(__name__)

Result = Tuple[Tensor, Tensor, Tensor]
Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray]
#: an input: a tensor (any device) or anything NumPy reads as an array
Input = Union[Tensor, npt.ArrayLike]
_F = np.float32
_METHODS = ("gaussian", "linear")


def _numpy(x: Input, dtype: npt.DTypeLike) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=dtype))


def _prepare(segments: Input, scores: Input, labels: Input) -> Arrays:
    """Inputs as NumPy ``float32 [N, 2]``, ``float32 [N]``, ``int64 [N]``, checked."""
    segs = _numpy(segments, np.float32).reshape(-1, 2)
    sc, lab = _numpy(scores, np.float32).reshape(-1), _numpy(labels, np.int64).reshape(-1)
    if not segs.shape[0] == sc.shape[0] == lab.shape[0]:
        raise ValueError(f"segments {segs.shape}, scores {sc.shape} and labels {lab.shape} disagree on the "
                         f"number of candidates")
    if not (np.isfinite(segs).all() and np.isfinite(sc).all()):
        raise ValueError("segments and scores must be finite")
    return segs, sc, lab


def _torch(segs: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> Result:
    return (torch.from_numpy(np.ascontiguousarray(segs, dtype=np.float32).reshape(-1, 2)),
            torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)))


def _grouped(labels: np.ndarray, multiclass: bool,
             sort_key: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Candidate indices laid out group after group (ascending label when multiclass), in input order or by
    decreasing ``sort_key`` (stable) within a group, and the group sizes ``[G]``."""
    order = np.arange(labels.shape[0])
    if sort_key is not None:
        order = np.argsort(-sort_key, kind="stable")
    if not multiclass:
        return order, np.array([labels.shape[0]])
    order = order[np.argsort(labels[order], kind="stable")]
    return order, np.unique(labels[order], return_counts=True)[1]


def _check(max_seg_num: int, method: str = "gaussian") -> None:
    if method not in _METHODS:
        raise ValueError(f"soft-NMS method must be one of {_METHODS}, got {method!r}")
    if max_seg_num < 1:
        raise ValueError(f"max_seg_num must be positive, got {max_seg_num}")


def _soft_nms(segs: np.ndarray, sc: np.ndarray, lab: np.ndarray, method: str, sigma: float, iou_threshold: float,
              min_score: float, max_seg_num: int, multiclass: bool) -> Arrays:
    if sc.shape[0] == 0:
        return segs, sc, lab
    order, sizes = _grouped(lab, multiclass)
    group, pos, key, tie = greedy(segs[order], sc[order], sizes, max_seg_num,
                                  soft_update(method, iou_threshold, sigma, min_score))
    if tie.any():
        log.debug("soft-NMS: %d group(s) with tied maxima re-run in exact order", int(tie.sum()))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        parts_pos, parts_key = [], []
        for g in range(sizes.shape[0]):
            if tie[g]:
                members = order[starts[g]: starts[g + 1]]
                local, g_key = soft_nms_exact(segs[members], sc[members], method, iou_threshold, sigma,
                                              min_score, max_seg_num)
                parts_pos.append(local + starts[g])
                parts_key.append(g_key)
            else:
                parts_pos.append(pos[group == g])
                parts_key.append(key[group == g])
        pos, key = np.concatenate(parts_pos), np.concatenate(parts_key)
    idx = order[pos]
    return segs[idx], key, lab[idx]


def _hard_nms(segs: np.ndarray, sc: np.ndarray, lab: np.ndarray, iou_threshold: float, min_score: float,
              max_seg_num: int, multiclass: bool) -> Arrays:
    if min_score > 0:
        keep = sc > _F(min_score)
        segs, sc, lab = segs[keep], sc[keep], lab[keep]
    if sc.shape[0] == 0:
        return segs, sc, lab
    order, sizes = _grouped(lab, multiclass, sort_key=sc)
    # the key is minus the rank: unique and decreasing within a group, so the pick is the first one remaining
    rank = -np.arange(order.shape[0], dtype=np.float32)
    _, pos, _, _ = greedy(segs[order], rank, sizes, max_seg_num, hard_update(iou_threshold))
    idx = order[pos]
    return segs[idx], sc[idx], lab[idx]


def _seg_voting(nms_segs: np.ndarray, all_segs: np.ndarray, all_scores: np.ndarray, thresh: float) -> np.ndarray:
    left = np.maximum(nms_segs[:, None, 0], all_segs[None, :, 0])
    right = np.minimum(nms_segs[:, None, 1], all_segs[None, :, 1])
    inter = np.maximum(right - left, _F(0.0))
    lens = (nms_segs[:, 1] - nms_segs[:, 0])[:, None] + (all_segs[:, 1] - all_segs[:, 0])[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (lens - inter)
        weights = (iou >= _F(thresh)).astype(np.float32) * all_scores[None, :]
        total = weights.sum(axis=1, keepdims=True)
        refined = (weights / total) @ all_segs
    # ActionFormer returns NaN when no candidate votes (a zero-length kept segment has IoU 0/0); keep it as is.
    return np.where(total > 0, refined, nms_segs)


def soft_nms(segments: Input, scores: Input, labels: Input, *, method: str = "gaussian", sigma: float = 0.5,
             iou_threshold: float = 0.1, min_score: float = 0.001, max_seg_num: int = 200,
             multiclass: bool = True) -> Result:
    """Soft-NMS as ActionFormer's ``SoftNMSop`` applied per class (``multiclass``) or to all candidates.

    Args: ``segments [N, 2]``, ``scores [N]``, ``labels [N]`` (tensors or arrays); ``iou_threshold`` only matters
    for ``linear``. Returns ``(segments [M, 2] float32, scores [M] float32 (decayed, at pick time), labels [M]
    long)``: the groups in ascending label order, each in pick order and capped at ``max_seg_num``.
    """
    _check(max_seg_num, method)
    return _torch(*_soft_nms(*_prepare(segments, scores, labels), method, sigma, iou_threshold, min_score,
                             max_seg_num, multiclass))


def hard_nms(segments: Input, scores: Input, labels: Input, *, iou_threshold: float = 0.1, min_score: float = 0.001,
             max_seg_num: int = 200, multiclass: bool = True) -> Result:
    """Greedy NMS as ActionFormer's ``NMSop`` per class (``multiclass``) or over all candidates.

    Candidates with score ``<= min_score`` are dropped first (when ``min_score > 0``); each group is visited by
    decreasing score (ties: input order) and a candidate with ``IoU >= iou_threshold`` to a kept one is dropped.
    Returns ``(segments [M, 2], scores [M], labels [M])``: groups in ascending label order, each sorted by score
    and capped at ``max_seg_num``.
    """
    _check(max_seg_num)
    return _torch(*_hard_nms(*_prepare(segments, scores, labels), iou_threshold, min_score, max_seg_num,
                             multiclass))


def seg_voting(nms_segs: Input, all_segs: Input, all_scores: Input, voting_thresh: float) -> Tensor:
    """Segment voting: each kept segment becomes the score-weighted mean of all candidates with
    ``IoU >= voting_thresh`` to it (IoU without epsilon, as ActionFormer's ``seg_voting``; its unused
    ``score_offset`` is not reproduced). A segment nobody votes for (ActionFormer: NaN) is returned unchanged.
    ``nms_segs [M, 2]``, ``all_segs [N, 2]``, ``all_scores [N]`` -> ``[M, 2]`` float32, same unit as the input.
    """
    nms = _numpy(nms_segs, np.float32).reshape(-1, 2)
    out = _seg_voting(nms, _numpy(all_segs, np.float32).reshape(-1, 2), _numpy(all_scores, np.float32).reshape(-1),
                      voting_thresh)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def batched_nms(segments: Input, scores: Input, labels: Input, *, iou_threshold: float = 0.1, min_score: float = 0.001,
                max_seg_num: int = 200, use_soft_nms: bool = True, multiclass: bool = True, sigma: float = 0.5,
                voting_thresh: float = 0.0, method: str = "gaussian") -> Result:
    """ActionFormer's ``batched_nms``: NMS per class (or class-agnostic), each group capped at ``max_seg_num``,
    merged, sorted by decreasing score (stable: ties keep class-then-pick order) and cut to ``max_seg_num``.

    Soft-NMS uses ``method`` (ActionFormer always passes gaussian). Segment voting against *all* input
    candidates is applied only when class-agnostic and ``voting_thresh > 0``.
    Returns ``(segments [M, 2] float32, scores [M] float32, labels [M] long)`` with ``M <= max_seg_num``.
    """
    _check(max_seg_num, method)
    segs, sc, lab = _prepare(segments, scores, labels)
    if use_soft_nms:
        out_segs, out_scores, out_labels = _soft_nms(segs, sc, lab, method, sigma, iou_threshold, min_score,
                                                     max_seg_num, multiclass)
    else:
        out_segs, out_scores, out_labels = _hard_nms(segs, sc, lab, iou_threshold, min_score, max_seg_num,
                                                     multiclass)
    if not multiclass and voting_thresh > 0 and out_segs.shape[0] > 0:
        out_segs = _seg_voting(out_segs, segs, sc, voting_thresh)
    order = np.argsort(-out_scores, kind="stable")[:max_seg_num]
    return _torch(out_segs[order], out_scores[order], out_labels[order])
