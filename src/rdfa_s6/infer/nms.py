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

All classes run at once on one flat array (classes one after the other, per-class reductions with
``ufunc.reduceat``), one loop iteration per pick; iterations stop after ``max_seg_num`` picks, which gives the
same first ``max_seg_num`` picks as running to the end. This fast path does not track the C++ working order,
which only matters when the maximum is tied; a class that meets a tie is re-run with the exact order-tracking
loop (``_soft_nms_exact``). The loops use NumPy rather than torch: torch's ``exp`` splits even small arrays
across its thread pool, which costs milliseconds per call on a busy machine.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

log = logging.getLogger(__name__)

Result = Tuple[Tensor, Tensor, Tensor]
Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray]
#: an input: a tensor (any device) or anything NumPy reads as an array
Input = Union[Tensor, npt.ArrayLike]
#: a float32 array or one float32 element of one (the picked segment of the exact loop)
Float32 = Union[np.ndarray, np.float32]
#: per-pick update: ``(iou_to_pick [n], key [n]) -> removed [n] bool``; may decay ``key`` in place
Update = Callable[[np.ndarray, np.ndarray], np.ndarray]
_EPS = 1e-6
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


def _iou(px1: Float32, px2: Float32, parea: Float32, x1: np.ndarray, x2: np.ndarray, area: np.ndarray) -> np.ndarray:
    """IoU of picked segment(s) against candidates, in nms_cpu.cpp's float32 operation order."""
    inter = np.maximum(np.minimum(px2, x2) - np.maximum(px1, x1), _F(0.0))
    iou: np.ndarray = inter / ((parea + area) - inter)
    return iou


def _soft_update(method: str, iou_threshold: float, sigma: float, min_score: float) -> Update:
    """Per-pick soft-NMS update: decay the scores ``key`` in place; return the mask of those now ``< min_score``."""
    thr, sig, low = _F(iou_threshold), _F(sigma), _F(min_score)

    def update(ovr: np.ndarray, key: np.ndarray) -> np.ndarray:
        if method == "gaussian":
            key *= np.exp(-(ovr * ovr) / sig)
        else:
            key *= np.where(ovr >= thr, _F(1.0) - ovr, _F(1.0))
        return key < low

    return update


def _hard_update(iou_threshold: float) -> Update:
    """Per-pick hard-NMS update: return the mask of candidates with ``IoU >= iou_threshold``."""
    thr = _F(iou_threshold)

    def update(ovr: np.ndarray, key: np.ndarray) -> np.ndarray:
        removed: np.ndarray = ovr >= thr
        return removed

    return update


def _greedy(segs: np.ndarray, key: np.ndarray, sizes: np.ndarray, max_picks: int,
            update: Update) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy selection run on all groups at once, one iteration per pick.

    ``segs [N, 2]`` and ``key [N]`` (float32) hold the groups one after the other, ``sizes [G]`` their (positive)
    lengths. Each iteration every group picks its remaining candidate of highest key, then
    ``update(iou_to_pick, key)`` may change keys in place and returns the candidates to remove. Returns per pick
    its group, flat position and key, in pick order within each group, and per group whether a tied maximum was
    met (the pick is then the first maximum in flat order).
    """
    n, ninf = key.shape[0], _F(-np.inf)
    cols = np.empty((3, n), dtype=np.float32)  # x1, x2, area = x2 - x1 + 1e-6 as nms_cpu.cpp
    cols[0], cols[1] = segs[:, 0], segs[:, 1]
    cols[2] = (cols[1] - cols[0]) + _F(_EPS)
    key, orig, counts = key.copy(), np.arange(n), sizes.copy()  # removed candidates have key -inf (or NaN)
    ids = np.arange(sizes.shape[0])  # original group of each current group
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tie = np.zeros(sizes.shape[0], dtype=bool)
    out_group, out_pos, out_key = [], [], []
    with np.errstate(invalid="ignore"):  # removed key (-inf) times a zero weight: NaN, still removed
        for it in range(max_picks):
            gmax = np.fmax.reduceat(key, starts)
            active = gmax > ninf
            num_active = int(np.count_nonzero(active))
            if num_active == 0:
                break
            sel = np.flatnonzero((key == np.repeat(gmax, counts)) & (key > ninf))
            if sel.shape[0] != num_active:  # tied maxima: keep the first of each group, flag the group
                gid = np.repeat(np.arange(counts.shape[0]), counts)
                groups, first, num = np.unique(gid[sel], return_index=True, return_counts=True)
                tie[ids[groups[num > 1]]] = True
                sel = sel[first]
            out_group.append(ids[active])
            out_pos.append(orig[sel])
            out_key.append(key[sel])
            key[sel] = ninf
            picked = np.zeros((3, counts.shape[0]), dtype=np.float32)
            picked[:, active] = cols[:, sel]
            picked = np.repeat(picked, counts, axis=1)
            removed = update(_iou(picked[0], picked[1], picked[2], cols[0], cols[1], cols[2]), key)
            key[removed] = ninf
            if it % 8 == 7:  # drop removed candidates and finished groups once they are the majority
                keep = key > ninf
                if 2 * int(np.count_nonzero(keep)) < key.shape[0]:
                    gid = np.repeat(np.arange(counts.shape[0]), counts)[keep]
                    cols, key, orig = cols[:, keep], key[keep], orig[keep]
                    present, counts = np.unique(gid, return_counts=True)
                    if present.shape[0] == 0:
                        break
                    ids, starts = ids[present], np.concatenate([[0], np.cumsum(counts)[:-1]])
    if not out_group:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32), tie
    group, pos, key = np.concatenate(out_group), np.concatenate(out_pos), np.concatenate(out_key)
    order = np.argsort(group, kind="stable")  # picks were recorded iteration by iteration
    return group[order], pos[order], key[order], tie


def _soft_nms_exact(segs: np.ndarray, scores: np.ndarray, method: str, iou_threshold: float, sigma: float,
                    min_score: float, max_picks: int) -> Tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of one group (float32 ``segs [n, 2]``, ``scores [n]``) tracking nms_cpu.cpp's working order
    (swaps), so ties resolve as in C++. Returns the picked indices in pick order and their scores at pick time.
    """
    state = np.stack([segs[:, 0], segs[:, 1], scores, (segs[:, 1] - segs[:, 0]) + _F(_EPS)])  # [4, n]
    inds = np.arange(segs.shape[0])
    update = _soft_update(method, iou_threshold, sigma, min_score)
    n, i = segs.shape[0], 0
    while i < n and i < max_picks:
        j = i + int(np.argmax(state[2, i:n]))
        state[:, [i, j]] = state[:, [j, i]]
        inds[[i, j]] = inds[[j, i]]
        rest = state[:, i + 1: n]
        keep = ~update(_iou(state[0, i], state[1, i], state[3, i], rest[0], rest[1], rest[3]), rest[2])
        n_keep = int(keep.sum())
        # C++ fills each removed slot (left to right) with the current last candidate, i.e. the first n_keep
        # slots end up holding their own survivors plus the survivors beyond n_keep taken from the right.
        holes = np.flatnonzero(~keep[:n_keep])
        if holes.size:
            movers = (np.flatnonzero(keep[n_keep:]) + n_keep)[::-1]
            rest[:, holes] = rest[:, movers]
            inds[i + 1 + holes] = inds[i + 1 + movers]
        n, i = i + 1 + n_keep, i + 1
    return inds[:i].copy(), state[2, :i].copy()


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
    group, pos, key, tie = _greedy(segs[order], sc[order], sizes, max_seg_num,
                                   _soft_update(method, iou_threshold, sigma, min_score))
    if tie.any():
        log.debug("soft-NMS: %d group(s) with tied maxima re-run in exact order", int(tie.sum()))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        parts_pos, parts_key = [], []
        for g in range(sizes.shape[0]):
            if tie[g]:
                members = order[starts[g]: starts[g + 1]]
                local, g_key = _soft_nms_exact(segs[members], sc[members], method, iou_threshold, sigma,
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
    _, pos, _, _ = _greedy(segs[order], rank, sizes, max_seg_num, _hard_update(iou_threshold))
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
