"""Evaluator benchmark: the whole ``rdfa_s6.eval.evaluate`` on the largest shared evaluation case.

    python benchmarks/evaluator.py [SHARED_DATA] [--case visible-messy] [--reps 5]

SHARED_DATA defaults to $RDFA_S6_SHARED_DATA or /work/shared/data (it holds thumos14.json and evalcases/).
Times the evaluation at the five THUMOS thresholds (reading both JSON files, mAP, recall and the error
breakdown) and prints the median over the repetitions in seconds. Target: under 1 s.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from rdfa_s6.eval import THUMOS_TIOUS, evaluate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("shared", nargs="?", default=os.environ.get("RDFA_S6_SHARED_DATA", "/work/shared/data"),
                        help="folder with thumos14.json and evalcases/")
    parser.add_argument("--case", default="visible-messy", help="evaluation case folder under evalcases/")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; the median is printed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    shared = Path(args.shared)
    pred, gt = shared / "evalcases" / args.case / "predictions.json", shared / "thumos14.json"
    if not pred.is_file() or not gt.is_file():
        print(f"shared data not found: {pred} / {gt}", file=sys.stderr)
        return 2
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        metrics = evaluate(pred, gt, subset="test", tiou_thresholds=THUMOS_TIOUS)
        times.append(time.perf_counter() - start)
    print(f"evaluate() on {args.case}: {metrics['num_predictions']} predictions, {metrics['num_gt']} events, "
          f"5 thresholds, average mAP {100 * metrics['average_mAP']:.2f}%")
    print(f"median of {args.reps}: {statistics.median(times):.3f} s (min {min(times):.3f} s, max {max(times):.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
