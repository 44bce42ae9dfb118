"""Soft-NMS benchmark: one video's post-processing at the THUMOS setting (SPEC 5.1-5.2).

    python benchmarks/nms.py [--reps 9] [--classes 20] [--per-level 2000] [--levels 6]

Candidates imitate the decoder's output: per pyramid level (stride 2^l) ``--per-level`` (point, class) pairs
with lengths inside the level's regression range (grid units, video of 2304 steps) and sigmoid-like scores above
0.001. Classes are drawn uniformly ("uniform") or mostly from two classes, as in a real THUMOS video ("skewed").
Prints the median wall time of ``batched_nms`` (multi-class gaussian soft-NMS, sigma 0.5, 200 per class and
per video) and, for reference, of the per-class exact-order loop alone and of hard NMS.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Tuple

import numpy as np
import torch

from rdfa_s6.infer.nms import batched_nms
from rdfa_s6.infer.nms_loops import soft_nms_exact

RANGES = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]
SEQ_LEN = 2304


def candidates(levels: int, per_level: int, classes: int, skewed: bool, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    segs, scores, labels = [], [], []
    for level in range(levels):
        stride = 2 ** level
        lo, hi = RANGES[min(level, len(RANGES) - 1)]
        hi = min(hi, 256)
        centre = torch.randint(0, SEQ_LEN // stride, (per_level,), generator=g).float() * stride
        length = lo + (hi - lo) * torch.rand(per_level, generator=g) + 0.1
        split = torch.rand(per_level, generator=g)
        segs.append(torch.stack([centre - split * length, centre + (1 - split) * length], 1))
        scores.append(torch.sigmoid(torch.randn(per_level, generator=g) * 2.0 - 3.0).clamp(min=0.0011))
        if skewed:
            main = torch.randint(0, 2, (per_level,), generator=g)
            other = torch.randint(0, classes, (per_level,), generator=g)
            labels.append(torch.where(torch.rand(per_level, generator=g) < 0.8, main, other))
        else:
            labels.append(torch.randint(0, classes, (per_level,), generator=g))
        # the decoder emits each level by decreasing score
        order = torch.argsort(scores[-1], descending=True)
        segs[-1], scores[-1], labels[-1] = segs[-1][order], scores[-1][order], labels[-1][order]
    return torch.cat(segs), torch.cat(scores), torch.cat(labels)


def median_ms(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--per-level", type=int, default=2000)
    parser.add_argument("--levels", type=int, default=6)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.levels} levels x "
          f"{args.per_level} candidates, {args.classes} classes; median of {args.reps} runs")
    for name, skewed in (("uniform", False), ("skewed", True)):
        segs, scores, labels = candidates(args.levels, args.per_level, args.classes, skewed)
        soft = median_ms(lambda: batched_nms(segs, scores, labels, iou_threshold=0.1, min_score=0.001,
                                             max_seg_num=200, use_soft_nms=True, multiclass=True, sigma=0.5), args.reps)
        hard = median_ms(lambda: batched_nms(segs, scores, labels, iou_threshold=0.1, min_score=0.001,
                                             max_seg_num=200, use_soft_nms=False, multiclass=True), args.reps)

        segs_np, scores_np, labels_np = segs.numpy(), scores.numpy(), labels.numpy()

        def exact() -> None:
            for c in np.unique(labels_np):
                members = np.flatnonzero(labels_np == c)
                soft_nms_exact(segs_np[members], scores_np[members], "gaussian", 0.1, 0.5, 0.001, 200)

        exact_ms = median_ms(exact, max(1, args.reps // 3))
        print(f"{name:8s} {segs.shape[0]} candidates: soft-NMS (batched_nms) {soft:7.1f} ms/video | "
              f"exact-order loop per class {exact_ms:7.1f} ms | hard NMS {hard:6.1f} ms")


if __name__ == "__main__":
    main()
