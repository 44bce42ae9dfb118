"""Where the detector's forward time goes: a ``torch.profiler`` table of the thumos14 model.

    python benchmarks/profile_model.py [--batch 2] [--length 2304] [--threads N] [--precision fp32|bf16]
        [--backward] [--rows 25]

Prints the top operators by self CPU time of one forward (eval, no_grad; ``--backward``: one training
forward+backward) after one warm-up run, with ``bf16`` under :func:`rdfa_s6.precision.autocast`.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from rdfa_s6 import build_detector, load_config
from rdfa_s6.precision import autocast


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=2304)
    parser.add_argument("--input-dim", type=int, default=3200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--backward", action="store_true")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_detector(load_config("thumos14"), args.input_dim, 20)
    feats = torch.randn(args.batch, args.input_dim, args.length)
    mask = torch.ones(args.batch, 1, args.length, dtype=torch.bool)

    def run() -> None:
        with autocast(torch.device("cpu"), args.precision):
            if args.backward:
                model.train()
                out = model.forward_raw(feats, mask)
                loss = sum(x.float().mean() for x in out.cls_logits) + sum(x.float().mean() for x in out.offsets)
                loss.backward()
                model.zero_grad(set_to_none=True)
            else:
                model.eval()
                with torch.no_grad():
                    model.forward_raw(feats, mask)

    run()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    wall = time.perf_counter() - start
    print(f"{torch.get_num_threads()} threads, {args.precision}, {'fwd+bwd' if args.backward else 'fwd'}, "
          f"B={args.batch} T={args.length}: {wall * 1e3:.0f} ms under the profiler")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
