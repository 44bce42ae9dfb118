"""The Python API: one inference pipeline from features to detections in seconds.

    >>> from rdfa_s6 import Detector
    >>> det = Detector.from_pretrained("runs/x")          # a run folder or a checkpoint folder
    >>> dets = det.predict(feats, fps=30.0)                # feats: [T, C] array/tensor or a feature file path
    >>> dets[0].start, dets[0].end, dets[0].label, dets[0].score
    >>> det.predict_many({"vid": feats}, fps=30.0)         # {video_id: [Detection, ...]}, batched
    >>> det.predict_video("match.mp4")                     # a video file: extracted as the training features were
    >>> s = det.stream(fps=30.0); s.push(rows); s.close()  # a live stream of [n, C] rows (docs/streaming.md)

Units: ``fps`` is frames per second of the video the features were extracted from; ``stride`` (frames between
two rows of the feature array) and ``window`` (frames per clip) default to the model's ``data.feat_stride`` and
``data.num_frames``. Row ``t`` of a ``[T, C]`` feature array is centred at ``(t * stride + window / 2) / fps``
seconds (docs/custom-data.md); detections are clipped to the ``((T - 1) * stride + window) / fps`` seconds the
rows cover.

The pipeline (features -> model input -> padded batch on the model's device -> network -> decode -> NMS ->
optional score fusion -> seconds) is the one ``rdfa-s6 infer``, ``test``, ``train`` (validation) and ``demo``
use: the dataset path builds its batches with the same :func:`rdfa_s6.data.dataset.model_input` and
:meth:`rdfa_s6.data.batch.Batch.pad`, and every path ends in :func:`rdfa_s6.infer.predictor.predict_batch`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .checkpoint import META_FILE, load_detector, read_meta, resolve_model_dir
from .config import Config
from .data.batch import Batch
from .errors import DataError, UserError
from .formats import meta as metadata
from .formats.scores import score_array
from .infer.inputs import FeatureInput, batch_rows, prepare_video, same_length_groups
from .infer.predictor import predict_batch
from .models.detector import DetectorNet
from .progress import Progress, notebook_bar

if TYPE_CHECKING:
    from .stream import DetectionStream

__all__ = ["Detection", "Detector", "FeatureInput"]

#: external class scores of one video, ``[p_0 .. p_K]`` (index = class id)
ClassScores = Union[Sequence[float], np.ndarray, Tensor]


@dataclass(frozen=True)
class Detection:
    """One detected action: ``start``/``end`` in seconds, ``label`` (class name), ``score`` in [0, 1]."""

    start: float
    end: float
    label: str
    score: float
    label_id: int = -1  #: the class id (the annotation file's ``label_id``); -1 when unknown

    def to_dict(self) -> Dict[str, Any]:
        """The ActivityNet results entry: ``{"segment": [start, end], "label", "score", "label_id"}``."""
        return {"segment": [self.start, self.end], "label": self.label, "label_id": self.label_id,
                "score": self.score}

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "Detection":
        start, end = entry["segment"]
        return cls(float(start), float(end), str(entry["label"]), float(entry["score"]),
                   int(entry.get("label_id", -1)))


class Detector:
    """A trained detector: the network, its config and its class names.

    Build it with :meth:`from_pretrained`; call :meth:`predict` / :meth:`predict_many`. ``model`` is the
    :class:`rdfa_s6.models.DetectorNet` network (in eval mode), ``config`` its resolved :class:`~rdfa_s6.config.Config`.
    """

    def __init__(self, model: DetectorNet, config: Config, label_names: Optional[Mapping[int, str]] = None,
                 class_names: Optional[Mapping[int, str]] = None, video_fps: Optional[float] = None,
                 source: Optional[Path] = None, precision: str = "auto",
                 extraction: Optional[Mapping[str, Any]] = None) -> None:
        from .precision import PRECISIONS

        if precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.model = model.eval()
        self.config = config
        #: forward precision: ``fp32`` (exact), ``bf16`` (matmuls in bfloat16; scan, norms and decoding in float32)
        #: or ``auto`` (bf16 where the hardware has fast bfloat16, :mod:`rdfa_s6.precision`)
        self.precision = precision
        #: the class names the checkpoint stores (empty for converted official weights, which have none)
        self.trained_names: Dict[int, str] = dict(label_names or {})
        #: names of the network's classes (``{0: "action"}`` for a class-agnostic model; ``class_<id>`` if unknown)
        self.label_names: Dict[int, str] = dict(self.trained_names) or {
            i: f"class_{i}" for i in range(model.num_classes)}
        #: the dataset's ``label_id -> label`` map: names of fused detections (external class ids)
        self.class_names: Dict[int, str] = dict(class_names or {}) or dict(self.label_names)
        #: the frame rate every training video had, when they all had one (used when ``fps`` is not given)
        self.video_fps = video_fps
        self.source = source
        #: how the training features were extracted (``rdfa-s6 extract`` settings), None when made elsewhere
        self.extraction: Optional[Dict[str, Any]] = dict(extraction) if extraction else None
        self._video_backbone: Any = None

    # ---- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: Union[str, Path], device: Union[str, torch.device] = "auto",
                        weight_set: str = "ema", precision: str = "auto",
                        weights: Optional[str] = None) -> "Detector":
        """Load a checkpoint folder, or a run folder (its ``final/`` model, else its newest checkpoint).

        ``device``: ``auto`` (default: the first CUDA GPU if there is one, else the CPU), ``cpu``, ``cuda``,
        ``cuda:N`` or ``mps``, as ``--device`` of the commands. ``weight_set``: ``ema`` (default: the EMA model of a
        trained run, ``model.safetensors``), ``raw`` (``raw.safetensors``) or the name of another
        ``<name>.safetensors`` of the folder, as ``rdfa-s6 convert --weight-set``. ``precision``: ``auto``
        (default: bf16 where the hardware has fast bfloat16, else fp32), ``fp32``, ``bf16``. ``weights`` is the
        old name of ``weight_set`` (``"model"`` for the EMA set), accepted with a DeprecationWarning. Raises
        :class:`~rdfa_s6.errors.DataError` naming the file when something is missing or malformed.
        """
        from .device import resolve_device

        if weights is not None:
            import warnings

            warnings.warn("Detector.from_pretrained(weights=...) is deprecated; use weight_set= ('ema' for the "
                          "model.safetensors set, 'raw', or another set's name)", DeprecationWarning, stacklevel=2)
            weight_set = weights
        file_stem = {"ema": "model"}.get(weight_set, weight_set)
        dev = resolve_device(device)  # before reading anything: a device this machine lacks is a one-line error
        for attempt in range(3):
            model_dir = resolve_model_dir(Path(path))
            try:
                model, cfg = load_detector(model_dir, weights=file_stem, device=dev)
                meta = read_meta(model_dir)
                break
            except DataError:
                # a run that is training publishes newer checkpoints and prunes old ones: the checkpoint found a
                # moment ago may be gone; look again for the newest (a checkpoint that is there is never changed)
                if attempt == 2 or model_dir.exists():
                    raise
        name = str(model_dir / META_FILE)
        label_names = metadata.label_names(meta, name, model.num_classes)
        class_names = metadata.id_names(meta, "class_names", name)
        video_fps = metadata.video_fps(meta)
        extraction = metadata.extraction(meta)
        if extraction is None:
            from .video.records import run_extraction

            extraction = run_extraction(model_dir)
        return cls(model, cfg, label_names, class_names, video_fps, source=model_dir, precision=precision,
                   extraction=extraction)

    # ---- properties --------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    @property
    def input_dim(self) -> int:
        return int(self.model.input_dim)

    @property
    def default_fps(self) -> Optional[float]:
        """``data.default_fps`` of the config, else the frame rate recorded from the training videos."""
        return self.config.data.default_fps or self.video_fps

    def to(self, device: Union[str, torch.device]) -> "Detector":
        self.model.to(device)
        return self

    def __repr__(self) -> str:
        return (f"Detector({self.source or 'in memory'}, {self.num_classes} classes, input_dim={self.input_dim}, "
                f"device={self.device})")

    # ---- inference -------------------------------------------------------------------------------------------
    def predict(self, feats: FeatureInput, fps: Optional[float] = None, *, stride: Optional[float] = None,
                window: Optional[float] = None, ext_scores: Optional[ClassScores] = None,
                min_score: float = 0.0, video_id: Optional[str] = None) -> List[Detection]:
        """Detections of one video, best first.

        Args:
            feats: ``[T, C]`` features (numpy array or tensor, any float dtype) or a ``.npy``/``.npz``/``.pt``
                feature file.
            fps: frame rate of the video (default :attr:`default_fps`; required when that is None).
            stride, window: frames between rows and frames per clip (default: the config's).
            ext_scores: video-level class scores ``[p_0 .. p_K]`` of an external classifier (index = class id):
                the detections are fused with them (``sqrt(p_class * p_segment)`` for the top classes).
            min_score: detections scored below this are dropped.
        """
        vid = video_id or (Path(feats).stem if isinstance(feats, (str, Path)) else "video")
        external = None if ext_scores is None else {vid: ext_scores}
        return self.predict_many({vid: feats}, fps, stride=stride, window=window, ext_scores=external,
                                 min_score=min_score)[vid]

    def predict_many(self, videos: Mapping[str, FeatureInput],
                     fps: Union[None, float, Mapping[str, float]] = None, *, stride: Optional[float] = None,
                     window: Optional[float] = None, ext_scores: Optional[Mapping[str, ClassScores]] = None,
                     min_score: float = 0.0, batch_size: int = 8,
                     on_video: Optional[Callable[[str], None]] = None,
                     on_error: Optional[Callable[[str, UserError], None]] = None) -> Dict[str, List[Detection]]:
        """Detections of several videos: ``{video_id: [Detection, ...]}`` in the order of ``videos``.

        Videos are batched through the network (``batch_size`` at most) only with videos padded to the same
        length, so the result equals :meth:`predict` on each video alone (padding changes the backward scan
        and the channel pooling, docs/custom-data.md). ``fps`` is one number or one per video. ``ext_scores``
        maps some or all videos to external class scores (fusion for those videos only). ``on_video(id)`` is
        called after each video (progress display). A video whose features cannot be used (a missing, corrupt
        or wrongly shaped file: a :class:`~rdfa_s6.errors.UserError`) raises, unless ``on_error(id, error)`` is
        given: then it is reported there, left out of the result, and the other videos go on.
        """
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if not math.isfinite(min_score):
            raise UserError(f"min_score must be a number, got {min_score}")
        prepared = []
        for vid, feats in videos.items():
            try:
                prepared.append(prepare_video(vid, feats, self.config.data, self.input_dim,
                                              _fps_of(fps, vid, self.default_fps), stride, window))
            except UserError as err:
                if on_error is None:
                    raise
                on_error(vid, err)
                if on_video is not None:
                    on_video(vid)
        external = {vid: score_array(v, f"external class scores of video {vid!r}")
                    for vid, v in (ext_scores or {}).items()}
        results: Dict[str, List[Detection]] = {}
        for group in same_length_groups(prepared, batch_size, self.config.data.max_seq_len,
                                        self.model.max_div_factor):
            batch = Batch.pad([p.feats for p in group], [p.meta for p in group], self.config.data.max_seq_len,
                                    self.model.max_div_factor, training=False)
            batch = batch.to(self.device)
            fused = {p.video_id: external[p.video_id] for p in group if p.video_id in external}
            plain = [p for p in group if p.video_id not in fused]
            if plain:
                out = predict_batch(self.model, batch_rows(batch, plain, group), self.config.infer, self.label_names,
                                    precision=self.precision)
                results.update({vid: _detections(d, min_score) for vid, d in out.items()})
            if fused:
                out = predict_batch(self.model, batch_rows(batch, [p for p in group if p.video_id in fused], group),
                                    self.config.infer, self.class_names, fused, precision=self.precision)
                results.update({vid: _detections(d, min_score) for vid, d in out.items()})
            if on_video is not None:
                for p in group:
                    on_video(p.video_id)
        return {vid: results[vid] for vid in videos if vid in results}

    def predict_video(self, path: Union[str, Path], *, backbone_weights: Optional[Union[str, Path]] = None,
                      min_score: float = 0.0, batch_size: int = 8, device: Optional[str] = None,
                      precision: Optional[str] = None, ext_scores: Optional[ClassScores] = None,
                      weights: Optional[Union[str, Path]] = None, backbone: Optional[Any] = None,
                      trust_remote_code: bool = False) -> List[Detection]:
        """Detections of one video file: its clip features are extracted with the backbone, weights, fps, stride
        and window the model's training features were extracted with (recorded from ``extraction.json`` of the
        training data), then :meth:`predict` runs on them.

        ``backbone_weights``: the backbone's state dict file (``--backbone-weights`` of the commands), when the
        training features used trained weights that are not in torchvision's cache (checked against the recorded
        sha256); ``weights`` is its old name (DeprecationWarning). ``device``/``precision`` of the backbone
        default to the model's device and the recorded precision. ``ext_scores``: the video's external class
        scores, fused as in :meth:`predict`. ``backbone``: a :class:`rdfa_s6.video.backbones.Backbone` built by the
        caller (a plug-in), used instead of rebuilding the recorded one. ``trust_remote_code``: allow an ``hf:``
        backbone folder's custom code or a ``py:`` plug-in to run when the recorded backbone is rebuilt
        (``--trust-remote-code``; off by default). Raises UserError when the model's features cannot be made here (a
        model trained on features made elsewhere), or when the backbone is not the one the features came from
        (another name, weights origin, weights sha256 or config sha256), in one short line.
        """
        from .messages import shown
        from .video.reproduce import backbone_for, check_identity, describe, video_features

        if weights is not None:
            import warnings

            warnings.warn("predict_video(weights=...) is deprecated; use backbone_weights=", DeprecationWarning,
                          stacklevel=2)
            backbone_weights = weights
        if not self.extraction:
            raise UserError(f"{shown(path)}: this model was not trained on features from `rdfa-s6 extract`; it takes "
                            f"{describe(None, self.input_dim)}")
        if self.extraction["feature_dim"] != self.input_dim:
            raise DataError(f"{self.source}: the recorded extraction gives {self.extraction['feature_dim']}-d "
                            f"features but the model expects {self.input_dim}")
        if backbone is not None:  # the caller's backbone, if it is the one the features came from
            self._video_backbone = check_identity(self.extraction, backbone)
        elif self._video_backbone is None or backbone_weights is not None:
            self._video_backbone = backbone_for(self.extraction,
                                                None if backbone_weights is None else Path(backbone_weights),
                                                trust_remote_code=trust_remote_code)
        feats, info = video_features(Path(path), self.extraction, self._video_backbone, batch_size=batch_size,
                                     device=device or str(self.device), precision=precision)
        return self.predict(feats, fps=info["fps"], stride=self.extraction["stride"],
                            window=self.extraction["window"], ext_scores=ext_scores, min_score=min_score,
                            video_id=Path(path).stem)

    def stream(self, fps: Optional[float] = None, *, stride: Optional[float] = None, window: Optional[float] = None,
               window_steps: Optional[int] = None, hop_steps: Optional[int] = None,
               min_score: float = 0.0) -> "DetectionStream":
        """A live stream of feature rows: ``s.push(rows)`` returns the detections that became final, ``s.close()``
        the rest (:class:`rdfa_s6.stream.DetectionStream`; docs/streaming.md).

        ``fps``, ``stride``, ``window``: as in :meth:`predict`. The model runs on windows of ``window_steps`` model
        steps (default ``data.max_seq_len``) every ``hop_steps`` (default half a window); a stream no longer than
        one window gives exactly :meth:`predict`'s detections. Each detection carries ``emitted``, the stream time
        (seconds) it was reported at.
        """
        from .stream import DetectionStream

        return DetectionStream(self, fps, stride=stride, window=window, window_steps=window_steps,
                               hop_steps=hop_steps, min_score=min_score)

    # ---- evaluation on a dataset ---------------------------------------------------------------------------
    def with_overrides(self, overrides: Sequence[str]) -> "Detector":
        """A detector with ``infer.*`` / ``eval.*`` settings changed (``"infer.nms_sigma=0.75"``); the network and
        everything it was trained with stay as they are (other keys are a ConfigError naming them)."""
        from .config import apply_override, config_from_dict, config_to_dict
        from .errors import ConfigError

        if not overrides:
            return self
        raw = config_to_dict(self.config)
        for item in overrides:
            if not item.split("=", 1)[0].startswith(("infer.", "eval.")):
                raise ConfigError(f"{item}: only infer.* and eval.* can be overridden when testing a trained model")
            apply_override(raw, item)
        cfg = config_from_dict(raw, source="overrides")
        return Detector(self.model, cfg, self.trained_names, self.class_names, self.video_fps, self.source,
                        self.precision, self.extraction)

    def evaluate(self, data_root: Optional[Union[str, Path]] = None, split: Optional[str] = None,
                 progress: Union[bool, Progress] = False) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """Detect on every video of ``split`` (default ``data.test_split``) of the dataset the config names
        (under ``data_root``) and score them: ``(results JSON dict, metrics dict)``, the metrics in the shape of
        ``rdfa-s6 evaluate --json``. The dataset's class ids must name the model's classes. ``progress``: True for
        a ``tqdm.auto`` bar (a notebook's or a terminal's), or a callback ``progress(done, total)``."""
        from .data.prepare import check_label_names, prepare_data
        from .errors import ConfigError
        from .infer.runner import evaluate_split

        split = split or self.config.data.test_split
        data = prepare_data(self.config.data, None if data_root is None else Path(data_root), [split])
        if data.num_classes != self.num_classes:
            raise ConfigError(f"the dataset has {data.num_classes} classes but the model in {self.source} predicts "
                              f"{self.num_classes}")
        if not self.config.data.class_agnostic:
            check_label_names(data.annotations.label_names, self.trained_names, data.annotations.path,
                              self.source or Path("<in memory>"))
        if progress is True:
            progress = notebook_bar(f"predict {split}")
        return evaluate_split(self.model, self.config, data, split, progress=progress or None,
                              precision=self.precision)


def _detections(entries: List[Dict[str, Any]], min_score: float) -> List[Detection]:
    return [Detection.from_dict(e) for e in entries if e["score"] >= min_score]


def _fps_of(fps: Union[None, float, Mapping[str, float]], video_id: str, default: Optional[float]) -> Optional[float]:
    """The frame rate of ``video_id``: ``fps`` (one number, or one per video), else ``default``."""
    given = fps.get(video_id) if isinstance(fps, Mapping) else (None if fps is None else float(fps))
    return given if given is not None else default


def __dir__() -> List[str]:
    return sorted(__all__)
