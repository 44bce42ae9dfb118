"""NMS against a brute-force, loop-by-loop model of ActionFormer's nms_cpu.cpp / nms.py written here.

The model below works on one float32 scalar at a time (numpy.float32), in the C++ operation order, with the
C++ data movement (swap the maximum to the front, move the last candidate into a removed slot), so it also
fixes how ties are broken. Voting is computed with float32 IoU (as ActionFormer does) and float64 averages.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rdfa_s6.infer.nms import batched_nms, hard_nms, seg_voting, soft_nms
from rdfa_s6.infer.nms_loops import soft_nms_exact

F = np.float32


def _iou32(a1, a2, area_a, b1, b2, area_b):
    inter = max(F(0.0), F(min(a2, b2) - max(a1, b1)))
    return F(inter / F(F(area_a + area_b) - inter))


def ref_softnms(segs, scores, method, iou_threshold, sigma, min_score):
    """One group. Returns (original indices, [(start, end, score)]) in pick order, all survivors."""
    x1 = [F(s[0]) for s in segs]
    x2 = [F(s[1]) for s in segs]
    sc = [F(v) for v in scores]
    area = [F(F(b - a) + F(1e-6)) for a, b in zip(x1, x2)]
    ind = list(range(len(segs)))
    cols = [x1, x2, sc, area, ind]
    n, i, dets = len(segs), 0, []
    while i < n:
        best = i
        for p in range(i + 1, n):
            if sc[best] < sc[p]:
                best = p
        for c in cols:
            c[i], c[best] = c[best], c[i]
        dets.append((x1[i], x2[i], sc[i]))
        p = i + 1
        while p < n:
            ovr = _iou32(x1[i], x2[i], area[i], x1[p], x2[p], area[p])
            if method == "gaussian":
                w = F(math.exp(float(F(-(ovr * ovr)) / F(sigma))))
            else:
                w = F(F(1.0) - ovr) if ovr >= F(iou_threshold) else F(1.0)
            sc[p] = F(sc[p] * w)
            if sc[p] < F(min_score):
                for c in cols:
                    c[p] = c[n - 1]
                n -= 1
                continue
            p += 1
        i += 1
    return ind[:n], dets


def ref_hardnms(segs, scores, iou_threshold, min_score):
    """One group. Returns original indices kept, by decreasing score (ties: input order)."""
    idx = [k for k in range(len(segs)) if not min_score > 0 or F(scores[k]) > F(min_score)]
    order = sorted(idx, key=lambda k: -F(scores[k]))
    x1 = {k: F(segs[k][0]) for k in order}
    x2 = {k: F(segs[k][1]) for k in order}
    area = {k: F(F(x2[k] - x1[k]) + F(1e-6)) for k in order}
    select = [True] * len(order)
    for a, i in enumerate(order):
        if not select[a]:
            continue
        for b in range(a + 1, len(order)):
            j = order[b]
            if select[b] and _iou32(x1[i], x2[i], area[i], x1[j], x2[j], area[j]) >= F(iou_threshold):
                select[b] = False
    return [k for a, k in enumerate(order) if select[a]]


def ref_voting(kept, segs, scores, thresh):
    out = []
    for k1, k2 in kept:
        wsum, acc1, acc2 = 0.0, 0.0, 0.0
        for (s1, s2), w in zip(segs, scores):
            a, b = F(k1), F(k2)
            inter = max(F(0.0), F(min(b, F(s2)) - max(a, F(s1))))
            total = F(F(F(b - a) + F(F(s2) - F(s1))) - inter)
            iou = inter / total if total != 0 else float("nan")
            if iou >= thresh:
                wsum += float(F(w))
                acc1 += float(F(w)) * float(F(s1))
                acc2 += float(F(w)) * float(F(s2))
        out.append((acc1 / wsum, acc2 / wsum) if wsum > 0 else (float(k1), float(k2)))
    return out


def ref_batched(segs, scores, labels, *, soft, method, iou_threshold, sigma, min_score, max_seg_num,
                multiclass, voting_thresh):
    groups = sorted(set(labels)) if multiclass else [None]
    rows = []  # (start, end, score, label)
    for g in groups:
        members = [k for k in range(len(segs)) if g is None or labels[k] == g]
        sub_segs = [segs[k] for k in members]
        sub_scores = [scores[k] for k in members]
        if soft:
            local, dets = ref_softnms(sub_segs, sub_scores, method, iou_threshold, sigma, min_score)
            rows += [(d[0], d[1], d[2], labels[members[k]]) for k, d in zip(local, dets)][:max_seg_num]
        else:
            local = ref_hardnms(sub_segs, sub_scores, iou_threshold, min_score)[:max_seg_num]
            rows += [(F(sub_segs[k][0]), F(sub_segs[k][1]), F(sub_scores[k]), labels[members[k]]) for k in local]
    if not multiclass and voting_thresh > 0 and rows:
        voted = ref_voting([(r[0], r[1]) for r in rows], segs, scores, voting_thresh)
        rows = [(v[0], v[1], r[2], r[3]) for v, r in zip(voted, rows)]
    rows = sorted(rows, key=lambda r: -r[2])[:max_seg_num]  # Python's sort is stable
    return rows


def check(segs, scores, labels, **kw):
    soft = kw.pop("soft")
    got_segs, got_scores, got_labels = batched_nms(
        torch.tensor(segs, dtype=torch.float32).reshape(-1, 2), torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels, dtype=torch.long), use_soft_nms=soft, **kw)
    rows = ref_batched(segs, scores, labels, soft=soft, **kw)
    exp_segs = torch.tensor([[float(r[0]), float(r[1])] for r in rows], dtype=torch.float64).reshape(-1, 2)
    exp_scores = torch.tensor([float(r[2]) for r in rows], dtype=torch.float64)
    assert got_labels.tolist() == [r[3] for r in rows]
    torch.testing.assert_close(got_scores.double(), exp_scores, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_segs.double(), exp_segs, rtol=1e-6, atol=1e-6)


def nms_options():
    return st.fixed_dictionaries({
        "soft": st.booleans(),
        "method": st.sampled_from(["gaussian", "linear"]),
        "iou_threshold": st.sampled_from([0.1, 0.5, 0.7]),
        "sigma": st.sampled_from([0.5, 0.75]),
        "min_score": st.sampled_from([0.001, 0.2, 0.0]),
        "max_seg_num": st.sampled_from([1, 3, 200]),
        "multiclass": st.booleans(),
        "voting_thresh": st.sampled_from([0.0, 0.7]),
    })


# Coarse values: many ties in score, identical, nested and zero-length segments.
coarse_case = st.integers(0, 14).flatmap(lambda n: st.tuples(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4)), min_size=n, max_size=n),
    st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9, 1.0]), min_size=n, max_size=n),
    st.lists(st.integers(0, 2), min_size=n, max_size=n)))


@settings(max_examples=400, deadline=None)
@given(case=coarse_case, options=nms_options())
def test_matches_reference_on_coarse_values(case, options):
    starts_lengths, scores, labels = case
    segs = [(0.5 * s, 0.5 * s + 0.5 * length) for s, length in starts_lengths]
    check(segs, scores, labels, **options)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 80), options=nms_options())
def test_matches_reference_on_random_values(seed, n, options):
    rng = random.Random(seed)
    segs = []
    for _ in range(n):
        start = rng.uniform(0, 12)
        segs.append((start, start + rng.choice([0.0, rng.uniform(0, 4), rng.expovariate(1.0)])))
    scores = [rng.random() for _ in range(n)]
    labels = [rng.randrange(3) for _ in range(n)]
    check(segs, scores, labels, **options)


@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("multiclass", [True, False])
def test_edge_cases(soft, multiclass):
    opts = dict(soft=soft, method="gaussian", iou_threshold=0.1, sigma=0.5, min_score=0.001, max_seg_num=200,
                multiclass=multiclass, voting_thresh=0.7)
    check([], [], [], **opts)
    check([(1.0, 3.0)], [0.4], [2], **opts)
    check([(1.0, 3.0)] * 5, [0.4] * 5, [0, 1, 0, 1, 0], **opts)  # identical segments and scores
    check([(0.0, 8.0), (1.0, 2.0), (2.0, 6.0), (3.0, 3.0), (3.0, 3.0)], [0.5, 0.5, 0.7, 0.7, 0.5], [0] * 5, **opts)


def test_empty_output_types():
    segs, scores, labels = batched_nms(torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert segs.shape == (0, 2) and scores.shape == (0,) and labels.dtype == torch.long


def test_exact_path_matches_reference_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 120))
        start = rng.uniform(0, 30, n)
        segs = np.stack([start, start + rng.exponential(3.0, n)], 1)
        scores = rng.random(n)
        for method in ("gaussian", "linear"):
            ref_idx, dets = ref_softnms(segs.tolist(), scores.tolist(), method, 0.3, 0.5, 0.05)
            idx, sc = soft_nms_exact(segs.astype(np.float32), scores.astype(np.float32), method, 0.3, 0.5, 0.05,
                                      10**9)
            assert idx.tolist() == ref_idx
            np.testing.assert_allclose(sc, [float(d[2]) for d in dets], rtol=0, atol=1e-6)


def test_known_values():
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0], [20.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.tensor([0, 0, 0])
    out_segs, out_scores, _ = soft_nms(segs, scores, labels, sigma=0.5)
    # IoU of the duplicate is 1 (up to eps): 0.8 * exp(-1 / 0.5); the far segment is untouched
    assert out_scores.tolist() == pytest.approx([0.9, 0.7, 0.8 * math.exp(-2.0)], abs=1e-6)
    assert out_segs[2].tolist() == [0.0, 10.0]
    _, hard_scores, _ = hard_nms(segs, scores, labels, iou_threshold=0.5)
    assert hard_scores.tolist() == pytest.approx([0.9, 0.7])
    _, lin_scores, _ = soft_nms(segs, torch.tensor([0.9, 0.8, 0.7]), labels, method="linear", iou_threshold=0.5)
    assert lin_scores.tolist() == pytest.approx([0.9, 0.7])  # 0.8 * (1 - ~1) falls below min_score


def test_voting_averages_neighbours():
    nms = torch.tensor([[0.0, 10.0]])
    all_segs = torch.tensor([[0.0, 10.0], [1.0, 11.0], [50.0, 60.0]])
    out = seg_voting(nms, all_segs, torch.tensor([0.6, 0.2, 0.9]), 0.5)
    torch.testing.assert_close(out, torch.tensor([[0.25, 10.25]]))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        soft_nms(torch.zeros(2, 2), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError):
        soft_nms(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1), method="cubic")
    with pytest.raises(ValueError):
        batched_nms(torch.zeros(1, 2), torch.tensor([float("nan")]), torch.zeros(1))


def test_boundaries_follow_the_cpp_comparisons():
    segs = [(0.0, 4.0), (2.0, 6.0), (10.0, 12.0)]
    area = F(F(4.0) + F(1e-6))
    ovr = float(_iou32(F(0.0), F(4.0), area, F(2.0), F(6.0), area))  # the float32 IoU, about 1/3
    for soft, method in ((False, "gaussian"), (True, "linear")):
        # IoU == threshold suppresses / decays (>=, not >); a score equal to min_score: soft keeps it (drops only
        # below), hard drops it (keeps only above)
        opts = dict(soft=soft, method=method, iou_threshold=ovr, sigma=0.5, min_score=0.2, max_seg_num=200,
                    multiclass=True, voting_thresh=0.0)
        check(segs, [0.9, 0.8, 0.2], [0, 0, 0], **opts)
    _, scores, _ = batched_nms(torch.tensor(segs), torch.tensor([0.9, 0.8, 0.2]), torch.zeros(3),
                               use_soft_nms=False, iou_threshold=ovr, min_score=0.2)
    assert scores.tolist() == pytest.approx([0.9])
    _, scores, _ = batched_nms(torch.tensor(segs), torch.tensor([0.9, 0.8, 0.2]), torch.zeros(3),
                               method="linear", iou_threshold=ovr, min_score=0.2)
    assert scores.tolist() == pytest.approx([0.9, 0.8 * (1 - ovr), 0.2])


@pytest.mark.parametrize("quantise", [False, True])
def test_batched_fast_path_matches_exact_loop_at_scale(quantise):
    """Benchmark-like input (thousands of candidates, several classes); quantised scores force many ties."""
    rng = np.random.default_rng(1)
    n, classes = 3000, 5
    centre = rng.integers(0, 600, n).astype(np.float32)
    length = rng.uniform(0.5, 60.0, n).astype(np.float32)
    segs = np.stack([centre - 0.5 * length, centre + 0.5 * length], 1)
    scores = (1.0 / (1.0 + np.exp(-(rng.normal(-2.0, 2.0, n))))).astype(np.float32)
    if quantise:
        scores = np.round(scores * 16) / 16 + np.float32(1 / 32)
    labels = rng.integers(0, classes, n)
    for method in ("gaussian", "linear"):
        got_segs, got_scores, got_labels = soft_nms(segs, scores, labels, method=method, iou_threshold=0.3,
                                                    max_seg_num=150)
        exp_idx, exp_scores = [], []
        for c in range(classes):
            members = np.flatnonzero(labels == c)
            idx, sc = soft_nms_exact(segs[members], scores[members].astype(np.float32), method, 0.3, 0.5, 0.001,
                                      150)
            exp_idx.append(members[idx])
            exp_scores.append(sc)
        exp_idx = np.concatenate(exp_idx)
        np.testing.assert_array_equal(got_labels.numpy(), labels[exp_idx])
        np.testing.assert_array_equal(got_segs.numpy(), segs[exp_idx])
        np.testing.assert_allclose(got_scores.numpy(), np.concatenate(exp_scores), rtol=0, atol=1e-6)
