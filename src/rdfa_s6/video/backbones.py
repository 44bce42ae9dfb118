"""Video backbones: a small registry of functions that build a clip encoder, its input size and normalisation.

A backbone maps a batch of clips ``[B, 3, W, crop, crop]`` float (normalised) to features ``[B, C]``: the
clip-level vector taken before the classifier. Register a new one with ``@register("name")`` on a function
``(weights: Optional[dict]) -> Backbone`` (see ``docs/extract.md``); ``weights`` is a state dict, or ``None``
for a random initialisation (seeded by the caller). Beside the registry, ``build_backbone`` takes
``hf:FOLDER_OR_HUB_ID`` (a transformers video model, :mod:`.hf`) and ``py:FILE_OR_MODULE:FACTORY`` (a code
plug-in, :mod:`.plugin`).

torchvision (``import_torchvision``): only torchvision's pure-Python model definitions are used (decoding is
PyAV). When its compiled ops cannot load beside the installed torch (e.g. a CUDA torchvision wheel next to a
CPU torch), ``import torchvision`` fails while registering fake kernels for ``torchvision::nms``; the guarded
import skips those registrations for ops that do not exist and imports the rest.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ..errors import UserError

log = logging.getLogger(__name__)

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    """A clip encoder with what its input must look like.

    ``module``: ``[B, 3, W, crop, crop]`` float32 normalised -> ``[B, feature_dim]``. Frames are decoded with the
    short side scaled to ``short_side`` pixels and centre-cropped to ``crop`` (``short_side`` 0: the whole frame
    resized to ``crop x crop``, the aspect ratio not kept); ``window`` is the only clip length
    the model accepts (``None``: any). ``mean``/``std`` are per RGB channel on [0, 1] pixel values.
    """

    name: str
    module: nn.Module
    feature_dim: int
    short_side: int
    crop: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    window: Optional[int] = None
    #: the weights' origin, written to extraction.json: a file name with sha256, "random-init", or "weight-free"
    weights: str = ""
    sha256: Optional[str] = None
    #: sha256 of the backbone's configuration (a transformers ``config.json``, a plug-in's settings); None for the
    #: built-in architectures, whose configuration is their name
    config_sha256: Optional[str] = None
    #: the backbone's own pixel preparation, ``[B, W, H, W, 3]`` uint8 -> ``module``'s input (a transformers
    #: processor for ``hf:`` backbones); None: normalise with ``mean``/``std`` into ``[B, 3, W, H, W]``
    transform: Optional[Callable[[Tensor], Tensor]] = None

    def preprocess(self, clips: Tensor) -> Tensor:
        """``[B, W, H, W, 3]`` uint8 clips -> ``[B, 3, W, H, W]`` float32 normalised (on ``clips``' device), or
        what :attr:`transform` makes."""
        if self.transform is not None:
            return self.transform(clips)
        # normalise in the contiguous channels-last layout (one pass), then one copy to channels-first
        scale = torch.tensor([1.0 / (255.0 * s) for s in self.std], device=clips.device)
        shift = torch.tensor([m / s for m, s in zip(self.mean, self.std)], device=clips.device)
        x = clips.float().mul_(scale).sub_(shift)  # (x / 255 - mean) / std
        return x.permute(0, 4, 1, 2, 3).contiguous()


BackboneFn = Callable[[Optional[Mapping[str, Tensor]]], Backbone]
BACKBONES: Dict[str, BackboneFn] = {}
#: backbones whose weights are optional (no trained parameters): ``--backbone-weights``/``--random-init`` do not apply
WEIGHT_FREE = {"colour-motion"}


def register(name: str) -> Callable[[BackboneFn], BackboneFn]:
    def wrap(fn: BackboneFn) -> BackboneFn:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} registered twice")
        BACKBONES[name] = fn
        return fn
    return wrap


# --------------------------------------------------------------------------------------------- torchvision
@contextlib.contextmanager
def _skip_fake_registrations_of_missing_ops() -> Iterator[None]:
    original = torch.library.register_fake

    def exists(op) -> bool:
        try:
            torch._C._dispatch_find_schema_or_throw(op, "")
            return True
        except RuntimeError:
            return False

    def guarded(op, func=None, /, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::") and not exists(op):
            log.debug("torchvision: skipping the fake kernel of %s (its compiled op is not loaded)", op)
            return (lambda fn: fn) if func is None else func
        return original(op, func, *args, **kwargs)

    torch.library.register_fake = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.library.register_fake = original  # type: ignore[assignment]


def import_torchvision():
    """``import torchvision``, working around a wheel whose compiled ops do not match the installed torch.

    The plain import is tried first. Only if it fails with ``operator torchvision::... does not exist`` (raised
    by ``torchvision/_meta_registrations.py``, which registers fake kernels for ``nms``/``qnms`` without checking
    that the ops loaded), the half-imported modules are dropped and the import is retried with
    ``torch.library.register_fake`` wrapped so that it skips ``torchvision::*`` ops that do not exist; the
    wrapper is removed afterwards. The video models are pure Python and work either way; the compiled ops
    (NMS, RoI pooling, video decoding) stay unavailable, and this package does not use them.
    """
    try:
        import torchvision
        return torchvision
    except ImportError as err:
        raise UserError("the torchvision backbones need torchvision: pip install 'rdfa-s6[video]'") from err
    except RuntimeError as err:
        if "torchvision::" not in str(err) or "does not exist" not in str(err):
            raise
        log.info("torchvision's compiled ops do not load (%s); importing its Python parts only", err)
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    with _skip_fake_registrations_of_missing_ops():
        import torchvision
    return torchvision


def _tv_video_model(arch: str, weights: Optional[Mapping[str, Tensor]]) -> nn.Module:
    tv = import_torchvision()
    model = getattr(tv.models.video, arch)(weights=None)
    if weights is not None:
        try:
            missing, unexpected = model.load_state_dict(dict(weights), strict=False)
        except RuntimeError as err:  # shape mismatches
            raise UserError(f"the weights do not fit torchvision's {arch}: "
                            f"{str(err).splitlines()[-1].strip()}") from None
        if missing or unexpected:
            raise UserError(f"the weights do not fit torchvision's {arch}: {len(missing)} missing keys (e.g. "
                            f"{list(missing)[:2]}), {len(unexpected)} unexpected (e.g. {list(unexpected)[:2]})")
    return model


class _MeanOverSpaceTime(nn.Module):
    """S3D: features [B, C, t, h, w] -> avgpool -> mean over (t, h, w) -> [B, C] (torchvision's forward, no
    classifier)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.features: nn.Module = model.features  # type: ignore[assignment]
        self.avgpool: nn.Module = model.avgpool  # type: ignore[assignment]

    def forward(self, x: Tensor) -> Tensor:
        return self.avgpool(self.features(x)).mean(dim=(2, 3, 4))


@register("r3d_18")
def r3d_18(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    model = _tv_video_model("r3d_18", weights)
    model.fc = nn.Identity()  # [B, 512] after the global average pool
    return Backbone("r3d_18", model, 512, 128, 112, KINETICS_MEAN, KINETICS_STD)


@register("r2plus1d_18")
def r2plus1d_18(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    model = _tv_video_model("r2plus1d_18", weights)
    model.fc = nn.Identity()
    return Backbone("r2plus1d_18", model, 512, 128, 112, KINETICS_MEAN, KINETICS_STD)


@register("s3d")
def s3d(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    return Backbone("s3d", _MeanOverSpaceTime(_tv_video_model("s3d", weights)), 1024, 256, 224, KINETICS_MEAN,
                    KINETICS_STD)


@register("mvit_v2_s")
def mvit_v2_s(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    model = _tv_video_model("mvit_v2_s", weights)
    model.head = nn.Identity()  # [B, 768]: the normalised class token
    return Backbone("mvit_v2_s", model, 768, 256, 224, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225), window=16)


@register("swin3d_t")
def swin3d_t(weights: Optional[Mapping[str, Tensor]]) -> Backbone:
    model = _tv_video_model("swin3d_t", weights)
    model.head = nn.Identity()  # [B, 768] after the average pool
    return Backbone("swin3d_t", model, 768, 256, 224, IMAGENET_MEAN, IMAGENET_STD)


#: torchvision's weight enums per architecture (their ``KINETICS400_V1`` file is looked up in torch's hub cache)
_TV_WEIGHTS = {"r3d_18": "R3D_18_Weights", "r2plus1d_18": "R2Plus1D_18_Weights", "s3d": "S3D_Weights",
               "mvit_v2_s": "MViT_V2_S_Weights", "swin3d_t": "Swin3D_T_Weights"}


def _cached_torchvision_weights(name: str) -> Tuple[Optional[Path], str]:
    """(the file in torch's hub cache if present, its download URL)."""
    tv = import_torchvision()
    url = getattr(tv.models.video, _TV_WEIGHTS[name]).KINETICS400_V1.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return (path if path.is_file() else None), url


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_backbone(name: str, weights: Optional[Path] = None, random_init: bool = False, seed: int = 0,
                   trust_remote_code: bool = False) -> Backbone:
    """The backbone ``name`` in eval mode, with weights from ``weights`` (a state dict file), else torchvision's
    hub cache, else (``random_init``) a random initialisation seeded with ``seed``. Raises UserError otherwise.

    ``hf:FOLDER_OR_HUB_ID`` loads a transformers model folder (:mod:`.hf`), ``py:FILE_OR_MODULE:FACTORY`` calls a
    plug-in's factory (:mod:`.plugin`); both take their weights from there (no ``weights``/``random_init``) and
    run code from outside the package only with ``trust_remote_code`` (a folder's custom modelling code, the
    plug-in itself)."""
    if name.startswith(("hf:", "py:")):
        return _external_backbone(name, weights, random_init, seed, trust_remote_code)
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; expected one of {', '.join(sorted(BACKBONES))}")
    if weights is not None and random_init:
        raise UserError("--backbone-weights and --random-init exclude each other")
    fn = BACKBONES[name]
    state, origin, digest = None, "", None
    if name in WEIGHT_FREE:
        if weights is not None:
            raise UserError(f"backbone {name!r} has no weights; drop --backbone-weights")
        origin = "weight-free"
    elif weights is not None:
        state, origin, digest = _load_state(Path(weights)), str(weights), sha256_of(Path(weights))
    elif not random_init:
        cached, url = _cached_torchvision_weights(name) if name in _TV_WEIGHTS else (None, "")
        if cached is None:
            where = (f" download {url} (torchvision's Kinetics-400 weights) and pass --backbone-weights FILE, or put "
                     f"it in {Path(torch.hub.get_dir()) / 'checkpoints'},") if url else " pass --backbone-weights FILE,"
            raise UserError(f"no weights for backbone {name!r}:{where} or use --random-init (features of an "
                            f"untrained network, for tests and demos)")
        state, origin, digest = _load_state(cached), str(cached), sha256_of(cached)
    else:
        origin = "random-init"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = fn(state)
    backbone.weights, backbone.sha256 = origin, digest
    backbone.module.eval()
    for p in backbone.module.parameters():
        p.requires_grad_(False)
    return backbone


def backbone_path(name: str) -> Optional[Path]:
    """The local folder of an ``hf:FOLDER`` backbone or the file of a ``py:FILE.py:FACTORY`` one (inputs that an
    output must not be); None for other names."""
    if name.startswith("hf:") and Path(name[3:]).expanduser().is_dir():
        return Path(name[3:]).expanduser()
    if name.startswith("py:"):
        target = name[3:].rpartition(":")[0]
        if target.endswith(".py"):
            return Path(target).expanduser()
    return None


def _external_backbone(name: str, weights: Optional[Path], random_init: bool, seed: int,
                       trust_remote_code: bool) -> Backbone:
    if weights is not None or random_init:
        where = "the model folder" if name.startswith("hf:") else "the plug-in"
        option = "--backbone-weights" if weights is not None else "--random-init"
        raise UserError(f"--backbone {name}: the weights come from {where}; drop {option}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name.startswith("hf:"):
            from .hf import load

            backbone = load(name[3:], trust_remote_code)
        else:
            from .plugin import load_plugin

            backbone = load_plugin(name[3:], trust_remote_code)
    backbone.module.eval()
    for p in backbone.module.parameters():
        p.requires_grad_(False)
    return backbone


def _load_state(path: Path) -> Dict[str, Tensor]:
    if not path.is_file():
        raise UserError(f"--backbone-weights {path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"--backbone-weights {path}: not a torch state dict ({str(err).splitlines()[0]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"--backbone-weights {path}: expected a state dict (parameter name -> tensor)")
    return state


from . import handcrafted as _handcrafted  # noqa: E402,F401  (registers the weight-free "colour-motion" backbone)
