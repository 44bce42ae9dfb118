"""The fused CPU path of the Bi-S6 / FA-Bi-S6 mixer: native kernels from the in-projection to ``out_proj``.

The reference path (:meth:`rdfa_s6.ssm.bis6.BiS6._forward_reference`) flips the backward stream, concatenates
the streams, expands the gate K times, and permutes, flips and concatenates the scan outputs before
``out_proj``: six copies of [B, L, >= 2N] tensors per call and their backward. This path makes none of them:

1. :class:`StreamConvs`: every kernel's causal depthwise conv and the SiLU, for both streams, read straight
   from the in-projection's output ``proj`` [B, L, 4N] (the backward stream by reversed index arithmetic),
   written as ``u`` [K, 2B, L, N]; backward recomputes the convs and writes the x channels of d(proj).
2. ``x_proj`` and ``dt_proj``: ordinary matmuls (bf16 under autocast).
3. :class:`StreamScan`: the selective scan of all K x 2B chains with softplus(delta + bias), the D skip and the
   SiLU(z) gate, reading ``z`` from ``proj`` and ``B``/``C`` from ``x_proj``'s output in place (per-chain
   offsets and time strides; negative for the reversed stream), writing ``out_proj``'s input [B, L, 2KN]
   directly in the order [fwd k1..kK, bwd k1..kK] with the backward stream reversed back.

Inside, everything is float32 (float64 for float64 inputs); bf16 inputs (autocast) are converted at the edges.
Gradients are exact (hand-written backward of both kernels; tests compare with the reference mixer and run
float64 gradcheck).
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import native

if TYPE_CHECKING:  # pragma: no cover
    from .bis6 import BiS6

NOFF = 7  # per-chain addressing slots of the scan kernel: u, delta, z, out, dout, B, C


def usable(mixer: "BiS6", h: Tensor) -> bool:
    """True when the fused path can run ``mixer`` on ``h`` (CPU, native kernel built, kernels <= its maximum)."""
    if h.device.type != "cpu" or h.dtype not in (torch.float32, torch.float64, torch.bfloat16):
        return False
    limit = kernel_limit()
    return limit is not None and max(mixer.kernel_sizes) <= limit


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _i64(values: Sequence[int]) -> Tensor:
    return torch.tensor(values, dtype=torch.int64)


class StreamConvs(torch.autograd.Function):
    """``proj`` [B, L, 4N] -> ``u`` [K, 2B, L, N]: SiLU(causal depthwise conv_i(x_s)) for kernel i, stream s.

    ``x_0 = proj[..., 0:N]`` in time order, ``x_1 = proj[..., 2N:3N]`` reversed in time. ``weight`` [K, kmax, N]
    holds kernel i's taps in rows 0..k_i-1 (tap j reads step t - (k_i - 1) + j), ``bias`` [K, N].
    """

    # ctx: Any as in torch's own signature of forward/backward (a context object that takes attributes)
    @staticmethod
    def forward(ctx: Any, proj: Tensor, weight: Tensor, bias: Tensor, kernel_sizes: Tuple[int, ...]) -> Tensor:
        lib = native.library()
        batch, length, width = proj.shape
        n, k = width // 4, len(kernel_sizes)
        ksz = _i64(kernel_sizes)
        u = proj.new_empty(k, 2 * batch, length, n)
        p = _conv_params(proj, weight, bias, ksz, n)
        p.u = u.data_ptr()
        (lib.rdfa_conv_fwd_f64 if proj.dtype == torch.float64 else lib.rdfa_conv_fwd_f32)(ctypes.byref(p))
        ctx.save_for_backward(proj, weight, bias)
        ctx.kernel_sizes = tuple(kernel_sizes)
        return u

    @staticmethod
    def backward(ctx: Any, du: Tensor) -> Tuple[Optional[Tensor], ...]:
        lib = native.library()
        proj, weight, bias = ctx.saved_tensors
        batch, length, width = proj.shape
        n, k, kmax = width // 4, weight.shape[0], weight.shape[1]
        ksz = _i64(ctx.kernel_sizes)
        du = du.to(proj.dtype).contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dproj = proj.new_empty(proj.shape) if need_x else None
        if dproj is not None:  # the kernel writes every x channel; the gate channels get no gradient here
            dproj[..., n : 2 * n].zero_()
            dproj[..., 3 * n :].zero_()
        blocks = -(-length // int(lib.rdfa_conv_time_block()))  # partial sums per (stream-batch, time block)
        dw = proj.new_empty(2 * batch * blocks, k, kmax, n)
        db = proj.new_empty(2 * batch * blocks, k, n)
        p = _conv_params(proj, weight, bias, ksz, n)
        p.du, p.dw, p.dbias = du.data_ptr(), dw.data_ptr(), db.data_ptr()
        p.dx = dproj.data_ptr() if dproj is not None else None
        (lib.rdfa_conv_bwd_f64 if proj.dtype == torch.float64 else lib.rdfa_conv_bwd_f32)(ctypes.byref(p))
        return dproj, dw.sum(0) if need_w else None, db.sum(0) if need_b else None, None


def _conv_params(proj: Tensor, weight: Tensor, bias: Tensor, ksz: Tensor, n: int) -> "native._ConvParams":
    batch, length, _ = proj.shape
    p = native._ConvParams()
    p.batch, p.len, p.dim, p.nk, p.kmax = batch, length, n, weight.shape[0], weight.shape[1]
    p.nthreads = max(1, torch.get_num_threads())
    p.ksz = ksz.data_ptr()
    p.x, p.w, p.bias = proj.data_ptr(), weight.data_ptr(), bias.data_ptr()
    p.x_sb, p.x_sl = proj.stride(0), proj.stride(1)
    p.x_coff[0], p.x_coff[1] = 0, 2 * n
    p._keep = ksz  # keep the sizes tensor alive as long as the struct
    return p


class StreamScan(torch.autograd.Function):
    """The K x 2B scans of one mixer call, reading and writing the mixer's tensors in place.

    Args: ``u``, ``delta`` [K, 2B, L, N] (stream order: fwd batches, then bwd batches in reversed time);
    ``xdbl`` [K, 2B, L, R + 2S] (``x_proj``'s output: B at channels R..R+S, C after); ``proj`` [B, L, 4N] (the
    gates at channels N..2N and 3N..4N); ``A`` [N, S], ``D`` [N], ``bias`` [N] (delta bias, softplus inside).
    Returns [B, L, 2KN] (``concat``: channel block s*K + i holds kernel i of stream s, in original time) or
    [K, B, L, 2N] (``sum``: summed over K by the caller).
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, delta: Tensor, xdbl: Tensor, proj: Tensor, A: Tensor, D: Tensor, bias: Tensor,
                dt_rank: int, per_kernel_bc: bool, concat: bool) -> Tensor:
        lib = native.library()
        k, s2, length, n = u.shape
        batch, nstate = s2 // 2, A.shape[1]
        if concat:
            out = u.new_empty(batch, length, 2 * k * n)
        else:
            out = u.new_empty(k, batch, length, 2 * n)
        offs, tsl = _scan_addressing(k, batch, length, n, nstate, dt_rank, per_kernel_bc, concat)
        lanes = native._lanes(u.dtype)
        groups, nchunks = (n + lanes - 1) // lanes, (length + native.CHUNK - 1) // native.CHUNK
        ckpt = u.new_empty(k * s2, groups, nchunks, nstate, lanes)
        p = _scan_params(u, delta, xdbl, proj, A, D, bias, offs, tsl, dt_rank, nstate)
        p.out, p.ckpt = out.data_ptr(), ckpt.data_ptr()
        (lib.rdfa_scan_fwd_f64 if u.dtype == torch.float64 else lib.rdfa_scan_fwd_f32)(ctypes.byref(p))
        ctx.save_for_backward(u, delta, xdbl, proj, A, D, bias, ckpt)
        ctx.meta = (dt_rank, per_kernel_bc, concat)
        return out

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> Tuple[Optional[Tensor], ...]:
        lib = native.library()
        u, delta, xdbl, proj, A, D, bias, ckpt = ctx.saved_tensors
        dt_rank, per_kernel_bc, concat = ctx.meta
        k, s2, length, n = u.shape
        batch, nstate = s2 // 2, A.shape[1]
        chains = k * s2
        nthreads = max(1, torch.get_num_threads())
        dout = dout.to(u.dtype).contiguous()
        offs, tsl = _scan_addressing(k, batch, length, n, nstate, dt_rank, per_kernel_bc, concat)
        du, ddelta, dz = torch.empty_like(u), torch.empty_like(u), torch.empty_like(u)
        dA = u.new_empty(chains, n, nstate)
        dB = u.new_zeros(nthreads, chains, nstate, length)
        dC = u.new_zeros(nthreads, chains, nstate, length)
        dD, dbias = u.new_empty(chains, n), u.new_empty(chains, n)
        p = _scan_params(u, delta, xdbl, proj, A, D, bias, offs, tsl, dt_rank, nstate)
        p.nthreads = nthreads
        p.ckpt, p.dout = ckpt.data_ptr(), dout.data_ptr()
        p.du, p.ddelta, p.dz = du.data_ptr(), ddelta.data_ptr(), dz.data_ptr()
        p.grad_sb, p.grad_sl, p.grad_sd = length * n, n, 1
        p.dA, p.dB, p.dC, p.dD, p.dbias = dA.data_ptr(), dB.data_ptr(), dC.data_ptr(), dD.data_ptr(), dbias.data_ptr()
        (lib.rdfa_scan_bwd_f64 if u.dtype == torch.float64 else lib.rdfa_scan_bwd_f32)(ctypes.byref(p))

        dxdbl = torch.zeros_like(xdbl)
        for buf, lo in ((dB, dt_rank), (dC, dt_rank + nstate)):
            g = buf.sum(0).view(k, s2, nstate, length).transpose(-1, -2)        # [K, 2B, L, S]
            if per_kernel_bc:
                dxdbl[..., lo : lo + nstate] = g
            else:
                dxdbl[0, ..., lo : lo + nstate] = g.sum(0)
        dproj = torch.zeros_like(proj)
        dzs = dz.sum(0)                                                          # [2B, L, N]
        dproj[..., n : 2 * n] = dzs[:batch]
        dproj[..., 3 * n :] = dzs[batch:].flip(1)
        return du, ddelta, dxdbl, dproj, dA.sum(0), dD.sum(0), dbias.sum(0), None, None, None


def _scan_addressing(k: int, batch: int, length: int, n: int, nstate: int, dt_rank: int, per_kernel_bc: bool,
                     concat: bool) -> Tuple[Tensor, Tensor]:
    """Per-chain element offsets and time strides [K*2B, 7] (u, delta, z, out, dout, B, C) for StreamScan."""
    s2 = 2 * batch
    q = torch.arange(k * s2, dtype=torch.int64)
    i, s, b = q // s2, (q % s2) // batch, q % batch
    rev = s == 1
    zero = torch.zeros_like(q)
    x_width = dt_rank + 2 * nstate
    nat = q * length * n
    z_off = b * length * 4 * n + torch.where(rev, 3 * n + (length - 1) * 4 * n, n)
    z_sl = torch.where(rev, -4 * n, 4 * n)
    if concat:
        row = 2 * k * n
        o_off = b * length * row + (s * k + i) * n + torch.where(rev, (length - 1) * row, zero)
    else:
        row = 2 * n
        o_off = (i * batch + b) * length * row + s * n + torch.where(rev, (length - 1) * row, zero)
    o_sl = torch.where(rev, -row, row)
    src = q if per_kernel_bc else q % s2
    b_off = src * length * x_width + dt_rank
    offs = torch.stack([nat, nat, z_off, o_off, o_off, b_off, b_off + nstate], 1).contiguous()
    step = torch.full_like(q, n)
    xstep = torch.full_like(q, x_width)
    tsl = torch.stack([step, step, z_sl, o_sl, o_sl, xstep, xstep], 1).contiguous()
    return offs, tsl


def _scan_params(u: Tensor, delta: Tensor, xdbl: Tensor, proj: Tensor, A: Tensor, D: Tensor, bias: Tensor, offs: Tensor,
                 tsl: Tensor, dt_rank: int, nstate: int) -> "native._ScanParams":
    k, s2, length, n = u.shape
    p = native._ScanParams()
    p.batch, p.dim, p.len, p.nstate, p.chunk = k * s2, n, length, nstate, native.CHUNK
    p.softplus, p.nthreads = 1, max(1, torch.get_num_threads())
    p.u, p.delta, p.A, p.D, p.bias = u.data_ptr(), delta.data_ptr(), A.data_ptr(), D.data_ptr(), bias.data_ptr()
    p.z, p.B, p.C = proj.data_ptr(), xdbl.data_ptr(), xdbl.data_ptr()
    p.B_sn = p.C_sn = 1
    p.u_sd = p.delta_sd = p.z_sd = p.out_sd = p.dout_sd = p.grad_sd = 1
    p.boff, p.btsl = offs.data_ptr(), tsl.data_ptr()
    p._keep = (offs, tsl)
    return p


def packed_conv_params(kernel_sizes: Sequence[int], convs: Sequence[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    """The convs' (weight [N, 1, k_i], bias [N]) as weights [K, kmax, N] (kernel i's taps in rows 0..k_i-1) and
    biases [K, N]."""
    kmax = max(kernel_sizes)
    weight = torch.stack([F.pad(w[:, 0, :], (0, kmax - k)) for (w, _), k in zip(convs, kernel_sizes)])
    bias = torch.stack([b for _, b in convs])
    return weight.transpose(1, 2).contiguous(), bias


def bis6_fused(mixer: "BiS6", h: Tensor) -> Tensor:
    """``mixer(h)`` through the fused kernels: h [B, L, D] -> [B, L, D] (see the module docstring)."""
    r = mixer.dt_rank
    proj = mixer.in_proj(h)                                                   # [B, L, 4N] (bf16 under autocast)
    dtype = _compute_dtype(proj)
    proj = proj.to(dtype).contiguous()
    weight, bias = packed_conv_params(mixer.kernel_sizes, mixer.conv_params())
    # torch leaves Function.apply unannotated, hence the two no-untyped-call ignores
    u: Tensor = StreamConvs.apply(  # type: ignore[no-untyped-call]
        proj, weight.to(dtype), bias.to(dtype), mixer.kernel_sizes)          # [K, 2B, L, N]
    xdbl = F.linear(u, mixer.x_proj.weight)                                   # [K, 2B, L, R + 2S]
    delta = F.linear(xdbl[..., :r], mixer.dt_proj.weight)                     # [K, 2B, L, N]; bias in the scan
    with torch.autocast(device_type="cpu", enabled=False):
        A = -torch.exp(mixer.A_log.to(dtype))
        y: Tensor = StreamScan.apply(  # type: ignore[no-untyped-call]
            u, delta.to(dtype).contiguous(), xdbl.to(dtype).contiguous(), proj, A, mixer.D.to(dtype),
            mixer.dt_proj.bias.to(dtype), r, mixer.bc_source == "per_kernel", mixer.kernel_aggregation == "concat")
        if mixer.kernel_aggregation != "concat":
            y = y.sum(0)                                                      # [B, L, 2N]
    out: Tensor = mixer.out_proj(y)
    return out


def kernel_limit() -> Optional[int]:
    """Largest kernel size the fused conv kernel takes, or None without the native library."""
    lib = native._load()
    return None if lib is None else int(lib.rdfa_conv_kmax())
