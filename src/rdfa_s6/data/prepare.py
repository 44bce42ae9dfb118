"""Locate and validate a dataset before any training or testing starts.

Layout: ``DATA_ROOT/annotations.json`` and ``DATA_ROOT/features/`` unless ``data.annotation_file`` /
``data.feature_dir`` name other places (relative paths are taken under ``DATA_ROOT``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ..config.schema import DataConfig
from ..errors import DataError
from .annotations import AnnotationSet, VideoRecord, load_annotations
from .dataset import split_records
from .features import FeatureReader, feature_reader
from .paths import under_root
from .skiplist import apply_skip_list, read_skip_list, resolve_skip_file


@dataclass
class PreparedData:
    annotations: AnnotationSet
    reader: FeatureReader
    input_dim: int
    num_classes: int
    label_names: Dict[int, str]
    data_root: Optional[Path] = None  #: the --data-root folder relative data paths were taken under, if any

    @property
    def class_names(self) -> Dict[int, str]:
        """The annotation file's ``label_id -> label`` map: the names of fused detections (external class
        ids), which for a class-agnostic model differ from its one ``"action"`` class."""
        return dict(self.annotations.label_names) or dict(self.label_names)

    def model_meta(self) -> Dict[str, Any]:
        """What a checkpoint records about its training data so that inference needs nothing else:
        ``label_names`` (the model's classes), ``class_names`` (the dataset's) and ``video_fps`` (the frame rate
        every video had, when they all had one: ``rdfa-s6 infer`` then needs no ``--fps``)."""
        meta: Dict[str, Any] = {"label_names": {str(k): v for k, v in self.label_names.items()},
                                "class_names": {str(k): v for k, v in self.class_names.items()}}
        rates = {rec.fps for rec in self.annotations.videos.values()}
        if len(rates) == 1 and None not in rates:
            meta["video_fps"] = float(rates.pop())  # type: ignore[arg-type]
        extraction = self.extraction_settings()
        if extraction is not None:  # features from `rdfa-s6 extract`: `infer` on a video extracts the same way
            meta["extraction"] = extraction
        return meta

    def extraction_settings(self) -> Optional[Dict[str, Any]]:
        """The settings of ``extraction.json`` (written by ``rdfa-s6 extract``) next to the feature folder or in
        the data root, or None (features made elsewhere)."""
        from ..video.records import read_extraction

        for folder in (Path(self.reader.feature_dir).parent, self.data_root):
            settings = read_extraction(folder) if folder is not None else None
            if settings is not None:
                return settings
        return None


def resolve_paths(cfg: DataConfig, data_root: Optional[Path]) -> tuple:
    """(annotation file, feature folder) for ``cfg`` and ``data_root``."""
    def resolve(value: Optional[str], default: str, key: str) -> Path:
        if value is None:
            if data_root is None:
                raise DataError(f"no data: pass --data-root DIR (with DIR/{default}) or set data.{key}")
            return Path(data_root) / default
        return under_root(value, data_root)
    return (resolve(cfg.annotation_file, "annotations.json", "annotation_file"),
            resolve(cfg.feature_dir, "features", "feature_dir"))


def check_feature_headers(reader: FeatureReader, records: List[VideoRecord]) -> Optional[int]:
    """Every ``.npy`` file's header (rank, float dtype, ``T > 0``, same ``C``), read without loading the data, so
    that a bad file stops a run before it starts rather than hours into it. Returns C (None for ``.npz``/``.pt``,
    whose files are only checked as they are loaded)."""
    first: Optional[tuple] = None
    for rec in records:
        shape = reader.peek(rec.video_id)
        if shape is None:
            return None
        if first is None:
            first = (rec.video_id, shape[1])
        elif shape[1] != first[1]:
            raise DataError(f"{reader.path(rec.video_id)}: video {rec.video_id!r}: features have {shape[1]} channels "
                            f"but video {first[0]!r} has {first[1]}; expected one C for the whole dataset")
    return None if first is None else first[1]


def check_feature_files(reader: FeatureReader, records: Iterable[VideoRecord]) -> None:
    """Every video must have its feature file; the error lists the first few missing ones."""
    missing = [(r.video_id, reader.path(r.video_id)) for r in records if not reader.path(r.video_id).is_file()]
    if missing:
        shown = "; ".join(f"video {vid!r}: {path}" for vid, path in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataError(f"{len(missing)} feature file(s) not found: {shown}{more} (expected one file per video: "
                        f"data.feature_dir / (data.file_prefix + video + data.file_suffix + data.file_ext))")


def _check_label_ids(annotations: AnnotationSet, records: List[VideoRecord], num_classes: int) -> None:
    """Every class id of the used splits must be below ``num_classes`` (the model's classes)."""
    for rec in records:
        bad = rec.labels[rec.labels >= num_classes]
        if len(bad):
            lid = int(bad[0])
            raise DataError(f"{annotations.path}: video {rec.video_id!r}, field 'label_id': {lid} "
                            f"({annotations.label_names.get(lid)!r}) is not a known class: expected an id below "
                            f"data.num_classes={num_classes}")


def skip_videos(annotations: AnnotationSet, cfg: DataConfig, data_root: Optional[Path], splits: List[str]) -> None:
    """Apply ``data.skip_videos_file`` (if set) to ``annotations``, warning once about the skipped videos."""
    if cfg.skip_videos_file:
        path = resolve_skip_file(cfg.skip_videos_file, data_root)
        apply_skip_list(annotations, read_skip_list(path), splits, path.name)


def prepare_data(cfg: DataConfig, data_root: Optional[Path], splits: List[str]) -> PreparedData:
    """Load the annotations, check the named splits and their feature files, infer C and the class count."""
    ann_path, feat_dir = resolve_paths(cfg, data_root)
    annotations = load_annotations(ann_path, cfg.default_fps)
    skip_videos(annotations, cfg, data_root, splits)
    if not feat_dir.is_dir():
        raise DataError(f"feature folder not found: {feat_dir}")
    reader = feature_reader(cfg, feat_dir)
    records: List[VideoRecord] = []
    for split in splits:
        split_recs = split_records(annotations, split)
        for rec in split_recs:
            if rec.fps is None:
                raise DataError(f"{ann_path}: video {rec.video_id!r}: field 'fps' is missing and data.default_fps "
                                "is not set")
        records.extend(split_recs)
    check_feature_files(reader, records)
    input_dim = cfg.input_dim if cfg.input_dim is not None else check_feature_headers(reader, records)
    if input_dim is None:  # .npz/.pt: the first file tells C
        input_dim = int(reader.load(records[0].video_id).shape[0])
    reader = feature_reader(cfg, feat_dir, input_dim)
    if cfg.input_dim is not None:
        check_feature_headers(reader, records)
    if cfg.num_classes is not None:
        num_classes = cfg.num_classes
        if not cfg.class_agnostic:
            _check_label_ids(annotations, records, num_classes)
    else:
        num_classes = annotations.num_classes
        if num_classes == 0 and not cfg.class_agnostic:
            raise DataError(f"{ann_path}: no annotated action, so the number of classes cannot be inferred")
    label_names = {i: annotations.label_names.get(i, f"class_{i}") for i in range(num_classes)}
    if cfg.class_agnostic:
        label_names = {0: "action"}
        num_classes = 1
    return PreparedData(annotations, reader, int(input_dim), int(num_classes), label_names,
                        None if data_root is None else Path(data_root))


def check_label_names(data_names: Mapping[int, str], model_names: Dict[int, str], ann_path: str,
                      model_dir: Path) -> None:
    """The annotation file's class ids (``label_id`` -> ``label``) must name the classes the model was trained on,
    when the checkpoint stores their names; else detections would be evaluated under the wrong names."""
    for lid, name in sorted(data_names.items()):
        trained = model_names.get(lid)
        if trained is not None and trained != name:
            raise DataError(f"{ann_path}: label_id {lid} is {name!r} but the model in {model_dir} was trained "
                            f"with label_id {lid} = {trained!r}; expected the class ids of the training data")
