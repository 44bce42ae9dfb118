"""Dataset checks for ``rdfa-s6 check-data``: what would go wrong in training or testing, found before it starts.

Two kinds of findings:

* **errors** (:attr:`SplitReport.errors`): ``train``/``test`` would stop on them: missing or unreadable feature
  files (wrong rank, dtype or C, NaN/Inf, zero steps), videos without fps, class ids the config does not allow,
  empty splits, feature files that disagree on C. Each is one line naming the file, the video and the field.
* **warnings**: common in real data and handled: feature lengths that disagree with the duration (fps,
  feat_stride or num_frames may be off), segments that end after the video's duration (THUMOS-14 has 30 in 5
  videos, 22 in ``video_test_0000270``; evaluation keeps them as annotated, as the official code does),
  segments that start after the last feature step (dropped in training with ``data.gt_clip: upstream``, see
  :func:`rdfa_s6.data.dataset.clip_upstream`; without a positive point otherwise) and zero-length segments (never
  matched in training crops).

When the data root holds an ``extraction.json`` (``rdfa-s6 extract``), :func:`verify_feature_files` compares each
feature file with the sha256, shape and dtype recorded for it (errors: a missing or changed file).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..config.schema import Config, DataConfig
from ..errors import DataError
from ..messages import listed, one_line, plural, shown
from ..progress import Progress, report
from .annotations import AnnotationSet, late_segments
from .coords import expected_steps, seconds_to_steps
from .features import FeatureReader
from .transforms import resized_stride

#: feature length may differ from the one the duration implies by this many steps (or this fraction)
LENGTH_TOLERANCE_STEPS = 5
LENGTH_TOLERANCE_FRACTION = 0.05


@dataclass
class SplitReport:
    split: str
    videos: int = 0
    instances: int = 0
    classes: int = 0
    missing_features: List[str] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)
    length_mismatch: List[str] = field(default_factory=list)
    beyond_duration: int = 0
    beyond_videos: List[str] = field(default_factory=list)
    beyond_features: List[str] = field(default_factory=list)
    zero_length: int = 0
    no_fps: List[str] = field(default_factory=list)
    lengths: List[int] = field(default_factory=list)
    input_dims: Dict[int, int] = field(default_factory=dict)
    #: C -> the first video (and its file) with that many channels
    dim_examples: Dict[int, str] = field(default_factory=dict)
    #: one line per problem that would stop training or testing (file, video, field, what was expected)
    errors: List[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.errors)


def expected_length(duration: float, fps: float, cfg: DataConfig) -> float:
    """Feature steps a video of ``duration`` seconds should have (clips of num_frames every feat_stride frames)."""
    return expected_steps(duration, fps, cfg.feat_stride * cfg.downsample_rate, cfg.num_frames)


def check_split(annotations: AnnotationSet, reader: FeatureReader, cfg: DataConfig, split: str) -> SplitReport:
    """Check the annotations and every feature file of one split (each file is read once)."""
    report = SplitReport(split)
    records = annotations.split(split)
    report.videos = len(records)
    report.classes = len({int(label) for r in records for label in r.labels})
    if not records:
        found = ", ".join(f"{k} ({v})" for k, v in sorted(annotations.subsets().items())) or "none"
        report.errors.append(f"{annotations.path}: no video has subset {split!r} (an empty split); subsets found: "
                             f"{found}")
    max_classes = None if cfg.class_agnostic else cfg.num_classes
    for rec in records:
        report.instances += len(rec.labels)
        late = late_segments(rec)
        if len(late):
            report.beyond_duration += len(late)
            report.beyond_videos.append(f"{rec.video_id}: {len(late)} segment(s), e.g. [{late[0, 0]:g}, "
                                        f"{late[0, 1]:g}] s, duration {rec.duration:g} s")
        report.zero_length += int((rec.segments[:, 1] <= rec.segments[:, 0]).sum())
        if max_classes is not None and (rec.labels >= max_classes).any():
            lid = int(rec.labels[rec.labels >= max_classes][0])
            report.errors.append(f"{annotations.path}: video {rec.video_id!r}, field 'label_id': {lid} is not a "
                                 f"known class; expected an id below data.num_classes={max_classes}")
        fps: Optional[float] = rec.fps
        if fps is None:
            report.no_fps.append(rec.video_id)
            report.errors.append(f"{annotations.path}: video {rec.video_id!r}: field 'fps' is missing and "
                                 f"data.default_fps is not set; expected frames per second")
        path = reader.path(rec.video_id)
        if not path.is_file():
            report.missing_features.append(rec.video_id)
            report.errors.append(f"feature file for video {rec.video_id!r} not found: {path}")
            continue
        try:
            feats = reader.load(rec.video_id)
        except DataError as err:
            report.unreadable.append(f"{rec.video_id}: {err}")
            report.errors.append(str(err))
            continue
        report.lengths.append(int(feats.shape[1]))
        report.input_dims[int(feats.shape[0])] = report.input_dims.get(int(feats.shape[0]), 0) + 1
        report.dim_examples.setdefault(int(feats.shape[0]), f"video {rec.video_id!r} ({path})")
        if fps is not None and len(rec.segments) and not cfg.force_upsampling:
            starts = seconds_to_steps(rec.segments[:, 0], fps, cfg.feat_stride * cfg.downsample_rate, cfg.num_frames)
            after = int((starts >= feats.shape[1]).sum())
            if after:
                report.beyond_features.append(f"{rec.video_id}: {after} segment(s) start after step "
                                              f"{feats.shape[1] - 1}, the last of its features")
        if fps is not None and rec.duration < 1e7 and not cfg.force_upsampling:
            expect = expected_length(rec.duration, fps, cfg)
            tol = max(LENGTH_TOLERANCE_STEPS, LENGTH_TOLERANCE_FRACTION * expect)
            if abs(feats.shape[1] - expect) > tol:
                report.length_mismatch.append(
                    f"{rec.video_id}: {feats.shape[1]} steps, the duration {rec.duration:.1f} s at {fps:g} fps "
                    f"implies about {expect:.0f}")
    if len(report.input_dims) > 1:
        report.errors.append(f"split {split!r}: " + mixed_dims_message(report.input_dims, report.dim_examples))
    return report


def mixed_dims_message(input_dims: Dict[int, int], examples: Dict[int, str]) -> str:
    """Feature files disagree on C: name the rarest C's first video and file, and the most common C."""
    common = max(input_dims, key=lambda c: (input_dims[c], -c))
    rare = min((c for c in input_dims if c != common), key=lambda c: (input_dims[c], c))
    counts = ", ".join(f"C={c} in {n} file{'s' if n != 1 else ''}" for c, n in sorted(input_dims.items()))
    return (f"{examples[rare]}: features have {rare} channels, expected {common} like {examples[common]}: feature "
            f"files disagree on C ({counts})")


def format_reports(reports: List[SplitReport]) -> str:
    head = ["split", "videos", "instances", "classes", "T min/median/max", "C", "missing", "unreadable",
            "len mismatch", "beyond dur.", "zero-len"]
    rows = []
    for r in reports:
        lengths = f"{min(r.lengths)}/{int(np.median(r.lengths))}/{max(r.lengths)}" if r.lengths else "-"
        dims = ",".join(str(d) for d in sorted(r.input_dims)) or "-"
        rows.append([r.split, str(r.videos), str(r.instances), str(r.classes), lengths, dims,
                     str(len(r.missing_features)), str(len(r.unreadable)), str(len(r.length_mismatch)),
                     str(r.beyond_duration), str(r.zero_length)])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- feature files vs extraction.json
@dataclass
class FileVerification:
    """Feature files checked against the sha256, shape and dtype that ``extraction.json`` records per video."""

    #: feature files compared (present and recorded with a checksum)
    checked: int = 0
    #: one line per file that is missing or differs from its record (the file and what differs)
    errors: List[str] = field(default_factory=list)
    #: why nothing was verified, when nothing was (an extraction.json written before checksums were added)
    skipped: Optional[str] = None
    #: videos recorded without a checksum (extracted by an older rdfa-s6 into a folder that newer runs extended)
    unrecorded: int = 0


def _npy_header(path: Path) -> Tuple[List[int], str]:
    """(shape, dtype name) of a ``.npy`` file from its header (the data is not read)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(fh)
    return [int(n) for n in shape], dtype.name


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)  # releases the GIL on large blocks: threads hash files in parallel
    return digest.hexdigest()


def verify_feature_files(extraction_dir: Path, feature_dir: Path, progress: Optional[Progress] = None,
                         threads: int = 4) -> Optional[FileVerification]:
    """Compare every feature file that ``extraction_dir/extraction.json`` (written by ``rdfa-s6 extract``) records
    with its record: missing files, and files whose sha256, shape ``[T, C]`` or dtype differ (a flipped byte, a
    truncated or replaced file). None when there is no extraction.json. Hashing is I/O bound: ``threads`` files are
    read at once; ``progress(done, total)`` is called after each file."""
    from ..video.records import EXTRACTION_FILE, read_video_records

    videos = read_video_records(extraction_dir)
    if videos is None:
        return None
    result = FileVerification()
    recorded = {vid: rec for vid, rec in videos.items() if rec.get("sha256")}
    result.unrecorded = len(videos) - len(recorded)
    if videos and not recorded:
        result.skipped = (f"{Path(extraction_dir) / EXTRACTION_FILE} records no checksums (written before rdfa-s6 "
                          f"recorded them): feature files not verified")
        return result

    def one(vid: str) -> Optional[str]:
        rec = recorded[vid]
        path = Path(feature_dir) / f"{vid}.npy"
        if not path.is_file():
            return f"feature file {path} of video {vid!r} is missing; extraction.json records it"
        try:
            shape, dtype = _npy_header(path)
        except (OSError, ValueError) as err:
            return f"feature file {path} of video {vid!r}: unreadable .npy header ({one_line(str(err), 200)})"
        if shape != list(rec.get("shape", shape)) or dtype != rec.get("dtype", dtype):
            return (f"feature file {path} of video {vid!r}: shape {shape} {dtype}, extraction.json records "
                    f"{rec.get('shape')} {rec.get('dtype')}")
        if _sha256_file(path) != rec["sha256"]:
            return (f"feature file {path} of video {vid!r}: sha256 differs from extraction.json (the file changed "
                    f"after extraction)")
        return None

    order = sorted(recorded)
    report(progress, 0, len(order))
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(order)))) as pool:
        for done, problem in enumerate(pool.map(one, order), 1):
            if problem is None:
                result.checked += 1
            else:
                result.errors.append(problem)
            report(progress, done, len(order))
    return result


# ------------------------------------------------------------------------------ fit of the config to the data
@dataclass
class SplitFit:
    """How one split fits the config: video lengths against ``data.max_seq_len`` (training crops the longer ones
    and pads the shorter ones) and segments against the regression ranges (feature steps)."""

    split: str
    videos: int = 0
    longer: int = 0  #: videos longer than max_seq_len (cropped to it in training)
    padded: int = 0  #: videos shorter than max_seq_len (padded to it in training)
    median_steps: int = 0
    segments: int = 0
    unassignable: int = 0  #: segments no pyramid point takes as a positive (lost for training)
    #: of those: at most one step long (between two points), after their video's features, outside the ranges
    too_short: int = 0
    after_features: int = 0
    out_of_range: int = 0
    #: the first few lost segments per reason (``rdfa_s6.config.fit`` codes)
    examples: Dict[int, List[str]] = field(default_factory=dict)
    #: class name -> segments
    classes: Dict[str, int] = field(default_factory=dict)


@dataclass
class FitReport:
    """:func:`fit_report`'s result: one :class:`SplitFit` per split, the verdicts (one line per problem, naming the
    config key and the value ``rdfa-s6 init`` would pick) and what ``init`` would write (None if it cannot fit)."""

    max_seq_len: int
    splits: List[SplitFit]
    verdicts: List[str] = field(default_factory=list)
    fitted: Optional[Dict[str, Any]] = None
    not_fitted: str = ""


def fit_report(annotations: AnnotationSet, reader: FeatureReader, cfg: Config, splits: List[str],
               extraction: Optional[Dict[str, Any]] = None) -> FitReport:
    """How the config ``cfg`` fits the data of ``splits`` (``cfg.data.train_split`` first), and what
    ``rdfa-s6 init`` would pick on top of ``cfg`` (:func:`rdfa_s6.config.fit.fit_config`). Reads every video's
    feature length (``.npy`` headers only)."""
    from ..config.fit import AFTER_FEATURES, ASSIGNED, OUT_OF_RANGE, TOO_SHORT, fit_config, lost_segments
    from ..errors import UserError
    from .profile import profile_from

    d = cfg.data
    profile = profile_from(annotations, reader, splits, extraction)
    report = FitReport(d.max_seq_len, [])
    stride = d.feat_stride * d.downsample_rate
    for split in dict.fromkeys(splits):
        videos = profile.subset(split)
        sf = SplitFit(split, videos=len(videos))
        steps = [v.steps for v in videos]
        sf.median_steps = int(np.median(steps)) if steps else 0
        if not d.force_upsampling:
            sf.longer = sum(1 for s in steps if s > d.max_seq_len)
            sf.padded = sum(1 for s in steps if s < d.max_seq_len)
        for v in videos:
            for label in v.labels:
                name = annotations.label_names.get(label, f"class_{label}")
                sf.classes[name] = sf.classes.get(name, 0) + 1
            if v.fps is None or not v.segments:
                continue
            s, w, length = stride, d.num_frames, v.steps
            if d.force_upsampling:
                s, w = resized_stride(v.steps, stride, d.num_frames, d.max_seq_len)
                length = d.max_seq_len
            seg = seconds_to_steps(np.asarray(v.segments, dtype=np.float64), v.fps, s, w)
            codes = lost_segments(seg, cfg.model.regression_ranges, cfg.train.center_sample_radius,
                                  np.full(len(seg), length))
            sf.segments += len(seg)
            sf.unassignable += int((codes != ASSIGNED).sum())
            sf.too_short += int((codes == TOO_SHORT).sum())
            sf.after_features += int((codes == AFTER_FEATURES).sum())
            sf.out_of_range += int((codes == OUT_OF_RANGE).sum())
            for (a, b), code in zip(seg, codes):
                shown_ = sf.examples.setdefault(int(code), [])
                if code != ASSIGNED and len(shown_) < 3:
                    shown_.append(f"{shown(v.video_id)} [{a:.2f}, {b:.2f}] steps")
        report.splits.append(sf)
    try:
        fitted = fit_config(profile, cfg, cfg.name)
        report.fitted = dict(fitted.values)
    except UserError as err:
        report.not_fitted = str(err)
    report.verdicts = _verdicts(cfg, report, annotations)
    return report


def _verdicts(cfg: Config, report: FitReport, annotations: AnnotationSet) -> List[str]:
    """One line per problem, naming the key to change and the value ``init`` would pick."""
    from ..config.fitfile import yaml_value

    fitted = report.fitted or {}

    def init_picks(*keys: str) -> str:
        values = [f"{k}={yaml_value(fitted[k])}" for k in keys if k in fitted]
        return f"; rdfa-s6 init would pick {' '.join(values)}" if values else ""

    out: List[str] = []
    train = report.splits[0] if report.splits else None
    d = cfg.data
    if train is not None and train.videos and not d.force_upsampling:
        picked = fitted.get("data.max_seq_len")
        if train.longer and (picked is None or picked > d.max_seq_len):
            out.append(f"data.max_seq_len={d.max_seq_len}: {train.longer} of {train.videos} training videos are "
                       f"longer and are cropped in training{init_picks('data.max_seq_len')}")
        elif 2 * train.median_steps < d.max_seq_len and (picked is None or picked < d.max_seq_len):
            out.append(f"data.max_seq_len={d.max_seq_len}: the median training video has {train.median_steps} "
                       f"steps, so most of every training batch is padding{init_picks('data.max_seq_len')}")
    from ..config.fit import AFTER_FEATURES, OUT_OF_RANGE, TOO_SHORT

    for sf in report.splits:
        def lost(n: int, code: int) -> str:
            return (f"{n} of {sf.segments} segments of split {shown(sf.split)} are assigned to no pyramid level "
                    f"(lost for training), e.g. {', '.join(sf.examples.get(code, []))}")

        if sf.out_of_range:
            out.append(f"model.regression_ranges: {lost(sf.out_of_range, OUT_OF_RANGE)}: no level's range holds "
                       f"them{init_picks('model.branch.levels', 'model.regression_ranges')}")
        if sf.too_short:
            out.append(f"data.feat_stride={d.feat_stride:g}: {lost(sf.too_short, TOO_SHORT)}: at most one feature "
                       f"step long, they fall between two points; extract features with a smaller stride")
        if sf.after_features:
            out.append(f"annotations (or data.feat_stride, data.default_fps): "
                       f"{lost(sf.after_features, AFTER_FEATURES)}: they lie after the end of their video's "
                       f"features; check the annotations and each video's fps and duration")
    if train is not None:
        for sf in report.splits[1:]:
            missing = sorted(set(sf.classes) - set(train.classes))
            if missing:
                out.append(f"data.train_split={shown(d.train_split)}: {plural(len(missing), 'class', 'classes')} of "
                           f"split {shown(sf.split)} have no training segment and cannot be learnt: "
                           f"{listed(missing)}")
    return out


def format_fit_report(report: FitReport) -> List[str]:
    """The report's lines: a table per split, the class counts per split, the verdicts."""
    head = ["split", "videos", f"longer than {report.max_seq_len} (cropped)", "shorter (padded)", "median T",
            "segments", "no level assigns"]
    rows = [[r.split, str(r.videos), str(r.longer), str(r.padded), str(r.median_steps), str(r.segments),
             str(r.unassignable)] for r in report.splits]
    lines = ["", "fit of the config to the data:", _table(head, rows)]
    names = sorted({n for r in report.splits for n in r.classes})
    if names:
        lines += ["", "segments per class:",
                  _table(["class"] + [r.split for r in report.splits],
                         [[n] + [str(r.classes.get(n, 0)) for r in report.splits] for n in names])]
    if report.not_fitted:
        lines.append(f"\nrdfa-s6 init cannot fit this data: {report.not_fitted}")
    lines += [f"\nfit: {v}" for v in report.verdicts]
    return lines


def _table(head: List[str], rows: List[List[str]]) -> str:
    """An indented text table (two spaces before each line, columns two spaces apart)."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join("  " + line.rstrip() for line in lines)  # indented: a row never starts like the main table's
