"""Selective-scan benchmark: every available backend against the exp floor, measured in the same run.

    python benchmarks/scan.py [--reps 7] [--shapes 2x512x2304,...] [--reference] [--no-block]

For each shape b x d x L (d_state 16) it prints the medians of forward and forward+backward per backend, the
"exp floor" (the time of one vectorised exp per (b, d, L, n) element, torch.exp on a cache-resident block,
for the forward; three per element for forward+backward) and the ratios. Then a full FA-Bi-S6 block
(D=512, kernels 2/3/4, L=2304, batch 2) forward+backward with the automatic scan against the same block with
the scan replaced by an identity (two variants: ``u * silu(z)`` keeping the gradient paths of delta, B and C,
the meaningful baseline, and the literal ``out = u``). Candidates are interleaved, repetition by repetition, so
that machine noise hits them alike; the numbers are medians.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Callable, Dict, List

import torch

from rdfa_s6.ssm import BiS6, available_backends, resolve_backend, selective_scan
from rdfa_s6.ssm import bis6 as bis6_module

DEFAULT_SHAPES = "2x512x2304,2x512x1152,2x512x576,2x512x288,2x512x144,2x512x72,2x576x512"
NSTATE = 16


def scan_inputs(b: int, d: int, l: int, n: int = NSTATE, layout: str = "bld") -> Dict[str, torch.Tensor]:
    """Inputs laid out as a BiS6 block makes them (``bld``: [b, d, l] views of [b, l, d] tensors) or as
    ``mamba_ssm``'s public signature takes them (``bdl``: contiguous [b, d, l])."""
    g = torch.Generator().manual_seed(0)

    def bdl(scale=1.0, shift=0.0):
        t = (torch.randn(b, l, d, generator=g) * scale + shift).transpose(1, 2)
        return t.contiguous() if layout == "bdl" else t

    return {
        "u": bdl(), "delta": bdl(0.5, -2.0), "A": -torch.exp(torch.randn(d, n, generator=g) * 0.5),
        "B": torch.randn(b, n, l, generator=g), "C": torch.randn(b, n, l, generator=g),
        "D": torch.randn(d, generator=g), "z": bdl(), "delta_bias": torch.randn(d, generator=g) * 0.1,
    }


def exp_floor(numel: int, exps: int) -> Callable[[], None]:
    block = 1 << 20  # 4 MB: resident in L2/L3, so this measures exp throughput, not memory bandwidth
    x = torch.randn(block)
    out = torch.empty_like(x)
    reps = max(1, round(exps * numel / block))

    def run() -> None:
        for _ in range(reps):
            torch.exp(x, out=out)

    return run


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def medians(candidates: Dict[str, Callable[[], None]], reps: int) -> Dict[str, float]:
    for fn in candidates.values():  # warm-up (builds the native kernel, allocator, caches)
        fn()
    samples: Dict[str, List[float]] = {k: [] for k in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            samples[name].append(timed(fn))
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}


def scan_candidates(shape, backends, layouts=("bld",)) -> Dict[str, Callable[[], None]]:
    b, d, l = shape
    cands: Dict[str, Callable[[], None]] = {}
    for layout in layouts:
        suffix = "" if layout == "bld" else f" [{layout}]"
        _add_scan_candidates(cands, shape, [x for x in backends if layout == "bld" or x == "native"], layout,
                             suffix)
    numel = b * d * l * NSTATE
    cands["exp floor fwd"] = exp_floor(numel, 1)
    cands["exp floor fwd+bwd"] = exp_floor(numel, 3)
    return cands


def _add_scan_candidates(cands, shape, backends, layout: str, suffix: str) -> None:
    b, d, l = shape
    inputs = scan_inputs(b, d, l, layout=layout)
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    grad = torch.randn(b, l, d).transpose(1, 2)
    grad = grad.contiguous() if layout == "bdl" else grad
    for name in backends:
        def fwd(name=name):
            with torch.no_grad():
                selective_scan(**inputs, delta_softplus=True, backend=name)

        def fwd_bwd(name=name):
            out = selective_scan(**leaves, delta_softplus=True, backend=name)
            torch.autograd.grad(out, list(leaves.values()), grad)

        cands[f"{name}{suffix} fwd"] = fwd
        cands[f"{name}{suffix} fwd+bwd"] = fwd_bwd


def _identity_keeping_paths(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, backend=None):
    """The scan without its recurrence, ``out = u * silu(z)``, with delta, B and C kept in the graph through a
    zero-weighted scalar, so that the rest of the block (x_proj, dt_proj, in_proj's gate half and their
    backward) still runs, at the cost of one reduction per input."""
    keep = (delta.sum() + B.sum() + C.sum()) * 0.0
    return u * torch.nn.functional.silu(z) + keep


def _identity_u_only(u, *args, **kwargs):
    """The literal identity ``out = u``: also drops the backward of everything that only feeds delta, B, C, z."""
    return u * 1.0


@contextlib.contextmanager
def scan_replaced_by(fn):
    """Replace the scan inside BiS6 by ``fn`` (everything else in the block unchanged)."""
    original = bis6_module.selective_scan
    bis6_module.selective_scan = fn
    try:
        yield
    finally:
        bis6_module.selective_scan = original


def block_candidates(length: int) -> Dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    block = BiS6(512, kernel_sizes=(2, 3, 4))
    h = torch.randn(2, length, 512, requires_grad=True)

    def fwd_bwd() -> None:
        block.zero_grad(set_to_none=True)
        block(h).sum().backward()

    def with_scan(fn) -> Callable[[], None]:
        def run() -> None:
            with scan_replaced_by(fn):
                fwd_bwd()
        return run

    return {"FA-Bi-S6 block": fwd_bwd, "identity scan": with_scan(_identity_keeping_paths),
            "identity scan (u only)": with_scan(_identity_u_only)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per candidate (median)")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated b x d x L")
    parser.add_argument("--reference", action="store_true", help="also time the sequential reference (slow)")
    parser.add_argument("--no-block", action="store_true", help="skip the FA-Bi-S6 block comparison")
    parser.add_argument("--backends", default=None, help="comma-separated subset of the available backends")
    args = parser.parse_args()

    backends = [k for k, ok in available_backends().items() if ok and (k != "reference" or args.reference)]
    if args.backends:
        backends = [k for k in backends if k in args.backends.split(",")]
    columns = list(backends)
    if "native" in backends:  # the public layout too: contiguous [b, d, l] inputs, the mamba_ssm signature
        columns.insert(columns.index("native") + 1, "native [bdl]")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backends: {', '.join(backends)}")
    print("medians in ms; ratio = time / exp floor of the same kind (fwd: 1 exp per element, fwd+bwd: 3)\n")
    header = f"{'shape':>12} | " + " | ".join(f"{b + ' fwd':>16} | {b + ' fwd+bwd':>18}" for b in columns)
    print(header + f" | {'exp floor fwd':>13} | {'exp floor f+b':>13} | native vs chunked f+b")
    print("-" * len(header) + "-" * 50)
    for spec in args.shapes.split(","):
        shape = tuple(int(v) for v in spec.lower().split("x"))
        m = medians(scan_candidates(shape, backends, ("bld", "bdl") if "native" in backends else ("bld",)),
                    args.reps)
        cells = []
        for b in columns:
            f, fb = m[f"{b} fwd"], m[f"{b} fwd+bwd"]
            cells.append(f"{f:7.1f} ({f / m['exp floor fwd']:4.1f}x) | {fb:8.1f} ({fb / m['exp floor fwd+bwd']:4.1f}x)")
        speedup = ""
        if "native" in backends and "chunked" in backends:
            speedup = f"{m['chunked fwd+bwd'] / m['native fwd+bwd']:6.1f}x faster"
        print(f"{spec:>12} | " + " | ".join(cells)
              + f" | {m['exp floor fwd']:13.1f} | {m['exp floor fwd+bwd']:13.1f} | {speedup}")
    if not args.no_block:
        m = medians(block_candidates(2304), max(3, args.reps // 2))
        a, b, c = m["FA-Bi-S6 block"], m["identity scan"], m["identity scan (u only)"]
        backend = resolve_backend(torch.device("cpu"))
        print(f"\nFA-Bi-S6 block D=512 K=3 L=2304 B=2, fwd+bwd: {a:.1f} ms (scan backend {backend})\n"
              f"  same block, scan replaced by out = u * silu(z), gradient paths of delta, B, C kept: {b:.1f} ms, "
              f"ratio {a / b:.2f}x\n"
              f"  same block, scan replaced by out = u (the backward of delta, B, C, z is skipped too): {c:.1f} ms, "
              f"ratio {a / c:.2f}x")


if __name__ == "__main__":
    main()
