"""The typed configuration schema: one dataclass per section, defaults = the official THUMOS-14 values.

Units: lengths such as ``max_seq_len``, ``regression_ranges`` and ``chan_pool_len`` are in **feature steps**
(one step = ``feat_stride * downsample_rate`` frames); ``duration_thresh`` is in feature steps too;
``default_fps`` is frames per second. Fields with a fixed set of values list it in ``metadata["choices"]``;
fields whose values are the names of a registry (encoders, scan backends, stem kinds, residuals, ``bc_source``,
kernel aggregations, downsamplers) name that registry in ``metadata["registry"]`` instead, read (imported) only
when a config is checked, so that importing this module stays torch-free and a name registered from outside
the package is accepted without editing the schema. :func:`choices_of` gives either list;
:mod:`rdfa_s6.config.checks` checks them together with the cross-field rules.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


def _choices(*values: str) -> dict:
    return {"choices": values}


def _registry(module: str, name: str) -> dict:
    """The field's values are the names (keys) of ``module.name``, a dict or tuple beside the code that uses them."""
    return {"registry": (module, name)}


def choices_of(f: "dataclasses.Field") -> Optional[Tuple[str, ...]]:
    """The values field ``f`` accepts: its fixed ``choices``, or the names its registry holds now (imported
    here, at validation time); None for a free field."""
    if "registry" in f.metadata:
        module, name = f.metadata["registry"]
        return tuple(getattr(importlib.import_module(module), name))
    choices = f.metadata.get("choices")
    return tuple(choices) if choices else None


@dataclass
class DataConfig:
    """Where the annotations and features are and how they are turned into model inputs (docs/model.md §2)."""

    annotation_file: Optional[str] = None  #: ActionFormer-style JSON (docs/model.md §2.1)
    feature_dir: Optional[str] = None  #: folder of per-video feature files, each [T, C]
    file_prefix: str = ""  #: feature file = feature_dir / (prefix + video_id + suffix + ext)
    file_suffix: str = ""
    file_ext: str = ".pt"
    feat_stride: float = 4.0  #: frames between two feature steps (before downsample_rate)
    num_frames: float = 16.0  #: frames seen by one feature (clip length)
    downsample_rate: int = 1  #: keep every n-th feature step
    default_fps: Optional[float] = None  #: null = per-video ``fps`` from the JSON
    max_seq_len: int = 2304  #: training length (feature steps); every batch is padded to it
    force_upsampling: bool = False  #: resize every video to exactly max_seq_len steps (ActivityNet)
    trunc_thresh: float = 0.5  #: a cropped GT is kept if at least this fraction stays inside
    #: training GT beyond the features: "none" keeps it as annotated (official THUMOS-14 loader; it yields no
    #: positive points there); "upstream" cuts segments at T + num_frames / (2 feat_stride) steps and drops those
    #: with less than trunc_thresh inside (video-mamba-suite ActivityNet/HACS/FineAction loaders)
    gt_clip: str = field(default="none", metadata=_choices("none", "upstream"))
    #: text file of video ids (one a line, ``#`` comments) left out of training and prediction; a relative
    #: path names a file shipped beside the presets (rdfa_s6/configs/), else one under --data-root
    skip_videos_file: Optional[str] = None
    crop_ratio: Optional[List[float]] = field(default_factory=lambda: [0.9, 1.0])
    train_split: str = "validation"  #: compared with ``subset.lower()`` in the JSON
    val_split: Optional[str] = None  #: no validation split: no test-set model selection
    test_split: str = "test"
    input_dim: Optional[int] = None  #: C of the features; null = infer from the data
    num_classes: Optional[int] = None  #: null = infer from the annotations
    class_agnostic: bool = False  #: train one "action" class (ActivityNet/HACS + external scores)


@dataclass
class StemConfig:
    """The Dual Bi-S6 stem applied ``recurrences`` times (docs/model.md §3.4)."""

    kind: str = field(default="dual", metadata=_registry("rdfa_s6.models.stem", "STEM_KINDS"))
    recurrences: int = 4
    kernel_sizes: List[int] = field(default_factory=lambda: [2, 3, 4])
    chan_pool_len: Optional[int] = None  #: time bins of the channel branch; null = max_seq_len // 4
    residual: str = field(default="anchored", metadata=_registry("rdfa_s6.models.stem", "STEM_RESIDUALS"))
    drop_path: float = 0.3
    layerscale_init: float = 1.0e-4  #: initial gamma of every residual branch (stem and branch blocks)


@dataclass
class BranchConfig:
    """The pyramid: ``levels`` residual Bi-S6 blocks, each followed by a 2x downsampling (docs/model.md §3.5)."""

    levels: int = 5
    kernel_size: int = 4
    drop_path: float = 0.3
    downsample: str = field(default="maxpool", metadata=_registry("rdfa_s6.models.blocks", "DOWNSAMPLERS"))


@dataclass
class MixerConfig:
    """Settings shared by every (FA-)Bi-S6 mixer (docs/model.md §3.3)."""

    d_state: int = 16
    expand: int = 1
    bc_source: str = field(default="first", metadata=_registry("rdfa_s6.ssm.bis6", "BC_SOURCES"))
    kernel_aggregation: str = field(default="concat", metadata=_registry("rdfa_s6.ssm.bis6", "AGGREGATIONS"))
    freeze_dwconv: bool = False  #: True reproduces the official training (convs never updated, docs/model.md §4.7)


@dataclass
class HeadConfig:
    """Shared classification and regression heads (docs/model.md §3.8)."""

    num_layers: int = 3  #: hidden conv layers + the output conv
    kernel_size: int = 3
    prior_prob: float = 0.01
    empty_cls: List[int] = field(default_factory=list)  #: classes whose prior is ~0
    #: the initial bias of the regression head's output conv (both channels, in units of the level stride). The
    #: official 0 starts some offset channels below zero at almost every position (the trunk's features are
    #: >= 0 after its ReLU, so the sign follows the sum of the conv's weights); the ReLU then passes no gradient and
    #: the channel can stay 0 for the whole run (every left boundary at the point itself). 1.0 (ours) starts both
    #: channels alive; 0.0 restores the official initialisation. The forward computation is the same either way
    offset_bias_init: float = 1.0


@dataclass
class BaselineConfig:
    """Settings of the baseline encoders only (``actionformer``, ``actionmamba``)."""

    stem_blocks: int = 2  #: un-downsampled blocks before the pyramid (ActionFormer arch (2, 2, 5))
    num_heads: int = 4  #: ActionFormer attention heads
    window_size: int = 19  #: ActionFormer local attention window (feature steps, odd)
    mlp_ratio: int = 4
    attn_drop_path: float = 0.1  #: ActionFormer's path_pdrop; ActionMamba uses branch.drop_path


@dataclass
class ModelConfig:
    """The detector: encoder (the seam between RDFA-S6 and the baselines), neck, points, heads."""

    encoder: str = field(default="rdfa_s6", metadata=_registry("rdfa_s6.models.encoders", "ENCODERS"))
    embed_dim: int = 512
    embed_layers: int = 2
    embed_kernel_size: int = 3
    stem: StemConfig = field(default_factory=StemConfig)
    branch: BranchConfig = field(default_factory=BranchConfig)
    mixer: MixerConfig = field(default_factory=MixerConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    #: one [lo, hi] per pyramid level (branch.levels + 1 of them), level-0 feature steps (docs/model.md §3.7)
    regression_ranges: List[List[float]] = field(
        default_factory=lambda: [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
    )
    max_buffer_len_factor: float = 6.0
    head: HeadConfig = field(default_factory=HeadConfig)
    #: a name of rdfa_s6.ssm.scan.BACKENDS; null = automatic (``$RDFA_S6_SCAN``, else by device)
    scan_backend: Optional[str] = field(default=None, metadata=_registry("rdfa_s6.ssm.scan", "BACKENDS"))


@dataclass
class TrainConfig:
    """Optimisation (docs/model.md §4)."""

    epochs: int = 50
    batch_size: int = 2
    lr: float = 1.0e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    clip_grad: float = 1.0
    ema_decay: float = 0.999
    seed: int = 1234567891
    loss_norm: str = field(default="official", metadata=_choices("official", "running_ema"))
    init_loss_norm: float = 100.0
    center_sample_radius: float = 1.5
    label_smoothing: float = 0.0
    loss_weight: float = 1.0
    num_workers: int = 2
    deterministic: bool = False


@dataclass
class InferConfig:
    """Post-processing (docs/model.md §5)."""

    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000  #: per pyramid level
    duration_thresh: float = 0.05  #: feature steps
    nms_method: str = field(default="gaussian", metadata=_choices("gaussian", "linear", "hard", "none"))
    nms_sigma: float = 0.5
    iou_threshold: float = 0.1
    min_score: float = 0.001
    max_seg_num: int = 200
    multiclass_nms: bool = True
    voting_thresh: float = 0.0
    ext_score_file: Optional[str] = None
    ext_topk: int = 2


@dataclass
class EvalConfig:
    """Evaluation protocol (docs/model.md §6)."""

    tiou_thresholds: List[float] = field(default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7])
    #: ground truth of the metric in train validation, test and demo: "actionformer" drops zero-length and
    #: same-label duplicate events (the official RDFA-S6/upstream metric); "official" keeps every event as
    #: ActivityNet's eval_detection.py (the default of ``rdfa-s6 evaluate`` and of ``rdfa_s6.eval.evaluate``)
    gt_policy: str = field(default="actionformer", metadata=_registry("rdfa_s6.eval.groundtruth", "GT_POLICIES"))


@dataclass
class Config:
    """The whole resolved configuration. ``name`` is the preset (or file) it came from."""

    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def chan_pool_len(self) -> int:
        """The channel branch's number of time bins: ``model.stem.chan_pool_len`` or ``max_seq_len // 4``."""
        value = self.model.stem.chan_pool_len
        return int(value) if value is not None else max(1, self.data.max_seq_len // 4)

    @property
    def num_levels(self) -> int:
        """Pyramid levels = branch blocks + 1 (level 0 is the stem output)."""
        return self.model.branch.levels + 1
