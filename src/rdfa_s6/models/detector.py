"""The detector: encoder -> neck -> shared heads, plus the anchor points of every level (docs/model.md §1, 3).

:class:`DetectorNet` (the ``nn.Module``; :class:`rdfa_s6.Detector` is the Python API that wraps one) maps
``(feats [B, C, T], mask [B, 1, T])`` to per-level outputs (finest level first):
class logits, (left, right) distances in units of the level stride, masks and the points. Decoding to
segments, losses and NMS live in ``rdfa_s6.train`` / ``rdfa_s6.infer``. Top-level names (``backbone``,
``neck``, ``cls_head``, ``reg_head``) and everything below them match the official state dict.
"""
from __future__ import annotations

import warnings
from typing import Any, List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..config.schema import Config
from ..errors import ConfigError, DataError
from .blocks import zero_linear_conv_biases
from .encoders import build_encoder
from .heads import ClsHead, RegHead
from .neck import FPNIdentity
from .points import PointGenerator


class DetectorOutput(NamedTuple):
    """Per-level outputs, finest first (level l has stride ``2**l`` feature steps and length T_l).

    cls_logits: [B, T_l, num_classes] float, before the sigmoid.
    offsets: [B, T_l, 2] float >= 0, (left, right) distances in units of the level stride.
    masks: [B, T_l] bool, True on valid steps.
    points: [T_l, 4] float, rows ``[t, range_lo, range_hi, stride]`` with t in level-0 feature steps.
    """

    cls_logits: List[Tensor]
    offsets: List[Tensor]
    masks: List[Tensor]
    points: List[Tensor]


class DetectorNet(nn.Module):
    """RDFA-S6 (or a baseline encoder) with ActionFormer's neck and heads.

    Build it from a config with :func:`build_detector`. ``input_dim``/``num_classes``/``max_div_factor``
    (the padding multiple for inference, ``2**branch.levels``) are attributes.
    """

    def __init__(self, backbone: nn.Module, dim: int, input_dim: int, num_classes: int, max_seq_len: int,
                 max_buffer_len_factor: float, regression_ranges: List[List[float]], head_layers: int = 3,
                 head_kernel_size: int = 3, prior_prob: float = 0.01, empty_cls: Optional[List[int]] = None,
                 offset_bias_init: float = 0.0) -> None:
        super().__init__()
        self.input_dim, self.num_classes = input_dim, num_classes
        self.backbone = backbone
        num_levels = backbone.num_levels
        if len(regression_ranges) != num_levels:
            raise ValueError(f"{len(regression_ranges)} regression ranges for {num_levels} pyramid levels")
        self.strides = [2**level for level in range(num_levels)]
        self.max_div_factor = self.strides[-1]
        self.neck = FPNIdentity(dim, num_levels)
        self.point_generator = PointGenerator(max_seq_len, max_buffer_len_factor, self.strides, regression_ranges)
        self.cls_head = ClsHead(dim, num_classes, head_layers, head_kernel_size, prior_prob, empty_cls or ())
        self.reg_head = RegHead(dim, num_levels, head_layers, head_kernel_size, offset_bias_init)
        zero_linear_conv_biases(self.backbone)  # docs/model.md §3.9; dt_proj.bias is flagged and kept

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def forward(self, feats: Tensor, mask: Tensor) -> DetectorOutput:
        """feats: [B, C, T] float (C = input_dim, T in feature steps), mask: [B, 1, T] bool -> per-level outputs.

        Call the module (``model(feats, mask)``), as training and inference do, so that hooks, ``torch.compile``
        and DDP wrappers apply."""
        if feats.dim() != 3 or feats.shape[1] != self.input_dim:
            raise DataError(f"features must be [B, C={self.input_dim}, T], got shape {tuple(feats.shape)} "
                            f"(is data.input_dim right?)")
        if mask.shape != (feats.shape[0], 1, feats.shape[2]):
            raise DataError(f"mask must be [B, 1, T] = {(feats.shape[0], 1, feats.shape[2])}, got {tuple(mask.shape)}")
        mask = mask.bool()
        pyramid, masks = self.backbone(feats, mask)
        pyramid, masks = self.neck(pyramid, masks)
        cls_logits = self.cls_head(pyramid, masks)
        offsets = self.reg_head(pyramid, masks)
        points = self.point_generator([x.shape[-1] for x in pyramid])
        return DetectorOutput(cls_logits, offsets, [m[:, 0] for m in masks], points)

    def forward_raw(self, feats: Tensor, mask: Tensor) -> DetectorOutput:
        """:meth:`forward` without the module machinery (hooks); kept for code written against it."""
        return self.forward(feats, mask)


def build_detector(cfg: Config, input_dim: Optional[int] = None, num_classes: Optional[int] = None) -> DetectorNet:
    """The detector described by ``cfg``; ``input_dim``/``num_classes`` override ``cfg.data`` (e.g. inferred
    from the data). A class-agnostic config always has one class.

    The initial weights are drawn from a copy of torch's global CPU generator: building a model leaves the
    global random state as it was (seed it, or ``torch.random.fork_rng``, to choose the initialisation)."""
    input_dim = input_dim if input_dim is not None else cfg.data.input_dim
    if input_dim is None:
        raise ConfigError("the feature dimension is unknown: set data.input_dim or infer it from the data")
    if cfg.data.class_agnostic:
        num_classes = 1
    elif num_classes is None:
        num_classes = cfg.data.num_classes
    if num_classes is None:
        raise ConfigError("the number of classes is unknown: set data.num_classes or infer it from the annotations")
    m = cfg.model
    with torch.random.fork_rng(devices=[]):  # leaves torch's global generator as it was
        backbone = build_encoder(m, int(input_dim), cfg.chan_pool_len)
        return DetectorNet(
            backbone, m.embed_dim, int(input_dim), int(num_classes), cfg.data.max_seq_len, m.max_buffer_len_factor,
            m.regression_ranges, m.head.num_layers, m.head.kernel_size, m.head.prior_prob, list(m.head.empty_cls),
            m.head.offset_bias_init,
        )


def deprecated_name(module: str, name: str) -> Any:
    """``Detector``, the old name of :class:`DetectorNet` (it clashed with :class:`rdfa_s6.Detector`, the API):
    still importable from ``rdfa_s6.models`` for one release, with a DeprecationWarning."""
    if name == "Detector":
        warnings.warn("rdfa_s6.models.Detector is now rdfa_s6.models.DetectorNet (rdfa_s6.Detector is the Python "
                      "API); the old name will be removed in the next release", DeprecationWarning, stacklevel=3)
        return DetectorNet
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)
