"""Numeric precision of a forward pass: float32, or bfloat16 for the matmuls where the hardware has it.

``bf16`` runs every matmul-like op (the Linear projections, the embedding and head convolutions) in bfloat16
under :func:`torch.autocast`; the selective scan always runs in float32 inside (``rdfa_s6.ssm.selective_scan``
disables autocast), and LayerNorm, reductions, softmax/sigmoid and losses stay float32 (autocast's own
float32 lists, plus :class:`rdfa_s6.models.blocks.ChannelLayerNorm` computing in float32).

``auto`` picks ``bf16`` where bfloat16 matmuls are fast in hardware and ``fp32`` elsewhere:

- CPU: the ``amx_bf16`` (Intel AMX) or ``avx512_bf16`` flag in ``/proc/cpuinfo``. Without them PyTorch
  emulates bfloat16 matmuls, which is many times *slower* than float32 (measured 20-40x on an AVX2-only
  AMD EPYC), so ``auto`` stays in float32 there.
- CUDA: ``torch.cuda.is_bf16_supported()`` (compute capability 8.0+). Not measured in this project: no GPU.

``fp32`` is exact (no autocast at all); ``bf16`` is honoured on any device, also where it is slow (with one
warning per process and device saying why it is slow).

This module is the one home of the precision rules of every command: the names ``--precision`` accepts
(:data:`PRECISIONS` for inference, testing, the demo and feature extraction; :data:`TRAIN_PRECISIONS` for
training, which has no ``auto``), the ``auto`` rule (:func:`resolve_precision`) and the autocast dtype of each
name (:func:`autocast_dtype`). It imports torch only when a function needs it, so that the command line can
read the choices without loading torch.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Mapping, Optional, Set, Tuple, Union

from . import cpuinfo
from .errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: ``--precision`` of the commands that run a trained model (infer, test, demo, evaluate in the API) and of
#: ``extract``: ``auto`` resolves with :func:`resolve_precision`
PRECISIONS = ("auto", "fp32", "bf16")
#: ``--precision`` of ``extract`` (and :func:`rdfa_s6.video.extract.extract`): also ``fp16``, half-precision
#: autocast of the backbone, for GPUs without bfloat16 (compute capability < 8.0); ``auto`` never picks it
EXTRACT_PRECISIONS = (*PRECISIONS, "fp16")
#: ``--precision`` of ``train`` (mixed-precision training; fp16 uses a gradient scaler)
TRAIN_PRECISIONS = ("fp32", "bf16", "fp16")
#: the choices of ``train --precision``: ``auto`` (the one rule of :func:`resolve_precision`, for the training
#: device) and :data:`TRAIN_PRECISIONS`
TRAIN_CHOICES = ("auto", *TRAIN_PRECISIONS)
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
#: (device, reason) pairs already warned about: an explicit slow bf16 is said once per process, not per batch
_warned: Set[Tuple[str, str]] = set()


@dataclass(frozen=True)
class BF16Support:
    """Whether bfloat16 matmuls are hardware-accelerated on a device, and why (a short human phrase)."""

    fast: bool
    reason: str


def autocast_dtype(precision: str) -> "Optional[torch.dtype]":
    """The :func:`torch.autocast` dtype of a resolved precision (``fp32``: None, no autocast)."""
    import torch

    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise UserError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
    return dtypes[precision]


class _AutocastDtypes(Mapping[str, "Optional[torch.dtype]"]):
    """:data:`TRAIN_PRECISIONS` -> :func:`autocast_dtype`, looked up when used (torch is imported then)."""

    def __getitem__(self, name: str) -> "Optional[torch.dtype]":
        if name not in TRAIN_PRECISIONS:
            raise KeyError(name)
        return autocast_dtype(name)

    def __iter__(self) -> Iterator[str]:
        return iter(TRAIN_PRECISIONS)

    def __len__(self) -> int:
        return len(TRAIN_PRECISIONS)


#: the autocast dtype of each training precision (None: float32, no autocast)
AUTOCAST_DTYPES: Mapping[str, "Optional[torch.dtype]"] = _AutocastDtypes()


@functools.lru_cache(maxsize=None)
def cpu_bf16_support() -> BF16Support:
    """bfloat16 support of this CPU, from its ``/proc/cpuinfo`` flags (AMX, AVX512-BF16)."""
    import torch

    flags = cpuinfo.cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    if flags is None:
        return BF16Support(False, f"CPU flags unknown (no /proc/cpuinfo; torch capability {capability})")
    found = [f for f in _CPU_BF16_FLAGS if f in flags]
    if found:
        return BF16Support(True, f"{'AMX' if 'amx_bf16' in found else 'AVX512-BF16'} ({', '.join(found)})")
    return BF16Support(False, f"no AMX or AVX512-BF16 on this CPU (torch capability {capability}): "
                              "bfloat16 matmuls would be emulated and slower than float32")


def bf16_support(device: "Union[str, torch.device]" = "cpu") -> BF16Support:
    """bfloat16 support of ``device`` (``cpu``, ``cuda``, ``cuda:N``; other devices: not fast)."""
    import torch

    device = torch.device(device)
    if device.type == "cpu":
        return cpu_bf16_support()
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return BF16Support(False, "CUDA is not available")
        if torch.cuda.is_bf16_supported():
            return BF16Support(True, f"CUDA bf16 ({torch.cuda.get_device_name(device)})")
        return BF16Support(False, "this GPU has no native bfloat16 (compute capability < 8.0)")
    return BF16Support(False, f"no bfloat16 detection for {device.type} devices")


def resolve_precision(precision: str, device: "Union[str, torch.device]" = "cpu",
                      allowed: Tuple[str, ...] = PRECISIONS) -> str:
    """``"fp32"`` or ``"bf16"`` for a requested ``auto | fp32 | bf16`` on ``device`` (the one ``auto`` rule of
    every command); ``allowed`` may add ``fp16`` (:data:`EXTRACT_PRECISIONS`), which is returned as it is. An
    explicit ``bf16`` where it is slow is honoured, with one warning per process and device, and so is ``fp16``
    on a CPU (half-precision matmuls there are emulated). A name not in ``allowed`` is a
    :class:`~rdfa_s6.errors.UserError`."""
    import torch

    name = (precision or "auto").strip().lower()
    if name not in allowed:
        raise UserError(f"precision must be one of {', '.join(allowed)}, got {precision!r}")
    if name == "auto":
        return "bf16" if bf16_support(device).fast else "fp32"
    where = str(torch.device(device))
    if name == "fp16" and torch.device(device).type == "cpu" and (where, "fp16") not in _warned:
        _warned.add((where, "fp16"))
        log.warning("fp16 requested on %s: half-precision autocast is meant for GPUs; on a CPU it is emulated and "
                    "usually slower than fp32", where)
    support = bf16_support(device)
    if name == "bf16" and not support.fast and (where, support.reason) not in _warned:
        _warned.add((where, support.reason))
        log.warning("bf16 requested on %s: %s", torch.device(device), support.reason)
    return name


@contextlib.contextmanager
def autocast(device: "Union[str, torch.device]", precision: str = "fp32") -> Iterator[str]:
    """Run the body in ``precision`` (``auto | fp32 | bf16``) on ``device``; yields the resolved name.

    ``fp32`` is a plain float32 run (autocast disabled, so an enclosing autocast does not leak in);
    ``bf16`` is :func:`torch.autocast` with ``dtype=torch.bfloat16``. Outputs of a bf16 run may be
    bfloat16: cast them with ``.float()`` before post-processing.
    """
    import torch

    resolved = resolve_precision(precision, device)
    device_type = torch.device(device).type
    device_type = device_type if device_type in ("cpu", "cuda") else "cpu"
    if resolved == "bf16":
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            yield resolved
    else:
        with torch.autocast(device_type=device_type, enabled=False):
            yield resolved


def describe(device: "Union[str, torch.device]" = "cpu") -> str:
    """One line for ``rdfa-s6 bench``: what ``--precision auto`` uses on ``device`` and why."""
    import torch

    support = bf16_support(device)
    chosen = resolve_precision("auto", device)
    return f"precision auto on {torch.device(device)}: {chosen} ({support.reason})"


def devices_here() -> List[str]:
    """The device types present: ``cpu``, plus ``cuda`` when a GPU is visible."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


__all__ = ["AUTOCAST_DTYPES", "BF16Support", "EXTRACT_PRECISIONS", "PRECISIONS", "TRAIN_CHOICES", "TRAIN_PRECISIONS",
           "autocast", "autocast_dtype", "bf16_support", "cpu_bf16_support", "describe", "devices_here",
           "resolve_precision"]
