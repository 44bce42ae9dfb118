"""Whole-detector benchmark: RDFA-S6 (thumos14 preset) and both baseline encoders, measured in the same run.

    python benchmarks/model.py [--batch 2] [--length 2304] [--reps 3] [--threads N]

For each model: the analytic FLOP count (2 x multiply-accumulates of every matmul and convolution, computed
from the config; the selective scan's elementwise work is listed apart), the median forward time (eval,
no_grad) and forward+backward time (train mode, drop path on), and the achieved FLOP/s as a fraction of a
4096 x 4096 float32 matmul measured in the same process. Candidates are interleaved repetition by repetition.
Backward is counted as twice the forward's matmul FLOPs, except the first embedding conv (no input gradient).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import replace
from typing import Callable, Dict, List, Sequence

import torch

from rdfa_s6 import build_detector, load_config
from rdfa_s6.config import Config
from rdfa_s6.ssm import resolve_backend


# ------------------------------------------------------------------------------------------- analytic FLOPs
def bis6_flops(batch: int, length: int, d_model: int, kernel_sizes: Sequence[int], d_state: int = 16,
               expand: int = 1, aggregation: str = "concat") -> Dict[str, float]:
    """FLOPs of one (FA-)Bi-S6 call on [batch, length, d_model]: ``{"mm": matmul+conv, "scan": elementwise}``."""
    n, r, k = expand * d_model, math.ceil(d_model / 16), len(kernel_sizes)
    rows = batch * length
    mm = 2 * rows * d_model * 4 * n                                   # in_proj
    for ks in kernel_sizes:                                            # per kernel, both directions
        mm += 2 * (2 * rows * n * ks)                                  # causal depthwise conv
        mm += 2 * (2 * rows * n * (r + 2 * d_state))                   # x_proj
        mm += 2 * (2 * rows * r * n)                                   # dt_proj
    mm += 2 * rows * (2 * n * (k if aggregation == "concat" else 1)) * d_model  # out_proj
    # scan per (row, n, state) element: dA = exp(delta*A) (2), s = dA*s + (delta*u)*B (3), y += s*C (2)
    scan = 2 * k * rows * n * d_state * 7
    return {"mm": float(mm), "scan": float(scan)}


def _add(total: Dict[str, float], part: Dict[str, float], times: int = 1) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + times * value


def lengths_of(length: int, levels: int) -> List[int]:
    out = [length]
    for _ in range(levels):
        out.append(math.ceil(out[-1] / 2))
    return out


def detector_flops(cfg: Config, batch: int, length: int, input_dim: int, num_classes: int) -> Dict[str, float]:
    """Analytic FLOPs of ``forward_raw`` for ``cfg``: keys ``mm`` (matmul + conv), ``scan``, ``emb_conv1``."""
    m = cfg.model
    e, ks = m.embed_dim, m.embed_kernel_size
    total: Dict[str, float] = {}
    emb1 = 2.0 * batch * length * input_dim * e * ks
    _add(total, {"mm": emb1 + 2.0 * batch * length * e * e * ks * (m.embed_layers - 1), "emb_conv1": emb1})
    levels = lengths_of(length, m.branch.levels)
    mix = dict(d_state=m.mixer.d_state, expand=m.mixer.expand, aggregation=m.mixer.kernel_aggregation)
    if m.encoder == "rdfa_s6":
        if m.stem.kind != "none":
            per = {}
            if m.stem.kind in ("dual", "temporal"):
                _add(per, bis6_flops(batch, length, e, m.stem.kernel_sizes, **mix))
            if m.stem.kind in ("dual", "channel"):  # channel mixer: sequence = the e channels, width = P bins
                _add(per, bis6_flops(batch, e, cfg.chan_pool_len, m.stem.kernel_sizes, **mix))
            _add(total, per, m.stem.recurrences)
        for t in levels[:-1]:
            _add(total, bis6_flops(batch, t, e, [m.branch.kernel_size], **mix))
    elif m.encoder == "actionmamba":
        _add(total, bis6_flops(batch, length, e, [m.branch.kernel_size], **mix), m.baseline.stem_blocks)
        for t in levels[:-1]:
            _add(total, bis6_flops(batch, t, e, [m.branch.kernel_size], **mix))
    elif m.encoder == "actionformer":
        b = m.baseline

        def block(t_out: int, kq: int) -> float:
            rows = batch * t_out
            return (3 * 2 * rows * e * kq                 # depthwise q/k/v convs
                    + 3 * 2 * rows * e * e                 # 1x1 q/k/v projections
                    + 2 * 2 * rows * b.window_size * e     # q.k scores and att.v over the window
                    + 2 * rows * e * e                     # output projection
                    + 2 * 2 * rows * e * b.mlp_ratio * e)  # MLP
        _add(total, {"mm": b.stem_blocks * block(length, 3)})
        for t in levels[1:]:
            _add(total, {"mm": block(t, 3)})
    hl, hk = m.head.num_layers, m.head.kernel_size
    for t in levels:  # both heads on every level
        rows = batch * t
        trunk = (hl - 1) * 2 * rows * e * e * hk
        _add(total, {"mm": 2 * trunk + 2 * rows * e * hk * (num_classes + 2)})
    return total


# ---------------------------------------------------------------------------------------------- timing
def matmul_rate(size: int = 4096, reps: int = 3) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=2304)
    parser.add_argument("--input-dim", type=int, default=3200)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    base = load_config("thumos14")
    configs = {
        "rdfa_s6 (thumos14)": base,
        "actionformer": replace(base, model=replace(base.model, encoder="actionformer")),
        "actionmamba": replace(base, model=replace(base.model, encoder="actionmamba")),
    }
    feats = torch.randn(args.batch, args.input_dim, args.length)
    mask = torch.ones(args.batch, 1, args.length, dtype=torch.bool)
    models = {name: build_detector(cfg, args.input_dim, args.classes) for name, cfg in configs.items()}

    def fwd(model) -> Callable[[], None]:
        def run() -> None:
            model.eval()
            with torch.no_grad():
                model.forward_raw(feats, mask)
        return run

    def fwd_bwd(model) -> Callable[[], None]:
        def run() -> None:
            model.train()
            out = model.forward_raw(feats, mask)
            loss = sum(x.mean() for x in out.cls_logits) + sum(x.mean() for x in out.offsets)
            loss.backward()
            model.zero_grad(set_to_none=True)
        return run

    jobs = {(name, kind): (fwd if kind == "fwd" else fwd_bwd)(model)
            for name, model in models.items() for kind in ("fwd", "fwd+bwd")}
    for job in jobs.values():  # warm-up (oneDNN primitives, native scan build)
        job()
    peak_before = matmul_rate()
    times: Dict[tuple, List[float]] = {key: [] for key in jobs}
    for _ in range(args.reps):
        for key, job in jobs.items():
            start = time.perf_counter()
            job()
            times[key].append(time.perf_counter() - start)
    peak = max(peak_before, matmul_rate())

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, scan backend "
          f"{resolve_backend(torch.device('cpu'))}; B={args.batch}, T={args.length}, C={args.input_dim}, "
          f"{args.classes} classes; medians of {args.reps}")
    print(f"reference: {4096}x{4096} float32 matmul at {peak / 1e9:.1f} GFLOP/s\n")
    header = (f"{'model':20s} {'params':>8s} {'GFLOP fwd':>10s} {'scan GF':>8s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} "
              f"{'fwd GF/s':>9s} {'fwd %mm':>8s} {'f+b GF/s':>9s} {'f+b %mm':>8s}")
    print(header)
    print("-" * len(header))
    for name, cfg in configs.items():
        fl = detector_flops(cfg, args.batch, args.length, args.input_dim, args.classes)
        t_f = statistics.median(times[(name, "fwd")])
        t_fb = statistics.median(times[(name, "fwd+bwd")])
        fb_flops = 3 * fl["mm"] - fl["emb_conv1"]
        params = sum(p.numel() for p in models[name].parameters())
        print(f"{name:20s} {params / 1e6:7.2f}M {fl['mm'] / 1e9:10.1f} {fl.get('scan', 0.0) / 1e9:8.2f} {t_f * 1e3:9.0f} "
              f"{t_fb * 1e3:11.0f} {fl['mm'] / t_f / 1e9:9.1f} {100 * fl['mm'] / t_f / peak:7.1f}% "
              f"{fb_flops / t_fb / 1e9:9.1f} {100 * fb_flops / t_fb / peak:7.1f}%")


if __name__ == "__main__":
    main()
