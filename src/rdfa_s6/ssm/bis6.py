"""Bi-S6 and FA-Bi-S6: the bidirectional multi-kernel selective-state-space mixer of RDFA-S6 (docs/model.md §3.3).

Notation (docs/model.md §3.3): D = d_model, N = expand * D, S = d_state, R = dt_rank, K kernels of sizes k_1..k_K.
For an input h [B, L, D]:

1. ``P = in_proj(h)`` [B, L, 4N]; channels [0:2N] form the forward stream, [2N:4N] reversed in time the
   backward stream; the two are stacked on the batch axis [2B, L, 2N], each split into ``x`` and gate ``z``.
2. per kernel i: ``u_i = SiLU(causal_dwconv_{k_i}(x))``, ``[dt_i | B_i | C_i] = x_proj(u_i)``,
   ``delta_i = softplus(dt_proj(dt_i))`` (the bias and softplus are applied inside the scan).
3. ``o_i = scan(u_i, delta_i, A = -exp(A_log), B_*, C_*, D, gate z)`` with ``B_* = B_1, C_* = C_1`` when
   ``bc_source="first"`` (the official quirk) or ``B_i, C_i`` when ``"per_kernel"``.
4. kernels aggregated (``concat``: [2B, K N, L], official; ``sum``: [2B, N, L]), the backward stream reversed
   back, streams concatenated on channels as [fwd k1..kK, bwd k1..kK], then ``out_proj`` -> [B, L, D].

The two directions share every parameter except the halves of ``in_proj`` and the column blocks of
``out_proj`` (video-mamba-suite's "DBM" design). All K kernels and both directions go through one scan call.
Parameter names follow Mamba (``in_proj``, ``conv1ds.{i}``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``), so official weights map one to one.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Protocol, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .scan import resolve_backend, selective_scan
from .settings import fused_setting, scan_backend_setting

BC_SOURCES = ("first", "per_kernel")
AGGREGATIONS = ("concat", "sum")


class BiS6(nn.Module):
    """Bidirectional (FA-)Bi-S6 mixer: [B, L, D] -> [B, L, D].

    Args:
        d_model: D, channels of the input and output.
        d_state: S, state size per channel.
        expand: N = expand * D inner channels.
        dt_rank: R, rank of the step-size projection; ``"auto"`` = ceil(D / 16).
        kernel_sizes: causal depthwise conv sizes, one scan per kernel; ``(2, 3, 4)`` is FA-Bi-S6.
        bc_source: ``"first"`` (B, C from the first kernel, official) or ``"per_kernel"``.
        kernel_aggregation: ``"concat"`` (official) or ``"sum"`` of the kernel outputs before ``out_proj``.
        freeze_dwconv: keep the depthwise convs at their initial values (the official training never
            updated them, docs/model.md §4.7).
        dt_min, dt_max, dt_init_floor: range of the initial step sizes (docs/model.md §3.3).
        scan_backend: selective-scan backend, None for ``$RDFA_S6_SCAN`` or else automatic
            (:mod:`rdfa_s6.ssm.settings`, :func:`rdfa_s6.ssm.selective_scan`).
        fused: on CPU, when the scan backend resolves to ``native``, run through the fused kernels of
            :mod:`rdfa_s6.ssm.fused` (same values and gradients, none of the flips and layout copies); False
            for the reference composition of torch ops; None for ``$RDFA_S6_FUSED`` (default on).

    Both settings are read when the mixer is built (the attributes ``scan_backend`` and ``fused``), never from
    the environment at each forward.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        expand: int = 1,
        dt_rank: Union[int, str] = "auto",
        kernel_sizes: Sequence[int] = (4,),
        bc_source: str = "first",
        kernel_aggregation: str = "concat",
        freeze_dwconv: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        scan_backend: Optional[str] = None,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__()
        if bc_source not in BC_SOURCES:
            raise ValueError(f"bc_source must be one of {BC_SOURCES}, got {bc_source!r}")
        if kernel_aggregation not in AGGREGATIONS:
            raise ValueError(f"kernel_aggregation must be one of {AGGREGATIONS}, got {kernel_aggregation!r}")
        if not kernel_sizes or any(int(k) < 1 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive integers, got {tuple(kernel_sizes)}")
        self.d_model, self.d_state = d_model, d_state
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.bc_source, self.kernel_aggregation = bc_source, kernel_aggregation
        self.scan_backend: str = scan_backend_setting(scan_backend)
        self.fused: bool = fused_setting(fused)
        n, num_k = self.d_inner, len(self.kernel_sizes)

        self.in_proj = nn.Linear(d_model, 4 * n, bias=False)
        self.conv1ds = nn.ModuleList(nn.Conv1d(n, n, k, groups=n, bias=True) for k in self.kernel_sizes)
        self.x_proj = nn.Linear(n, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, n, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(n, 1))
        self.D = nn.Parameter(torch.ones(n))
        out_in = 2 * n * (num_k if kernel_aggregation == "concat" else 1)
        self.out_proj = nn.Linear(out_in, d_model, bias=False)
        self._init_dt(dt_min, dt_max, dt_init_floor)
        for weight, bias in self.conv_params():
            nn.init.zeros_(bias)  # the official backbone hook zeroes them (docs/model.md §3.9)
            if freeze_dwconv:
                weight.requires_grad_(False)
                bias.requires_grad_(False)

    def _init_dt(self, dt_min: float, dt_max: float, dt_init_floor: float) -> None:
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():  # inverse of softplus, so that softplus(bias) = dt
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]

    def forward(self, h: Tensor) -> Tensor:
        """h: [B, L, D] -> [B, L, D]."""
        if self.fused and h.device.type == "cpu" and resolve_backend(h.device, self.scan_backend) == "native":
            from . import fused

            if fused.usable(self, h):
                return fused.bis6_fused(self, h)
        return self._forward_reference(h)

    def _forward_reference(self, h: Tensor) -> Tensor:
        """The mixer as a composition of torch ops and one :func:`selective_scan` call (any device/backend)."""
        batch, length, _ = h.shape
        n, s, r, num_k = self.d_inner, self.d_state, self.dt_rank, len(self.kernel_sizes)
        proj = self.in_proj(h)                                                  # [B, L, 4N]
        streams = torch.cat([proj[..., : 2 * n], proj[..., 2 * n :].flip(1)])  # [2B, L, 2N]: fwd; bwd reversed
        x, z = streams[..., :n], streams[..., n:]                              # [2B, L, N] each

        u = F.silu(self._causal_convs(x))                                       # [K, 2B, L, N]
        dt, b_in, c_out = self.x_proj(u).split([r, s, s], dim=-1)               # [K, 2B, L, R | S | S]
        delta = F.linear(dt, self.dt_proj.weight)                              # [K, 2B, L, N]; bias in the scan
        if self.bc_source == "first":  # the official quirk: every kernel scans with B_1, C_1
            b_in, c_out = b_in[:1].expand_as(b_in), c_out[:1].expand_as(c_out)

        # all kernels and both directions in one scan call: batch index = kernel * 2B + stream;
        # [K*2B, c, L] views of [K*2B, L, c]-contiguous tensors, the layout the native kernel reads directly
        def flat(t: Tensor) -> Tensor:
            return t.reshape(num_k * 2 * batch, length, t.shape[-1]).transpose(1, 2)

        y = selective_scan(
            flat(u), flat(delta), -torch.exp(self.A_log), flat(b_in), flat(c_out),
            D=self.D, z=flat(z.expand(num_k, -1, -1, -1)), delta_bias=self.dt_proj.bias,
            delta_softplus=True, backend=self.scan_backend,
        )                                                                       # [K*2B, N, L]
        y = y.view(num_k, 2 * batch, n, length)
        if self.kernel_aggregation == "concat":
            y = y.permute(1, 0, 2, 3).reshape(2 * batch, num_k * n, length)    # [2B, K N, L], k1..kK
        else:
            y = y.sum(0)                                                        # [2B, N, L]
        fwd, bwd = y[:batch], y[batch:].flip(-1)
        out: Tensor = self.out_proj(torch.cat([fwd, bwd], dim=1).transpose(1, 2))  # [B, L, D]
        return out

    def conv_params(self) -> List[Tuple[Tensor, Tensor]]:
        """Each kernel's depthwise conv as (weight [N, 1, k_i], bias [N])."""
        out = []
        for conv in self.conv1ds:
            assert isinstance(conv, nn.Conv1d) and conv.bias is not None
            out.append((conv.weight, conv.bias))
        return out

    def _causal_convs(self, x: Tensor) -> Tensor:
        """Every kernel's causal depthwise conv at once: x [S, L, N] -> [K, S, L, N] (see :class:`CausalDWConvs`)."""
        params = [t for pair in self.conv_params() for t in pair]
        out: Tensor = CausalDWConvs.apply(  # type: ignore[no-untyped-call]  # Function.apply is unannotated in torch
            x, self.kernel_sizes, *params)
        return out

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, d_inner={self.d_inner}, dt_rank={self.dt_rank}, "
            f"kernel_sizes={self.kernel_sizes}, bc_source={self.bc_source!r}, "
            f"kernel_aggregation={self.kernel_aggregation!r}"
        )


class MixerFactory(Protocol):
    """Builds one mixer ``[B, L, d_model] -> [B, L, d_model]`` with the given causal conv kernel sizes.

    The blocks of a model take one (every mixer of a model shares its settings); :func:`make_bis6` with its
    settings bound (``functools.partial``) is the usual one.
    """

    def __call__(self, d_model: int, kernel_sizes: Sequence[int]) -> nn.Module: ...


def make_bis6(
    d_model: int,
    kernel_sizes: Sequence[int],
    *,
    d_state: int = 16,
    expand: int = 1,
    bc_source: str = "first",
    kernel_aggregation: str = "concat",
    freeze_dwconv: bool = False,
    scan_backend: Optional[str] = None,
    fused: Optional[bool] = None,
) -> BiS6:
    """A (FA-)Bi-S6 mixer [B, L, d_model] -> [B, L, d_model]; the keyword settings are :class:`BiS6`'s."""
    return BiS6(
        d_model,
        d_state=d_state,
        expand=expand,
        kernel_sizes=tuple(kernel_sizes),
        bc_source=bc_source,
        kernel_aggregation=kernel_aggregation,
        freeze_dwconv=freeze_dwconv,
        scan_backend=scan_backend,
        fused=fused,
    )


class CausalDWConvs(torch.autograd.Function):
    """K causal depthwise convolutions of one input, in the [S, L, N] layout: x [S, L, N] -> [K, S, L, N].

    ``out[i, :, t] = b_i + sum_j w_i[:, j] * x[:, t - (k_i - 1) + j]`` (zeros before the start): the sums of
    ``F.conv1d(F.pad(x^T, (k_i - 1, 0)), w_i, b_i, groups=N)``, computed as k_i shifted multiply-adds per kernel,
    with no [S, N, L] transposes, and a hand-written backward (the same shifted multiply-adds and per-tap
    reductions), several times faster on CPU than autograd over PyTorch's depthwise convolution.
    Args after ``kernel_sizes`` are the convs' weights [N, 1, k_i] and biases [N], alternating.
    """

    # ctx: Any as in torch's own signature of forward/backward (a context object that takes attributes)
    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel_sizes: Sequence[int], *params: Tensor) -> Tensor:
        weights, biases = params[0::2], params[1::2]
        kmax, length = max(kernel_sizes), x.shape[1]
        xp = F.pad(x, (0, 0, kmax - 1, 0))                                    # [S, L + kmax - 1, N]
        out = x.new_empty((len(kernel_sizes),) + tuple(x.shape))
        for o, w, b, k in zip(out, weights, biases, kernel_sizes):
            o.copy_(b.expand_as(o))
            for j in range(k):                                               # tap j reads step t - (k - 1) + j
                start = kmax - k + j
                o.addcmul_(xp[:, start : start + length], w[:, 0, j])
        ctx.kernel_sizes = tuple(kernel_sizes)
        ctx.save_for_backward(xp, *weights)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        xp, *weights = ctx.saved_tensors
        kernel_sizes, kmax = ctx.kernel_sizes, max(ctx.kernel_sizes)
        length = grad.shape[2]
        need_x = ctx.needs_input_grad[0]
        grad_xp = torch.zeros_like(xp) if need_x else None
        param_grads: List[Optional[Tensor]] = []
        for i, (g, w, k) in enumerate(zip(grad, weights, kernel_sizes)):
            want_w, want_b = ctx.needs_input_grad[2 + 2 * i], ctx.needs_input_grad[3 + 2 * i]
            grad_w = torch.zeros_like(w) if want_w else None
            for j in range(k):
                start = kmax - k + j
                if grad_xp is not None:
                    grad_xp[:, start : start + length].addcmul_(g, w[:, 0, j])
                if grad_w is not None:
                    grad_w[:, 0, j] = (g * xp[:, start : start + length]).sum((0, 1))
            param_grads += [grad_w, g.sum((0, 1)) if want_b else None]
        grad_x = grad_xp[:, kmax - 1 :] if grad_xp is not None else None
        return (grad_x, None, *param_grads)
