"""transformers video models as backbones: ``--backbone hf:FOLDER_OR_HUB_ID`` (the optional ``hf`` extra).

A model folder (``config.json``, the weights, the processor's ``preprocessor_config.json`` or
``video_preprocessor_config.json``) is loaded with ``AutoModel``/``AutoVideoProcessor`` (falling back to
``AutoImageProcessor``) from disk only (``local_files_only=True``); a hub id is looked up in the local Hugging
Face cache, never downloaded. A folder whose configuration names custom code (``auto_map``) is refused unless
``trust_remote_code`` is given, because loading it runs that folder's Python code.

Pixels (:func:`decode_size`): each frame is decoded with its short side scaled to the processor's resize size
(``size.shortest_edge``) and the centre square of that side kept, or, for a processor that resizes whole frames to
``size.height`` x ``size.width``, squashed whole to that size; the processor then does its own resize (a no-op
at that size), centre crop and normalisation, so the model sees what its processor makes.

Clips of ``--window`` frames are resampled uniformly to the model's own clip length (VideoMAE
``config.num_frames``, V-JEPA 2 ``config.frames_per_clip``) when the two differ: model frame ``k`` of ``n`` is
window frame ``floor((k + 0.5) * W / n)``.

Feature: the mean over all tokens of the model's ``last_hidden_state`` ``[B, N, D] -> [B, D]``, D =
``config.hidden_size`` (per family: :data:`POOLING`).

transformers is imported only through :func:`import_transformers`, which runs torchvision's guarded import
(:func:`~rdfa_s6.video.backbones.import_torchvision`) first: transformers' processors import torchvision, and
without the guard that import fails beside a mismatched torchvision wheel.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..errors import UserError
from .backbones import Backbone, import_torchvision, sha256_of

log = logging.getLogger(__name__)

PREFIX = "hf:"
INSTALL = "pip install 'rdfa-s6[hf]'"
#: files whose bytes are a model's weights (their digests make ``Backbone.sha256``)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
#: how the clip feature is pooled, per ``config.model_type`` (docs/extract.md says why)
POOLING = {
    "videomae": "mean of VideoMAEModel's last_hidden_state over all tokens (the pooling of VideoMAE's "
                "classification head without its fc_norm, which belongs to the head)",
    "vjepa2": "mean of the encoder's last_hidden_state (after its final LayerNorm) over all tokens; the predictor "
              "is skipped",
}
DEFAULT_POOLING = "mean of last_hidden_state over all tokens"
#: extra forward arguments per ``config.model_type``
_FORWARD_KWARGS: Dict[str, Dict[str, Any]] = {"vjepa2": {"skip_predictor": True}}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def import_transformers():
    """``import transformers``, the only way this package imports it: torchvision's guarded import runs first.

    Raises :class:`UserError` (one line, ``pip install 'rdfa-s6[hf]'``) when transformers or torchvision is not
    installed.
    """
    try:
        import_torchvision()
    except UserError:
        raise UserError(f"--backbone hf:... needs transformers and torchvision: {INSTALL}") from None
    try:
        import transformers
    except ImportError:
        raise UserError(f"--backbone hf:... needs transformers: {INSTALL}") from None
    return transformers


def resolve(source: str) -> Tuple[Path, str]:
    """(the local model folder, its label for ``extraction.json``) of ``source``: a folder, else a hub id found in
    the local Hugging Face cache. Raises :class:`UserError` naming what is missing."""
    if not source:
        raise UserError("--backbone hf:FOLDER_OR_HUB_ID: nothing after 'hf:'")
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve(), path.resolve().name
    if path.exists():
        raise UserError(f"--backbone hf:{source}: not a folder (a transformers model folder holds config.json, the "
                        f"weights and the processor's configuration)")
    if not _HUB_ID.match(source):
        raise UserError(f"--backbone hf:{source}: no such folder")
    import_transformers()
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(source, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - any failure means: not in the cache
        raise UserError(f"--backbone hf:{source}: no such folder, and the hub id {source!r} is not in the local "
                        f"Hugging Face cache ({type(err).__name__}); download it first (hf download {source}) or "
                        f"give the model's folder") from None
    return folder, source


def folder_sha256(folder: Path) -> str:
    """sha256 over the weight files of ``folder`` (:data:`WEIGHT_SUFFIXES`), in name order: each file's name and
    hex digest are folded into one digest. Raises :class:`UserError` when there is none."""
    files = sorted((p for p in Path(folder).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)),
                   key=lambda p: p.name)
    if not files:
        raise UserError(f"{folder}: no weight file ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}); save the model "
                        f"with model.save_pretrained(FOLDER)")
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{sha256_of(p)}\n".encode("utf-8"))
    return digest.hexdigest()


def custom_code(folder: Path) -> List[str]:
    """The ``auto_map`` entries (``"modeling_x.XModel"``...) of the folder's model and processor configurations:
    code that loading the folder would run."""
    found: List[str] = []
    for name in ("config.json",) + PROCESSOR_FILES:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: not readable JSON ({str(err).splitlines()[0]})") from None
        auto_map = doc.get("auto_map") if isinstance(doc, dict) else None
        if isinstance(auto_map, dict):
            found += [str(v if isinstance(v, str) else next(iter(v), "")) for v in auto_map.values()]
        elif auto_map:
            found.append(str(auto_map))
    return found


def decode_size(processor: Any) -> Tuple[int, int]:
    """(short side, crop) to decode frames at for ``processor`` (``Backbone.short_side``/``crop``):

    - a resize of the short side (``size.shortest_edge``): that short side and its centre square, at least the
      processor's crop size: ``(S, S)``;
    - a resize to a fixed ``size.height`` x ``size.width`` (the whole frame, aspect ratio not kept): the whole frame
      squashed to a square of the larger of the two: ``(0, max(h, w))``;
    - no resize: the crop size, centre square.
    """
    def get(obj: Any, key: str) -> Optional[int]:
        value = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
        return int(value) if value else None

    size, crop = getattr(processor, "size", None) or {}, getattr(processor, "crop_size", None) or {}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop_side = max(get(crop, "height") or 0, get(crop, "width") or 0)
    if getattr(processor, "do_center_crop", True) is False:
        crop_side = 0
    resize = getattr(processor, "do_resize", True) is not False
    if resize and get(size, "shortest_edge"):
        side = max(get(size, "shortest_edge") or 0, crop_side)
        return side, side
    if resize and (get(size, "height") or get(size, "width")):
        return 0, max(get(size, "height") or 0, get(size, "width") or 0)
    if not crop_side:
        raise UserError(f"the processor {type(processor).__name__} gives no resize or crop size")
    return crop_side, crop_side


def uniform_indices(window: int, frames: int) -> Tensor:
    """``[frames]`` int64: which of ``window`` frames make a clip of ``frames``; frame ``k`` is
    ``floor((k + 0.5) * window / frames)`` (identity when equal; repeats when ``frames > window``)."""
    k = torch.arange(frames, dtype=torch.float64)
    return torch.floor((k + 0.5) * window / frames).to(torch.int64).clamp_(0, window - 1)


class ProcessorInput:
    """uint8 clips ``[B, W, S, S, 3]`` -> the model input the folder's processor makes (``[B, n, 3, H, W]``
    float32 for VideoMAE and V-JEPA 2), on the clips' device; ``W`` frames are resampled to ``n`` (the model's
    clip length, None: as given)."""

    def __init__(self, processor: Any, frames: Optional[int], label: str, is_video_processor: bool):
        self.processor, self.frames, self.label = processor, frames, label
        self.is_video_processor = is_video_processor
        self.key: Optional[str] = None  # the processor's output name, which is the model's input name
        self._told: set = set()

    def __call__(self, clips: Tensor) -> Tensor:
        w = clips.shape[1]
        if self.frames is not None and w != self.frames:
            if w not in self._told:
                self._told.add(w)
                log.info("%s takes clips of %d frames: each clip of %d frames is resampled uniformly to %d",
                         self.label, self.frames, w, self.frames)
            clips = clips[:, uniform_indices(w, self.frames).to(clips.device)]
        cpu = clips.cpu()
        if self.is_video_processor:
            # the clip's frames are chosen here (uniformly, above): the processor samples none of its own
            out = self.processor(list(cpu), return_tensors="pt", input_data_format="channels_last",
                                 do_sample_frames=False)
        else:  # an image processor: one list of [H, W, 3] frames per video
            out = self.processor([list(c.numpy()) for c in cpu], return_tensors="pt",
                                 input_data_format="channels_last")
        if self.key is None:
            self.key = next((k for k in out.keys() if k.startswith("pixel_values")), next(iter(out.keys())))
        return out[self.key].float().to(clips.device)


class MeanOfLastHiddenState(nn.Module):
    """A transformers model -> clip features: ``[B, ...]`` processor output -> ``[B, D]``, the mean of
    ``last_hidden_state`` ``[B, N, D]`` over its N tokens (a custom model whose first output is already ``[B, D]``
    is taken as it is)."""

    def __init__(self, model: nn.Module, pixels: ProcessorInput, extra: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.model = model
        self.pixels = pixels
        self.extra = dict(extra or {})

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(**{self.pixels.key or "pixel_values": x}, **self.extra)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return hidden if hidden.dim() == 2 else hidden.mean(dim=1)  # [B, D]: a model that pools itself


@contextlib.contextmanager
def _no_progress_bars(transformers: Any) -> Iterator[None]:
    """transformers' "Loading weights" bars off while a folder loads (restored after)."""
    tf_logging = transformers.utils.logging
    was = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tf_logging.enable_progress_bar()


def _load_processor(transformers: Any, folder: Path, trust: bool) -> Tuple[Any, bool]:
    errors = []
    for cls, is_video in (("AutoVideoProcessor", True), ("AutoImageProcessor", False)):
        try:
            return getattr(transformers, cls).from_pretrained(str(folder), local_files_only=True,
                                                              trust_remote_code=trust), is_video
        except Exception as err:  # noqa: BLE001 - try the next kind, report both
            errors.append(f"{cls}: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}")
    raise UserError(f"{folder}: no usable processor configuration ({'; '.join(errors)})")


def load(source: str, trust_remote_code: bool = False) -> Backbone:
    """The backbone of ``hf:<source>`` in eval mode (parameters frozen), float32. Raises :class:`UserError` in one
    line for a missing folder, file, package, or custom code without ``trust_remote_code``."""
    folder, label = resolve(source)
    spec = f"{PREFIX}{source}"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UserError(f"--backbone {spec}: no config.json in {folder} (a transformers model folder: save it with "
                        f"model.save_pretrained(FOLDER))")
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        raise UserError(f"--backbone {spec}: no {' or '.join(PROCESSOR_FILES)} in {folder}: save the model's "
                        f"processor there too (processor.save_pretrained(FOLDER))")
    code = custom_code(folder)
    if code and not trust_remote_code:
        raise UserError(f"--backbone {spec}: its configuration needs custom code ({', '.join(code)}); "
                        f"--trust-remote-code allows it, which runs the Python code in that folder: pass it only "
                        f"for a folder you trust")
    digest = folder_sha256(folder)
    transformers = import_transformers()
    try:
        with _no_progress_bars(transformers):
            config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                                             trust_remote_code=trust_remote_code)
            model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True,
                                                           trust_remote_code=trust_remote_code)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever transformers says, in one line
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--backbone {spec}: transformers cannot load {folder} ({text})") from None
    processor, is_video = _load_processor(transformers, folder, trust_remote_code)
    model_type = str(getattr(config, "model_type", ""))
    frames = getattr(config, "num_frames", None) or getattr(config, "frames_per_clip", None)
    dim = getattr(config, "hidden_size", None)
    if not isinstance(dim, int):
        raise UserError(f"--backbone {spec}: config.json has no hidden_size (the feature size)")
    short_side, side = decode_size(processor)
    pixels = ProcessorInput(processor, int(frames) if frames else None, spec, is_video)
    pixels(torch.zeros((1, int(frames or 2), side, side, 3), dtype=torch.uint8))  # learn the input's name
    module = MeanOfLastHiddenState(model.float().eval(), pixels, _FORWARD_KWARGS.get(model_type))
    mean = tuple(float(v) for v in (getattr(processor, "image_mean", None) or (0.0, 0.0, 0.0)))[:3]
    std = tuple(float(v) for v in (getattr(processor, "image_std", None) or (1.0, 1.0, 1.0)))[:3]
    name = f"{PREFIX}{folder}" if Path(source).expanduser().is_dir() else spec
    log.info("%s: %s, %d-d features (%s)", spec, type(model).__name__, dim, POOLING.get(model_type, DEFAULT_POOLING))
    return Backbone(name, module, dim, short_side, side, mean, std,  # type: ignore[arg-type]
                    weights=f"{PREFIX}{label}", sha256=digest,
                    config_sha256=hashlib.sha256(config_path.read_bytes()).hexdigest(), transform=pixels)


def write_random_model(folder: Path, family: str = "videomae", seed: int = 0, **config: Any) -> Path:
    """Save a randomly initialised ``family`` model (``videomae`` or ``vjepa2``) with its processor into ``folder``
    (tests, the demo, the benchmark). ``config`` overrides the config class's defaults (``tiny=True``-like sizes
    come from :data:`TINY`); the processor resizes to the model's input size."""
    transformers = import_transformers()
    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "videomae":
            cfg = transformers.VideoMAEConfig(**config)
            model = transformers.VideoMAEModel(cfg)
            size = cfg.image_size
            processor = transformers.VideoMAEImageProcessor(size={"shortest_edge": size},
                                                            crop_size={"height": size, "width": size})
        elif family == "vjepa2":
            cfg = transformers.VJEPA2Config(**config)
            model = transformers.VJEPA2Model(cfg)
            processor = transformers.VJEPA2VideoProcessor(crop_size=cfg.crop_size)
        else:
            raise ValueError(f"family must be videomae or vjepa2, got {family!r}")
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


#: tiny configurations (32 px, 4 frames, 2 layers, 32 channels): fast random models for tests and the demo
TINY: Dict[str, Dict[str, Any]] = {
    "videomae": dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64),
    "vjepa2": dict(crop_size=32, frames_per_clip=4, patch_size=8, tubelet_size=2, hidden_size=32,
                   num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2.0, pred_hidden_size=32,
                   pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=2),
}


__all__ = ["DEFAULT_POOLING", "INSTALL", "POOLING", "PREFIX", "TINY", "custom_code", "decode_size", "folder_sha256",
           "import_transformers", "load", "resolve", "uniform_indices", "write_random_model"]
