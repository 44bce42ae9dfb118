"""Small building blocks shared by the encoders, neck and heads (ActionFormer conventions).

Layout: features are ``[B, C, T]`` float, masks ``[B, 1, T]`` bool (True on valid feature steps).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a ``[B, C, T]`` tensor; weight and bias are shaped ``(1, C, 1)``."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels, self.eps = num_channels, eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, T] -> [B, C, T]; computed in float32 (or float64) when x is a half type (autocast)."""
        dtype = x.dtype
        if dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        mu = x.mean(dim=1, keepdim=True)
        res = x - mu
        var = res.pow(2).mean(dim=1, keepdim=True)
        out = res / torch.sqrt(var + self.eps) * self.weight + self.bias
        return out.to(dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


def downsample_mask(mask: Tensor, stride: int) -> Tensor:
    """Keep every ``stride``-th step of a ``[B, 1, T]`` mask -> ``[B, 1, ceil(T / stride)]``.

    Equal to nearest interpolation to ``T // stride`` when ``stride`` divides T (the official rule), and
    the same length as ``MaxPool1d(3, 2, 1)``'s output when it does not (bug 8.2 #8 fixed).
    """
    return mask[:, :, ::stride] if stride > 1 else mask


class MaskedConv1D(nn.Module):
    """Conv1d followed by multiplication with the (detached) mask; inputs are not masked beforehand.

    The conv is ``self.conv`` so that parameters are named ``conv.weight``/``conv.bias`` (official layout).
    Its bias, if any, starts at zero.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """x: [B, C_in, T], mask: [B, 1, T] bool -> ([B, C_out, T'], [B, 1, T'] bool), T' = ceil(T / stride)."""
        out = self.conv(x)
        out_mask = downsample_mask(mask, self.stride)
        return out * out_mask.detach().to(out.dtype), out_mask


class Scale(nn.Module):
    """A learnable scalar (parameter ``scale`` of shape ``()``), multiplied onto the input."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def drop_path(x: Tensor, drop_prob: float, training: bool) -> Tensor:
    """Stochastic depth per sample: zero whole samples with probability ``drop_prob``, rescale the rest.

    Draws from torch's global generator (the official behaviour); training uses :class:`DropPathKey` instead."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    keep = torch.rand(shape, dtype=x.dtype, device=x.device).add_(keep_prob).floor_()
    return x / keep_prob * keep


def keyed_uniform(seed: int, step: int, call: int, position: int) -> float:
    """A uniform number in [0, 1) that depends on its four keys only (NumPy's SeedSequence hashing)."""
    return float(np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, step, call, position]).random())


class DropPathKey:
    """Drop-path decisions that do not depend on how the global batch is split over processes.

    :func:`drop_path` draws one number per sample from torch's global generator. Under ``torchrun`` every
    process draws for its own slice of the batch from its own copy of that generator, so a 2-process run would
    drop other samples than a 1-process run with the same global batch; and anything else that touches the
    global generator (a DataLoader iterator created on resume) would shift every later decision.

    With a key (given to the modules by :func:`key_drop_path`), the keep decision of a sample is a pure function
    of ``(seed, global step, position of the sample in the global batch, index of the drop-path call within
    the forward pass)`` (docs/model.md §4.5). The distribution is :func:`drop_path`'s: a sample is kept with
    probability ``1 - p`` and kept samples are scaled by ``1 / (1 - p)``.

    Call :meth:`begin` before every training forward.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.step = 0
        self.positions: List[int] = []
        self.calls = 0

    def begin(self, step: int, positions: Sequence[int]) -> None:
        """The next forward is global step ``step`` (0-based) on the samples at ``positions`` of its global batch."""
        self.step, self.positions, self.calls = int(step), [int(p) for p in positions], 0

    def keep(self, drop_prob: float, x: Tensor) -> Tensor:
        """The keep mask ``[B, 1, ..., 1]`` (0. or 1., dtype and device of ``x``) of the next drop-path call."""
        call = self.calls
        self.calls += 1
        if len(self.positions) != x.shape[0]:
            raise RuntimeError(f"drop path: {x.shape[0]} samples in the batch, but begin() named "
                               f"{len(self.positions)} positions")
        keep = [1.0 if keyed_uniform(self.seed, self.step, call, p) >= drop_prob else 0.0 for p in self.positions]
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        return torch.tensor(keep, dtype=x.dtype, device=x.device).view(shape)


class AffineDropPath(nn.Module):
    """Per-channel scale (LayerScale, parameter ``scale`` shaped ``(1, C, 1)``) then per-sample drop path.

    The scale parameter always exists, also when ``drop_prob`` is 0, so that the parameter set does not
    depend on the drop-path rate. In training mode the drop decisions come from ``key`` (a :class:`DropPathKey`
    shared by all the model's drop-path modules, set by :func:`key_drop_path`) or, without one, from torch's
    global generator (:func:`drop_path`). Evaluation mode only applies the scale.
    """

    def __init__(self, num_channels: int, drop_prob: float = 0.0, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.scale = nn.Parameter(torch.full((1, num_channels, 1), float(init_scale)))
        self.key: Optional[DropPathKey] = None

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, T] -> [B, C, T]."""
        x = self.scale * x
        if self.key is None or not self.training or self.drop_prob == 0.0:
            return drop_path(x, self.drop_prob, self.training)
        return x / (1.0 - self.drop_prob) * self.key.keep(self.drop_prob, x)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def key_drop_path(model: nn.Module, key: Optional[DropPathKey]) -> int:
    """Give every :class:`AffineDropPath` below ``model`` the shared ``key`` (None: back to torch's global
    generator); returns how many modules drop paths (``drop_prob`` > 0)."""
    modules = [m for m in model.modules() if isinstance(m, AffineDropPath)]
    for module in modules:
        module.key = key
    return sum(m.drop_prob > 0 for m in modules)


#: 2x temporal poolings by name (the values of ``model.branch.downsample``): ``[B, C, T] -> [B, C, ceil(T/2)]``
DOWNSAMPLERS: Dict[str, Callable[[], nn.Module]] = {
    "maxpool": lambda: nn.MaxPool1d(3, stride=2, padding=1),
    "avgpool": lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
}


class Downsample(nn.Module):
    """2x temporal downsampling of features and mask: ``MaxPool1d(3, 2, 1)`` (official) or ``AvgPool1d``
    (any pooling of :data:`DOWNSAMPLERS`).

    Output length is ``ceil(T / 2)`` for any T; the output is multiplied by the downsampled mask.
    """

    def __init__(self, kind: str = "maxpool") -> None:
        super().__init__()
        if kind not in DOWNSAMPLERS:
            raise ValueError(f"downsample must be one of {', '.join(DOWNSAMPLERS)}, got {kind!r}")
        self.pool: nn.Module = DOWNSAMPLERS[kind]()
        self.kind = kind

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """x: [B, C, T], mask: [B, 1, T] -> [B, C, ceil(T/2)], [B, 1, ceil(T/2)]."""
        out_mask = downsample_mask(mask, 2)
        return self.pool(x) * out_mask.to(x.dtype), out_mask

    def extra_repr(self) -> str:
        return self.kind


def zero_linear_conv_biases(module: nn.Module) -> None:
    """Zero every ``nn.Linear``/``nn.Conv1d`` bias below ``module``, except biases flagged ``_no_reinit``
    (the Mamba ``dt_proj.bias``); the official backbone init hook (docs/model.md §3.9)."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv1d)) and sub.bias is not None:
            if not getattr(sub.bias, "_no_reinit", False):
                with torch.no_grad():
                    sub.bias.zero_()


__all__ = [
    "AffineDropPath",
    "ChannelLayerNorm",
    "Downsample",
    "DropPathKey",
    "MaskedConv1D",
    "Scale",
    "downsample_mask",
    "drop_path",
    "key_drop_path",
    "keyed_uniform",
    "zero_linear_conv_biases",
]
