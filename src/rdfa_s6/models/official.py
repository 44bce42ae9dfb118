"""Key mapping between the official RDFA-S6 state dict and rdfa-s6's :class:`~rdfa_s6.models.Detector`.

rdfa-s6 names its modules exactly as the official code does, so the mapping is the identity and the
THUMOS-14 preset's state dict has the official 129 keys in the official order (checked by
``tests/test_models.py`` against ``official_state_dict_thumos14.txt``). The table documents which class owns
each official prefix; :data:`RENAMES` lists (official prefix, rdfa-s6 prefix) pairs and is empty today; add
pairs there if a module is ever renamed, and both directions below keep working.

| official prefix                                  | rdfa-s6 module                                      |
|--------------------------------------------------|-----------------------------------------------------|
| ``backbone.embedding_module.conv_{i}/ln_{i}``     | ``EmbeddingModule`` (nn.Conv1d no bias, nn.LayerNorm) |
| ``backbone.stem_module.blocks.0.ln``              | ``DualBiS6Block.ln`` (nn.LayerNorm)                 |
| ``backbone.stem_module.blocks.0.t_mamba.*``       | ``DualBiS6Block.t_mamba`` (BiS6, kernels 2/3/4)     |
| ``backbone.stem_module.blocks.0.c_mamba.*``       | ``DualBiS6Block.c_mamba`` (BiS6, d_model = chan_pool_len) |
| ``backbone.stem_module.blocks.0.drop_path.scale`` | ``AffineDropPath.scale`` (1, D, 1)                  |
| ``backbone.branch_module.blocks.{l}.mamba/ln/drop_path`` | ``MambaBlock`` (BiS6 kernel 4)              |
| ``neck.fpn_norms.{l}``                            | ``FPNIdentity`` (ChannelLayerNorm, (1, D, 1))       |
| ``cls_head.head.{i}.conv``, ``cls_head.norm.{i}``, ``cls_head.cls_head.conv`` | ``ClsHead``    |
| ``reg_head.head.{i}.conv``, ``reg_head.norm.{i}``, ``reg_head.scale.{l}.scale``, ``reg_head.offset_head.conv`` | ``RegHead`` |

Inside a BiS6 the names are Mamba's: ``in_proj``, ``conv1ds.{k}``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``. The point generator's buffers are not persistent (neither are they in the official code).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple, TypeVar

V = TypeVar("V")

#: (official prefix, rdfa-s6 prefix); empty because the names are identical
RENAMES: List[Tuple[str, str]] = []


def _rename(key: str, pairs: List[Tuple[str, str]]) -> str:
    for src, dst in pairs:
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    return key


def from_official_keys(state: Mapping[str, V]) -> Dict[str, V]:
    """An official state dict with its keys renamed to rdfa-s6's (order kept)."""
    return {_rename(k, RENAMES): v for k, v in state.items()}


def to_official_keys(state: Mapping[str, V]) -> Dict[str, V]:
    """An rdfa-s6 state dict with its keys renamed to the official ones (order kept)."""
    return {_rename(k, [(b, a) for a, b in RENAMES]): v for k, v in state.items()}
