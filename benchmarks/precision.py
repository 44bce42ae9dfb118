"""bf16 against fp32 on the THUMOS-size model: relative errors of the logits and offsets, and the times.

    python benchmarks/precision.py [--batch 1] [--length 2304] [--input-dim 3200] [--seed 0]

Builds the ``thumos14`` detector with its random initialisation (seed ``--seed``; no trained weights needed)
and runs one forward in float32 and one under :func:`rdfa_s6.precision.autocast` with bf16 on the same
random features. Prints, over all pyramid levels of the valid steps, the relative error
||bf16 - fp32|| / ||fp32|| (Frobenius) and the largest absolute difference over the largest fp32 magnitude,
for the classification logits (also after subtracting their mean, since at initialisation they sit near the
prior bias) and the regression offsets, plus the two wall times. Where the CPU has no
AMX/AVX512-BF16 the bf16 matmuls are emulated and the bf16 time says nothing about speed.
"""
from __future__ import annotations

import argparse
import time

import torch

from rdfa_s6 import build_detector, load_config
from rdfa_s6.precision import autocast, cpu_bf16_support


def errors(got: torch.Tensor, ref: torch.Tensor) -> str:
    rel = ((got - ref).norm() / ref.norm()).item()
    worst = ((got - ref).abs().max() / ref.abs().max()).item()
    return f"rel {rel:.2e}, max|diff|/max|ref| {worst:.2e}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--length", type=int, default=2304)
    parser.add_argument("--input-dim", type=int, default=3200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_detector(load_config("thumos14"), args.input_dim, 20).eval()
    feats = torch.randn(args.batch, args.input_dim, args.length)
    mask = torch.ones(args.batch, 1, args.length, dtype=torch.bool)
    outs, secs = {}, {}
    for prec in ("fp32", "bf16"):
        start = time.perf_counter()
        with torch.no_grad(), autocast("cpu", prec):
            out = model.forward_raw(feats, mask)
        secs[prec] = time.perf_counter() - start
        outs[prec] = out
    keep = [m[:, :, None] if m.dim() == 2 else m for m in outs["fp32"].masks]

    def flat(xs):
        return torch.cat([x.float()[k.expand_as(x)] for x, k in zip(xs, keep)])

    support = cpu_bf16_support()
    print(f"thumos14 detector, random init (seed {args.seed}), B={args.batch} T={args.length} C={args.input_dim}, "
          f"{torch.get_num_threads()} threads; bf16 hardware: {support.reason}")
    got, ref = flat(outs["bf16"].cls_logits), flat(outs["fp32"].cls_logits)
    print(f"logits : {errors(got, ref)}")
    # at initialisation the logits sit near the prior bias (-4.6): the error of their deviation from the mean
    # is the stricter measure
    print(f"logits - mean(fp32 logits): {errors(got - ref.mean(), ref - ref.mean())}")
    print(f"offsets: {errors(flat(outs['bf16'].offsets), flat(outs['fp32'].offsets))}")
    print(f"time   : fp32 {secs['fp32']:.1f} s, bf16 {secs['bf16']:.1f} s")


if __name__ == "__main__":
    main()
