"""Whole-detector benchmark: RDFA-S6 (thumos14 preset) and both baseline encoders, measured in the same run.

    python benchmarks/model.py [--batch 2] [--length 2304] [--reps 3] [--threads N] [--models rdfa_s6,...]
        [--precisions auto|fp32,bf16] [--reference-mixer] [--no-backward]

For each model and precision: the analytic FLOP count (2 x multiply-accumulates of every matmul and
convolution, computed from the config; the selective scan's elementwise work is listed apart), the median
forward time (eval, no_grad) and forward+backward time (train mode, drop path on), and their ratios to the
"matmul floor": the analytic FLOPs over the rate of a 4096 x 4096 matmul of the same dtype measured in the
same process. bf16 runs use :func:`rdfa_s6.precision.autocast`. Candidates are interleaved repetition by
repetition. Backward is counted as twice the forward's matmul FLOPs, except the first embedding conv (no
input gradient). ``--reference-mixer`` adds RDFA-S6 with the unfused Bi-S6 composition for comparison.
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
from rdfa_s6.precision import autocast, cpu_bf16_support
from rdfa_s6.ssm import BiS6, resolve_backend


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
def matmul_rate(size: int = 4096, reps: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of one size x size matmul in ``dtype`` (median of ``reps``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def set_fused(model: torch.nn.Module, on: bool) -> None:
    """Switch every Bi-S6 mixer of ``model`` between the fused native path and the reference composition."""
    for sub in model.modules():
        if isinstance(sub, BiS6):
            sub.fused = on


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=2304)
    parser.add_argument("--input-dim", type=int, default=3200)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", default="rdfa_s6,actionformer,actionmamba",
                        help="comma-separated subset of rdfa_s6, actionformer, actionmamba")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated fp32, bf16; 'auto' = fp32, plus bf16 where the CPU has AMX/AVX512-BF16")
    parser.add_argument("--reference-mixer", action="store_true",
                        help="also time RDFA-S6 with the reference (unfused) Bi-S6 composition")
    parser.add_argument("--no-backward", action="store_true", help="forward only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    support = cpu_bf16_support()
    precisions = args.precisions.split(",")
    if precisions == ["auto"]:
        precisions = ["fp32", "bf16"] if support.fast else ["fp32"]

    base = load_config("thumos14")
    all_configs = {
        "rdfa_s6": base,
        "actionformer": replace(base, model=replace(base.model, encoder="actionformer")),
        "actionmamba": replace(base, model=replace(base.model, encoder="actionmamba")),
    }
    configs = {k: all_configs[k] for k in args.models.split(",")}
    feats = torch.randn(args.batch, args.input_dim, args.length)
    mask = torch.ones(args.batch, 1, args.length, dtype=torch.bool)
    models = {name: build_detector(cfg, args.input_dim, args.classes) for name, cfg in configs.items()}

    def fwd(model, precision: str, fused: bool) -> Callable[[], None]:
        def run() -> None:
            model.eval()
            set_fused(model, fused)
            with torch.no_grad(), autocast("cpu", precision):
                model.forward_raw(feats, mask)
        return run

    def fwd_bwd(model, precision: str, fused: bool) -> Callable[[], None]:
        def run() -> None:
            model.train()
            set_fused(model, fused)
            with autocast("cpu", precision):
                out = model.forward_raw(feats, mask)
                loss = sum(x.float().mean() for x in out.cls_logits) + sum(x.float().mean() for x in out.offsets)
            loss.backward()
            model.zero_grad(set_to_none=True)
        return run

    variants = [(name, prec, True) for name in models for prec in precisions]
    if args.reference_mixer and "rdfa_s6" in models:
        variants += [("rdfa_s6", prec, False) for prec in precisions]
    kinds = ("fwd",) if args.no_backward else ("fwd", "fwd+bwd")
    jobs = {(v, kind): (fwd if kind == "fwd" else fwd_bwd)(models[v[0]], v[1], v[2])
            for v in variants for kind in kinds}
    for job in jobs.values():  # warm-up (oneDNN primitives, native kernel build)
        job()
    rates_before = {p: matmul_rate(dtype=DTYPES[p]) for p in precisions}
    times: Dict[tuple, List[float]] = {key: [] for key in jobs}
    for _ in range(args.reps):
        for key, job in jobs.items():
            start = time.perf_counter()
            job()
            times[key].append(time.perf_counter() - start)
    rates = {p: max(rates_before[p], matmul_rate(dtype=DTYPES[p])) for p in precisions}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, scan backend "
          f"{resolve_backend(torch.device('cpu'))}; B={args.batch}, T={args.length}, C={args.input_dim}, "
          f"{args.classes} classes; medians of {args.reps}")
    print(f"bf16: {'used by --precision auto' if support.fast else 'not used'} ({support.reason})")
    for p in precisions:
        print(f"reference: 4096x4096 {p} matmul at {rates[p] / 1e9:.1f} GFLOP/s")
    print("floor = analytic matmul FLOPs / that rate (same dtype); ratio = time / floor\n")
    header = (f"{'model':26s} {'params':>8s} {'GFLOP fwd':>10s} {'scan GF':>8s} {'fwd ms':>9s} {'floor ms':>9s} "
              f"{'fwd/floor':>10s} {'f+b ms':>9s} {'floor ms':>9s} {'f+b/floor':>10s}")
    print(header)
    print("-" * len(header))
    for name, prec, fused in variants:
        cfg = configs[name]
        fl = detector_flops(cfg, args.batch, args.length, args.input_dim, args.classes)
        t_f = statistics.median(times[((name, prec, fused), "fwd")])
        floor_f = fl["mm"] / rates[prec]
        params = sum(p.numel() for p in models[name].parameters())
        label = f"{name} {prec}" + ("" if fused or name != "rdfa_s6" else " ref-mixer")
        row = (f"{label:26s} {params / 1e6:7.2f}M {fl['mm'] / 1e9:10.1f} {fl.get('scan', 0.0) / 1e9:8.2f} "
               f"{t_f * 1e3:9.0f} {floor_f * 1e3:9.0f} {t_f / floor_f:9.2f}x")
        if "fwd+bwd" in kinds:
            t_fb = statistics.median(times[((name, prec, fused), "fwd+bwd")])
            floor_fb = (3 * fl["mm"] - fl["emb_conv1"]) / rates[prec]
            row += f" {t_fb * 1e3:9.0f} {floor_fb * 1e3:9.0f} {t_fb / floor_fb:9.2f}x"
        print(row)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


if __name__ == "__main__":
    main()
