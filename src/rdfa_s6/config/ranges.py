"""The range of every numeric config key, in one table: :data:`RANGES` maps each dotted key of
:mod:`rdfa_s6.config.schema` whose values are numbers (``int``/``float``, also inside ``Optional`` and lists) to
the interval its values must lie in. :func:`check_ranges` applies it to a built config before the cross-field
rules of :mod:`.checks`: every float must be finite (no ``nan``, no ``inf``) and every number within its range,
else one :class:`rdfa_s6.errors.ConfigError` line naming the key. ``null`` (where the schema allows it) is not
checked. A list's range applies to each element. ``tests/test_hostile_numbers.py`` walks the schema and checks
that every numeric field has its entry here.

Bounds: counts and lengths are >= 0 or >= 1 as their meaning needs; probabilities and thresholds in [0, 1];
strides, frame rates and lengths positive; upper bounds are far beyond any real dataset or network and keep
numbers where the arithmetic stays finite and allocations stay possible.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Tuple, Union

from ..errors import ConfigError
from ..messages import shown
from .schema import Config


@dataclass(frozen=True)
class Range:
    """An interval ``[lo, hi]``; an end is open with ``lo_open``/``hi_open``."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"


def _num(x: float) -> str:
    if isinstance(x, int):
        return str(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else f"{x:g}"


UNIT = Range(0, 1)  #: probabilities, fractions, thresholds
DROP = Range(0, 1, hi_open=True)  #: drop probabilities, decays: 1 would drop or freeze everything
POSITIVE_FRAMES = Range(0, 1e5, lo_open=True)  #: frames between features, clip lengths
FPS = Range(1e-3, 1000)  #: frames per second
LAYERS = Range(1, 64)
KERNEL = Range(1, 255)
SEED = Range(0, 2**63 - 1)
ANY = Range(-math.inf, math.inf)  #: finite, nothing more (only for a key missing from the table)

#: dotted key -> the range of its values (each element of a list)
RANGES: Dict[str, Range] = {
    # data
    "data.feat_stride": POSITIVE_FRAMES,
    "data.num_frames": Range(0, 1e5),
    "data.downsample_rate": Range(1, 1000),
    "data.default_fps": FPS,
    "data.max_seq_len": Range(1, 2**20),
    "data.trunc_thresh": UNIT,
    "data.crop_ratio": Range(0, 1, lo_open=True),
    "data.input_dim": Range(1, 2**16),
    "data.num_classes": Range(1, 10**5),
    # model
    "model.embed_dim": Range(1, 2**16),
    "model.embed_layers": LAYERS,
    "model.embed_kernel_size": KERNEL,
    "model.stem.recurrences": Range(0, 64),
    "model.stem.kernel_sizes": KERNEL,
    "model.stem.chan_pool_len": Range(1, 2**20),
    "model.stem.drop_path": DROP,
    "model.stem.layerscale_init": Range(0, 10),
    "model.branch.levels": Range(0, 16),
    "model.branch.kernel_size": KERNEL,
    "model.branch.drop_path": DROP,
    "model.mixer.d_state": Range(1, 1024),
    "model.mixer.expand": Range(1, 16),
    "model.baseline.stem_blocks": Range(0, 64),
    "model.baseline.num_heads": Range(1, 1024),
    "model.baseline.window_size": Range(3, 2**20),
    "model.baseline.mlp_ratio": Range(1, 64),
    "model.baseline.attn_drop_path": DROP,
    "model.regression_ranges": Range(0, 1e9),  # feature steps of level 0
    "model.max_buffer_len_factor": Range(0, 1000, lo_open=True),
    "model.head.num_layers": LAYERS,
    "model.head.kernel_size": KERNEL,
    "model.head.prior_prob": Range(0, 1, lo_open=True, hi_open=True),
    "model.head.empty_cls": Range(0, 10**5),
    "model.head.offset_bias_init": Range(-100, 100),
    # train
    "train.epochs": Range(0, 10**5),
    "train.batch_size": Range(1, 2**16),
    "train.lr": Range(0, 1e30),  # finite in float32; a diverging run stops cleanly (tests/test_train_robustness.py)
    "train.weight_decay": Range(0, 10),
    "train.warmup_epochs": Range(0, 10**5),
    "train.clip_grad": Range(-1, 1e6),  # 0 or less: no clipping
    "train.ema_decay": DROP,
    "train.seed": SEED,
    "train.init_loss_norm": Range(0, 1e9, lo_open=True),
    "train.center_sample_radius": Range(0, 1000),
    "train.label_smoothing": DROP,
    "train.loss_weight": Range(-1, 1000),  # 0 or less: auto-balanced
    "train.num_workers": Range(0, 256),
    # infer
    "infer.pre_nms_thresh": UNIT,
    "infer.pre_nms_topk": Range(1, 10**7),
    "infer.duration_thresh": Range(0, 1e6),  # feature steps
    "infer.nms_sigma": Range(0, 100, lo_open=True),
    "infer.iou_threshold": UNIT,
    "infer.min_score": UNIT,
    "infer.max_seg_num": Range(1, 10**6),
    "infer.voting_thresh": UNIT,
    "infer.ext_topk": Range(1, 10**5),
    # eval
    "eval.tiou_thresholds": Range(0, 1, lo_open=True),
}


def _numeric(hint: Any) -> bool:
    """Whether a schema type holds numbers: int or float, possibly inside Optional or (nested) lists."""
    if hint in (int, float):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin in (list, List):
        return any(_numeric(a) for a in args if a is not type(None))
    return False


def numeric_fields(cls: type = Config, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``(dotted key, schema type)`` of every numeric field of the schema (nested sections walked)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from numeric_fields(hint, dotted)
        elif _numeric(hint):
            yield dotted, hint


def _leaves(value: Any, where: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{where}[{i}]")
    elif value is not None:
        yield where, value


def check_ranges(cfg: Config, source: str = "config") -> None:
    """ConfigError naming the key for the first number that is not finite or not within its range."""
    for dotted, _ in numeric_fields():
        node: Any = cfg
        for part in dotted.split("."):
            node = getattr(node, part)
        valid = RANGES.get(dotted, ANY)  # tests/test_hostile_numbers.py checks that every key has its range
        for where, value in _leaves(node, dotted):
            if value not in valid:
                finite = "a finite number " if isinstance(value, float) and not math.isfinite(value) else ""
                raise ConfigError(f"{source}: config key {where!r}: must be {finite}in {valid}, got {shown(value)}")
