"""The selection loops of :mod:`rdfa_s6.infer.nms`, in float32 NumPy with ``nms_cpu.cpp``'s arithmetic.

All classes run at once on one flat array (classes one after the other, per-class reductions with
``ufunc.reduceat``), one loop iteration per pick; iterations stop after ``max_seg_num`` picks, which gives the
same first ``max_seg_num`` picks as running to the end. This fast path does not track the C++ working order,
which only matters when the maximum is tied; a class that meets a tie is re-run with the exact order-tracking
loop (:func:`soft_nms_exact`). The loops use NumPy rather than torch: torch's ``exp`` splits even small arrays
across its thread pool, which costs milliseconds per call on a busy machine.
"""
from __future__ import annotations

from typing import Callable, Tuple, Union

import numpy as np

#: a float32 array or one float32 element of one (the picked segment of the exact loop)
Float32 = Union[np.ndarray, np.float32]
#: per-pick update: ``(iou_to_pick [n], key [n]) -> removed [n] bool``; may decay ``key`` in place
Update = Callable[[np.ndarray, np.ndarray], np.ndarray]
_EPS = 1e-6
_F = np.float32


def pick_iou(px1: Float32, px2: Float32, parea: Float32,
             x1: np.ndarray, x2: np.ndarray, area: np.ndarray) -> np.ndarray:
    """IoU of picked segment(s) against candidates, in nms_cpu.cpp's float32 operation order."""
    inter = np.maximum(np.minimum(px2, x2) - np.maximum(px1, x1), _F(0.0))
    out: np.ndarray = inter / ((parea + area) - inter)
    return out


def soft_update(method: str, iou_threshold: float, sigma: float, min_score: float) -> Update:
    """Per-pick soft-NMS update: decay the scores ``key`` in place; return the mask of those now ``< min_score``."""
    thr, sig, low = _F(iou_threshold), _F(sigma), _F(min_score)

    def update(ovr: np.ndarray, key: np.ndarray) -> np.ndarray:
        if method == "gaussian":
            key *= np.exp(-(ovr * ovr) / sig)
        else:
            key *= np.where(ovr >= thr, _F(1.0) - ovr, _F(1.0))
        return key < low

    return update


def hard_update(iou_threshold: float) -> Update:
    """Per-pick hard-NMS update: return the mask of candidates with ``IoU >= iou_threshold``."""
    thr = _F(iou_threshold)

    def update(ovr: np.ndarray, key: np.ndarray) -> np.ndarray:
        removed: np.ndarray = ovr >= thr
        return removed

    return update


def greedy(segs: np.ndarray, key: np.ndarray, sizes: np.ndarray, max_picks: int,
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
            removed = update(pick_iou(picked[0], picked[1], picked[2], cols[0], cols[1], cols[2]), key)
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


def soft_nms_exact(segs: np.ndarray, scores: np.ndarray, method: str, iou_threshold: float, sigma: float,
                   min_score: float, max_picks: int) -> Tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of one group (float32 ``segs [n, 2]``, ``scores [n]``) tracking nms_cpu.cpp's working order
    (swaps), so ties resolve as in C++. Returns the picked indices in pick order and their scores at pick time.
    """
    state = np.stack([segs[:, 0], segs[:, 1], scores, (segs[:, 1] - segs[:, 0]) + _F(_EPS)])  # [4, n]
    inds = np.arange(segs.shape[0])
    update = soft_update(method, iou_threshold, sigma, min_score)
    n, i = segs.shape[0], 0
    while i < n and i < max_picks:
        j = i + int(np.argmax(state[2, i:n]))
        state[:, [i, j]] = state[:, [j, i]]
        inds[[i, j]] = inds[[j, i]]
        rest = state[:, i + 1: n]
        keep = ~update(pick_iou(state[0, i], state[1, i], state[3, i], rest[0], rest[1], rest[3]), rest[2])
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
