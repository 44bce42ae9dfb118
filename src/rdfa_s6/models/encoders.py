"""Temporal encoders behind one interface: the seam where RDFA-S6 and its baselines differ.

Every encoder maps ``x [B, C_in, T]`` and ``mask [B, 1, T]`` (bool) to a feature pyramid: lists of
``num_levels`` tensors ``[B, D, T_l]`` and masks ``[B, 1, T_l]``, finest first, ``T_l = ceil(T_{l-1} / 2)``.
Encoders are registered by name with :func:`register_encoder` and built with :func:`build_encoder`.

- ``rdfa_s6``: embedding -> recurrent Dual Bi-S6 stem -> Bi-S6 branch (the paper's model; names match the
  official ``backbone.*`` keys).
- ``actionformer``: embedding -> 2 local-attention transformer blocks -> 5 downsampling ones (ActionFormer's
  THUMOS ``convTransformer``: 4 heads, window 19).
- ``actionmamba``: embedding -> 2 Bi-S6 (DBM, kernel 4) blocks -> 5 downsampling ones (video-mamba-suite's
  ActionMamba with ``MaskMambaBlock``).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict, List, Optional, Tuple, Type

from torch import Tensor, nn

from ..config.schema import ModelConfig
from ..ssm.bis6 import MixerFactory, make_bis6
from .attention import TransformerBlock
from .branch import BranchModule, MambaBlock, pyramid
from .embedding import EmbeddingModule
from .stem import DualBiS6Block, StemModule

ENCODERS: Dict[str, Type["Encoder"]] = {}

Pyramid = Tuple[List[Tensor], List[Tensor]]


def register_encoder(name: str) -> Callable[[Type["Encoder"]], Type["Encoder"]]:
    """Class decorator: make an encoder buildable by ``name`` (``model.encoder`` in the config)."""

    def wrap(cls: Type["Encoder"]) -> Type["Encoder"]:
        if name in ENCODERS:
            raise ValueError(f"encoder {name!r} is already registered by {ENCODERS[name].__name__}")
        ENCODERS[name] = cls
        cls.registry_name = name
        return cls

    return wrap


class Encoder(nn.Module):
    """Base class: ``forward(x [B, C_in, T], mask [B, 1, T]) -> (feats, masks)``, ``num_levels`` levels."""

    registry_name: str = ""
    num_levels: int

    @classmethod
    def from_config(cls, model: ModelConfig, input_dim: int, chan_pool_len: int) -> "Encoder":
        raise NotImplementedError


def build_encoder(model: ModelConfig, input_dim: int, chan_pool_len: int) -> Encoder:
    """The encoder named ``model.encoder``, built from the model config."""
    try:
        cls = ENCODERS[model.encoder]
    except KeyError:
        raise ValueError(f"unknown encoder {model.encoder!r}; registered: {', '.join(sorted(ENCODERS))}") from None
    return cls.from_config(model, input_dim, chan_pool_len)


def _embedding(model: ModelConfig, input_dim: int) -> EmbeddingModule:
    return EmbeddingModule(input_dim, model.embed_dim, model.embed_layers, model.embed_kernel_size)


def _mixer(model: ModelConfig) -> MixerFactory:
    """The Bi-S6 mixer builder with the model's shared settings (``model.mixer``, ``model.scan_backend``)."""
    x = model.mixer
    return partial(make_bis6, d_state=x.d_state, expand=x.expand, bc_source=x.bc_source,
                   kernel_aggregation=x.kernel_aggregation, freeze_dwconv=x.freeze_dwconv,
                   scan_backend=model.scan_backend)


@register_encoder("rdfa_s6")
class RDFAS6Encoder(Encoder):
    """RDFA-S6: ``embedding_module`` -> ``stem_module`` (Dual Bi-S6 x R) -> ``branch_module``
    (docs/model.md §3.2-3.5)."""

    def __init__(self, embedding: EmbeddingModule, stem: StemModule, branch: BranchModule) -> None:
        super().__init__()
        self.embedding_module, self.stem_module, self.branch_module = embedding, stem, branch
        self.num_levels = len(branch.blocks) + 1

    @classmethod
    def from_config(cls, model: ModelConfig, input_dim: int, chan_pool_len: int) -> "RDFAS6Encoder":
        s, b, mixer = model.stem, model.branch, _mixer(model)
        blocks = [] if s.kind == "none" else [
            DualBiS6Block(model.embed_dim, chan_pool_len, s.kernel_sizes, mixer, s.kind, s.drop_path,
                          s.layerscale_init)
        ]
        stem = StemModule(blocks, recurrences=s.recurrences, residual=s.residual)
        branch = BranchModule(model.embed_dim, b.levels, b.kernel_size, mixer, drop_path=b.drop_path,
                              layerscale_init=s.layerscale_init, downsample=b.downsample)
        return cls(_embedding(model, input_dim), stem, branch)

    def forward(self, x: Tensor, mask: Tensor) -> Pyramid:
        x, mask = self.embedding_module(x, mask)
        x, mask = self.stem_module(x, mask)
        return self.branch_module(x, mask)


class _StemBranchEncoder(Encoder):
    """Embedding, then ``stem`` blocks at full length, then ``branch`` blocks that each halve the length."""

    def __init__(self, embedding: EmbeddingModule, stem: List[nn.Module], branch: List[nn.Module]) -> None:
        super().__init__()
        self.embedding_module = embedding
        self.stem = nn.ModuleList(stem)
        self.branch = nn.ModuleList(branch)
        self.num_levels = len(branch) + 1

    def forward(self, x: Tensor, mask: Tensor) -> Pyramid:
        x, mask = self.embedding_module(x, mask)
        for block in self.stem:
            x, mask = block(x, mask)
        return pyramid(self.branch, x, mask)


@register_encoder("actionformer")
class ActionFormerEncoder(_StemBranchEncoder):
    """ActionFormer baseline: local window self-attention blocks (``model.baseline`` settings)."""

    @classmethod
    def from_config(cls, model: ModelConfig, input_dim: int, chan_pool_len: int) -> "ActionFormerEncoder":
        a, d = model.baseline, model.embed_dim

        def block(stride: int) -> TransformerBlock:
            return TransformerBlock(d, a.num_heads, a.window_size, stride, a.mlp_ratio, a.attn_drop_path)

        return cls(_embedding(model, input_dim), [block(1) for _ in range(a.stem_blocks)],
                   [block(2) for _ in range(model.branch.levels)])


@register_encoder("actionmamba")
class ActionMambaEncoder(_StemBranchEncoder):
    """ActionMamba (DBM) baseline: single-kernel Bi-S6 blocks, no recurrence, no channel branch."""

    @classmethod
    def from_config(cls, model: ModelConfig, input_dim: int, chan_pool_len: int) -> "ActionMambaEncoder":
        b, d, mixer = model.branch, model.embed_dim, _mixer(model)

        def block(downsample: Optional[str]) -> MambaBlock:
            return MambaBlock(d, b.kernel_size, mixer, b.drop_path, model.stem.layerscale_init, downsample)

        return cls(_embedding(model, input_dim), [block(None) for _ in range(model.baseline.stem_blocks)],
                   [block(b.downsample) for _ in range(b.levels)])
