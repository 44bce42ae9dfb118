"""A preset fitted to a dataset (``rdfa-s6 init``): the rules that turn a dataset's statistics into config values.

Every rule reads a :class:`~rdfa_s6.data.profile.DatasetProfile` and gives a value with the statistic it came
from (:class:`Fit`). Lengths are in feature steps (docs/model.md §2.4):

* ``data.feat_stride``, ``data.num_frames``: ``extraction.json`` (``rdfa-s6 extract``), else a least-squares fit of
  ``T = frames / S + 1 - W / S`` over the videos (``frames = duration * fps``), accepted when it explains every
  video to within :data:`STRIDE_TOLERANCE_STEPS`.
* ``data.max_seq_len``: the longest training video, or the 90th percentile when the longest is more than
  :data:`LONG_VIDEO_FACTOR` times that (the few longer videos are cropped), at least the longest training
  segment, rounded up to a multiple of the coarsest pyramid stride.
* ``model.branch.levels`` and ``model.regression_ranges``: ActionFormer's doubling ranges (level 0 ``[0, 4]``,
  level l ``[4 * 2^(l-1), 4 * 2^l]``, docs/model.md §3.7) with as many levels as the 99th percentile of the
  training segments' lengths needs (a segment of L steps is reached at ``L/2`` to ``L/2 + stride/2`` steps from
  its nearest point), the last range open up to at least the longest segment. With such ranges, of any depth,
  every segment longer than one step has a point (:func:`assignable` says which points the assignment of
  docs/model.md §4.1 makes positive; :func:`lost_segments` why a segment has none).
* ``train.epochs``, ``warmup_epochs``, ``ema_decay``, ``batch_size`` and ``model.embed_dim``: from the number of
  training videos and segments (:data:`STEPS_PER_SEGMENT`, :data:`EMBED_DIMS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..messages import plural, shown
from .schema import Config

if TYPE_CHECKING:
    from ..data.profile import DatasetProfile, VideoProfile

#: level 0's regression range is [0, BASE_RANGE] feature steps; level l > 0 has [BASE_RANGE 2^(l-1), BASE_RANGE 2^l]
BASE_RANGE = 4.0
#: the last level's upper bound, at least (ActionFormer's); raised to the longest segment when that is longer
TOP_RANGE = 10000.0
MIN_LEVELS, MAX_LEVELS = 2, 12  #: pyramid levels (branch.levels + 1)
VIDEO_PERCENTILE = 90
#: the pyramid is as deep as this percentile of the training segments' lengths needs (longer ones: the last level)
LEVEL_PERCENTILE = 99
LONG_VIDEO_FACTOR = 1.5
#: optimisation steps per training segment, and the bounds of the total
STEPS_PER_SEGMENT = 3
MIN_STEPS, MAX_STEPS = 300, 5000
MAX_EPOCHS = 500
WARMUP_FRACTION = 0.08
#: (fewer than this many training segments, embed_dim); more than the last: 512 (THUMOS-14: about 3000)
EMBED_DIMS: Tuple[Tuple[int, int], ...] = ((150, 32), (600, 64), (1500, 128), (3000, 256))
LARGE_EMBED_DIM = 512
#: total steps from which the EMA averages over about 1000 steps (0.999) instead of 100 (0.99)
LONG_RUN_STEPS = 3000
STRIDE_TOLERANCE_STEPS = 1.5
TRAIN_NAMES = ("training", "train")
VAL_NAMES = ("validation", "val", "valid", "dev")
TEST_NAMES = ("test", "testing")


@dataclass
class Fit:
    """The fitted values. ``values``: dotted config key -> value, in the order the file lists them; ``why``: the
    statistic each came from; ``unknown``: what could not be inferred (one sentence each); ``summary``: lines
    describing the dataset."""

    base: str
    values: Dict[str, Any] = field(default_factory=dict)
    why: Dict[str, str] = field(default_factory=dict)
    unknown: List[str] = field(default_factory=list)
    summary: List[str] = field(default_factory=list)

    def set(self, key: str, value: Any, why: str) -> None:
        self.values[key] = value
        self.why[key] = why


# ------------------------------------------------------------------------------------------------ assignment
def assignable(segments: np.ndarray, ranges: Sequence[Sequence[float]], radius: float = 1.5,
               lengths: Optional[np.ndarray] = None) -> np.ndarray:
    """Which segments some pyramid point would take as a positive, alone in their video: [N] bool.

    The rule of :func:`rdfa_s6.train.assign.assign_video` (docs/model.md §4.1) for one segment, in float32 as
    there: a point ``t = k 2^l`` of level l is positive when it lies strictly inside the segment's centre window
    ``(max(c - radius 2^l, a), min(c + radius 2^l, b))`` and its reach ``max(t - a, b - t)`` is within level l's
    ``[lo, hi]``. ``segments``: [N, 2] feature steps; ``ranges``: one ``[lo, hi]`` per level;
    ``lengths``: [N] feature steps of each segment's video (points at or after it are padding), None = no limit.
    """
    seg = np.asarray(segments, dtype=np.float32).reshape(-1, 2)
    a, b = seg[:, 0], seg[:, 1]
    center = np.float32(0.5) * (a + b)
    ok = np.zeros(len(seg), dtype=bool)
    for level, (lo, hi) in enumerate(ranges):
        stride = np.float32(2 ** level)
        r = stride * np.float32(radius)
        left_edge, right_edge = np.maximum(center - r, a), np.minimum(center + r, b)
        first = np.floor(left_edge / stride)
        for j in range(int(2 * radius) + 3):  # every grid point of the open window (width <= 2 radius strides)
            t = ((first + j) * stride).astype(np.float32)
            inside = np.minimum(t - left_edge, right_edge - t) > 0
            reach = np.maximum(t - a, b - t)
            hit = inside & (reach >= np.float32(lo)) & (reach <= np.float32(hi)) & (t >= 0)
            if lengths is not None:
                hit &= t < np.asarray(lengths, dtype=np.float32)
            ok |= hit
    return ok


#: why :func:`lost_segments` says a segment is lost for training
ASSIGNED, TOO_SHORT, AFTER_FEATURES, OUT_OF_RANGE = 0, 1, 2, 3


def lost_segments(segments: np.ndarray, ranges: Sequence[Sequence[float]], radius: float,
                  lengths: np.ndarray) -> np.ndarray:
    """[N] int codes: :data:`ASSIGNED`, or why no point takes the segment (:func:`assignable`):
    :data:`TOO_SHORT` (at most one feature step: it can fall between two points of the finest level),
    :data:`AFTER_FEATURES` (the ranges would take it, but its points are after its video's ``lengths`` steps),
    :data:`OUT_OF_RANGE` (the regression ranges miss it: a config problem)."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    inside = assignable(seg, ranges, radius, lengths)
    anywhere = assignable(seg, ranges, radius)
    codes = np.full(len(seg), OUT_OF_RANGE, dtype=np.int64)
    codes[anywhere] = AFTER_FEATURES
    codes[(seg[:, 1] - seg[:, 0] <= 1.0) & ~anywhere] = TOO_SHORT
    codes[inside] = ASSIGNED
    return codes


def doubling_ranges(levels: int, top: float = TOP_RANGE) -> List[List[float]]:
    """``levels`` regression ranges ``[0, 4], [4, 8], ..., [4 2^(levels-2), top]`` (feature steps of level 0)."""
    bounds = [0.0] + [BASE_RANGE * 2 ** i for i in range(levels - 1)] + [top]
    return [[_plain(bounds[i]), _plain(bounds[i + 1])] for i in range(levels)]


def levels_for(length: float) -> int:
    """Pyramid levels whose last one has ``length`` (steps) in its natural range: reach ``length / 2`` at most
    ``BASE_RANGE 2^l``; at least :data:`MIN_LEVELS`, at most :data:`MAX_LEVELS`."""
    natural = max(0, math.ceil(math.log2(max(length, 1e-9) / (2 * BASE_RANGE))))
    return min(MAX_LEVELS, max(MIN_LEVELS, natural + 1))


# -------------------------------------------------------------------------------------------------- the fit
def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values`` (one of them)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def segment_steps(video: "VideoProfile", feat_stride: float, num_frames: float) -> np.ndarray:
    """The video's segments in feature steps, [N, 2] (the conversion of :mod:`rdfa_s6.data.coords`)."""
    from ..data.coords import seconds_to_steps

    seconds = np.asarray(video.segments, dtype=np.float64).reshape(-1, 2)
    if video.fps is None:
        return np.zeros((0, 2))
    return seconds_to_steps(seconds, video.fps, feat_stride, num_frames)


def fit_stride(videos: Sequence["VideoProfile"]) -> Optional[Tuple[float, float, float]]:
    """``(stride, window, worst residual in steps)`` in frames from the videos' lengths (T = frames / S + 1 - W / S,
    frames = duration * fps), rounded to whole frames, or None when fewer than 3 distinct lengths say it or the
    rounded values miss a video by more than :data:`STRIDE_TOLERANCE_STEPS`."""
    pairs = [(v.duration * v.fps, float(v.steps)) for v in videos if v.duration is not None and v.fps is not None]
    if len({round(f, 3) for f, _ in pairs}) < 3:
        return None
    frames, steps = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    slope, intercept = np.polyfit(frames, steps, 1)
    if not slope > 0:
        return None
    stride = max(1.0, float(round(1.0 / slope)))
    window = max(1.0, float(round(stride * (1.0 - intercept))))
    worst = float(np.max(np.abs(frames / stride + 1 - window / stride - steps)))
    return (stride, window, worst) if worst <= STRIDE_TOLERANCE_STEPS else None


def choose_splits(subsets: Dict[str, int]) -> Tuple[Optional[str], Optional[str], Optional[str], str]:
    """``(train, validation, test, why)`` from the subset names present (lower case)."""
    def first(names: Sequence[str]) -> Optional[str]:
        return next((n for n in names if n in subsets), None)

    train, val, test = first(TRAIN_NAMES), first(VAL_NAMES), first(TEST_NAMES)
    if train is None and val is not None and test is not None:  # THUMOS-14: trains on its validation videos
        return val, None, test, f"no training subset: trains on {val!r} and tests on {test!r}, as THUMOS-14"
    if train is not None and test is None and val is not None:  # ActivityNet: tests on validation
        return train, None, val, f"no test subset: tests on {val!r} and validates on nothing, as ActivityNet"
    if train is None:
        return None, val, test, "no subset named " + " or ".join(repr(n) for n in TRAIN_NAMES)
    return train, val, test, "subsets " + ", ".join(f"{k!r} ({plural(n, 'video')})" for k, n in subsets.items())


def fit_config(profile: "DatasetProfile", base: Config, base_name: str) -> Fit:
    """The values of a preset for ``profile`` on top of ``base`` (whose name or path the file names as
    ``base_name``). Raises DataError when there is nothing to fit to (no training subset, no segment)."""
    from ..errors import DataError, UserError

    if base.data.force_upsampling:
        raise UserError(f"base preset {shown(base_name)} resizes every video to data.max_seq_len steps "
                        f"(data.force_upsampling); init fits presets of variable length: use --base demo or thumos14")
    fit = Fit(base=base_name)
    subsets = profile.subsets()
    fit.summary.append(f"{plural(len(profile.videos), 'video')} with features ("
                       + ", ".join(f"{shown(k)} {n}" for k, n in subsets.items()) + ")"
                       + (f", {len(profile.missing)} without" if profile.missing else ""))
    train, val, test, why = choose_splits(subsets)
    if train is None:
        raise DataError(f"{shown(profile.annotation_file)}: {why} among the subsets "
                        f"{', '.join(shown(s) for s in subsets)}; name the training videos' subset 'training'")
    _fit_data(fit, profile, base, train, val, test, why)
    return fit


def _fit_data(fit: Fit, profile: "DatasetProfile", base: Config, train: str, val: Optional[str],
              test: Optional[str], split_why: str) -> None:
    from ..errors import DataError

    d = base.data
    fit.set("data.annotation_file", str(profile.annotation_file.resolve()), "absolute: found with or without "
            "--data-root")
    fit.set("data.feature_dir", str(profile.feature_dir.resolve()), "absolute, like data.annotation_file")
    fit.set("data.file_prefix", profile.file_prefix, "how the feature files are named")
    fit.set("data.file_suffix", profile.file_suffix, "how the feature files are named")
    fit.set("data.file_ext", profile.file_ext, "how the feature files are named")
    dims = ", ".join(f"C={c} in {n}" for c, n in sorted(profile.input_dims.items()))
    fit.set("data.input_dim", profile.input_dim, f"C of the feature files ({dims})")
    if len(profile.input_dims) > 1:
        fit.unknown.append(f"input_dim: the feature files disagree on C ({dims}); the most common one is used")
    num_classes = max(profile.label_names) + 1 if profile.label_names else 0
    named = plural(len(profile.label_names), "named class", "named classes")
    fit.set("data.num_classes", max(1, num_classes), f"largest label_id + 1 ({named})")
    fit.set("data.train_split", train, split_why)
    fit.set("data.val_split", val, "evaluated during train" if val else "none: no separate validation subset")
    if test is None:
        test = train
        fit.unknown.append(f"test split: no subset named {' or '.join(TEST_NAMES)}; data.test_split is the training "
                           f"subset {train!r}, so `rdfa-s6 test` measures training data")
    fit.set("data.test_split", test, "the subset `rdfa-s6 test` evaluates")
    downsample = max(1, d.downsample_rate)
    stride, window = _fit_grid(fit, profile, base)
    eff = stride * downsample
    train_videos = profile.subset(train)
    segs = [segment_steps(v, eff, window) for v in train_videos]
    lengths = np.concatenate([s[:, 1] - s[:, 0] for s in segs]) if segs else np.zeros(0)
    if not len(lengths) and any(v.segments and v.fps is None for v in train_videos):
        raise DataError(f"{shown(profile.annotation_file)}: the labelled videos of {train!r} have no 'fps'; add "
                        f"it per video (rdfa-s6 extract writes it) and run init again")
    if not len(lengths):
        raise DataError(f"{shown(profile.annotation_file)}: the {train!r} subset has no labelled segment; label the "
                        f"videos first (rdfa-s6 import) and run init again")
    steps = [v.steps for v in train_videos]
    longest_seg = float(lengths.max())
    longest, p90 = max(steps), percentile(steps, VIDEO_PERCENTILE)
    cover = longest if longest <= LONG_VIDEO_FACTOR * p90 else p90
    need = max(float(cover), longest_seg)
    typical = percentile(lengths.tolist(), LEVEL_PERCENTILE)
    levels = levels_for(typical)
    top_stride = 2 ** (levels - 1)
    max_len = int(math.ceil(need / top_stride) * top_stride)
    longer = sum(1 for s in steps if s > max_len)
    rule = "the longest training video" if cover == longest else \
        f"the {VIDEO_PERCENTILE}th percentile of the training videos' lengths"
    fit.set("data.max_seq_len", max_len,
            f"{rule} (min/median/max {min(steps)}/{int(percentile(steps, 50))}/{longest} "
            f"steps), at least the longest segment, rounded up to a multiple of the coarsest stride {top_stride}; "
            + (f"{plural(longer, 'video')} longer, cropped in training" if longer else "no video is cropped"))
    fit.set("model.embed_dim", embed_dim(len(lengths)), f"{plural(len(lengths), 'training segment')}: "
            + ", ".join(f"<{limit}: {dim}" for limit, dim in EMBED_DIMS) + f", more: {LARGE_EMBED_DIM}")
    pool = min(base.chan_pool_len, max(1, max_len // 4))
    fit.set("model.stem.chan_pool_len", pool, f"max_seq_len // 4, at most the base's {base.chan_pool_len}")
    beyond = int((lengths > typical).sum())
    fit.set("model.branch.levels", levels - 1,
            f"{levels} pyramid levels: the {LEVEL_PERCENTILE}th percentile of the training segments' lengths "
            f"({typical:.1f} steps) in the last one's range" + (f", the {beyond} longer there too" if beyond else ""))
    top = max(TOP_RANGE, float(math.ceil(longest_seg)))
    ranges = doubling_ranges(levels, top)
    per_level = _segments_per_level(lengths, ranges)
    fit.set("model.regression_ranges", ranges,
            f"training segments {lengths.min():.1f}-{longest_seg:.1f} steps (median {np.median(lengths):.1f}); "
            f"per level by length: {', '.join(str(n) for n in per_level)}")
    seg_all = np.concatenate(segs).reshape(-1, 2)
    video_len = np.concatenate([np.full(len(s), v.steps) for s, v in zip(segs, train_videos)])
    codes = lost_segments(seg_all, ranges, base.train.center_sample_radius, video_len)
    if (codes != ASSIGNED).any():
        short, late = int((codes == TOO_SHORT).sum()), int((codes == AFTER_FEATURES).sum())
        missed = int((codes == OUT_OF_RANGE).sum())
        fit.unknown.append(f"{plural(int((codes != ASSIGNED).sum()), 'training segment')} no level can assign: "
                           f"{short} at most one feature step long (between two points of the {eff:g}-frame grid: "
                           f"extract features with a smaller stride for such actions), {late} after the end of "
                           f"their video's features (check the annotations, fps and durations)"
                           + (f", {missed} outside the ranges" if missed else ""))
    _fit_training(fit, base, len(train_videos), len(lengths))


def _segments_per_level(lengths: np.ndarray, ranges: List[List[float]]) -> List[int]:
    """Training segments per level by their half length (the reach of the centre point)."""
    half = lengths / 2
    counts = [0] * len(ranges)
    for h in half:
        level = next((i for i, (_, hi) in enumerate(ranges) if h <= hi), len(ranges) - 1)
        counts[level] += 1
    return counts


def _fit_grid(fit: Fit, profile: "DatasetProfile", base: Config) -> Tuple[float, float]:
    """``data.feat_stride``, ``data.num_frames`` and ``data.default_fps``; returns the stride and window."""
    d = base.data
    ext = profile.extraction
    no_fps = [v.video_id for v in profile.videos if v.fps is None]
    if ext is not None and ext.get("stride") and ext.get("window"):
        stride, window = float(ext["stride"]) / max(1, d.downsample_rate), float(ext["window"])
        fit.set("data.feat_stride", _plain(stride), "extraction.json: stride")
        fit.set("data.num_frames", _plain(window), "extraction.json: window")
    else:
        found = fit_stride(profile.videos)
        if found is None:
            stride, window = d.feat_stride, d.num_frames
            fit.unknown.append(f"feat_stride and num_frames: no extraction.json, and the videos' durations and "
                               f"feature lengths do not tell them; kept the base's {d.feat_stride:g} and "
                               f"{d.num_frames:g}: set them to how the features were extracted")
        else:
            eff, window, worst = found
            stride = eff / max(1, d.downsample_rate)
            fit.set("data.feat_stride", _plain(stride), f"fitted to the videos' durations, fps and feature lengths "
                    f"(no extraction.json; off by {worst:.2f} steps at most)")
            fit.set("data.num_frames", _plain(window), "fitted with data.feat_stride")
    rates = sorted({v.fps for v in profile.videos if v.fps is not None})
    if not no_fps:
        fit.set("data.default_fps", None, "every video's own fps from annotations.json ("
                + ", ".join(f"{r:g}" for r in rates[:5]) + (" ..." if len(rates) > 5 else "") + ")")
    elif ext is not None and ext.get("fps"):
        fit.set("data.default_fps", _plain(float(ext["fps"])), "extraction.json: fps (some videos have none)")
    else:
        fit.unknown.append(f"fps: {plural(len(no_fps), 'video')} without 'fps' in annotations.json (e.g. "
                           f"{shown(no_fps[0])}) and no extraction.json; set data.default_fps")
    return stride, window


def _fit_training(fit: Fit, base: Config, videos: int, segments: int) -> None:
    t = base.train
    batch = max(1, min(t.batch_size, videos))
    per_epoch = videos // batch
    target = min(MAX_STEPS, max(MIN_STEPS, STEPS_PER_SEGMENT * segments))
    epochs = min(MAX_EPOCHS, max(2, math.ceil(target / per_epoch)))
    warmup = min(epochs - 1, max(1, round(WARMUP_FRACTION * epochs)))
    total = epochs * per_epoch
    if batch != t.batch_size:
        fit.set("train.batch_size", batch, f"at most the {plural(videos, 'training video')}")
    fit.set("train.epochs", epochs, f"about {STEPS_PER_SEGMENT} steps per training segment ({segments}), "
            f"{MIN_STEPS}-{MAX_STEPS} in all: {per_epoch} steps per epoch, {total} steps")
    fit.set("train.warmup_epochs", warmup, f"about {WARMUP_FRACTION:.0%} of the epochs")
    fit.set("train.ema_decay", 0.999 if total >= LONG_RUN_STEPS else 0.99,
            f"an average over about {1000 if total >= LONG_RUN_STEPS else 100} of the {total} steps")


def embed_dim(segments: int) -> int:
    """``model.embed_dim`` for a training set of ``segments`` labelled segments (:data:`EMBED_DIMS`)."""
    return next((dim for limit, dim in EMBED_DIMS if segments < limit), LARGE_EMBED_DIM)


# --------------------------------------------------------------------------------------------------- YAML
def _plain(x: float) -> Any:
    return int(x) if float(x).is_integer() else float(x)
