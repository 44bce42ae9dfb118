"""``selective_scan``: one entry point, several backends chosen at run time.

Backends (see ``docs/benchmarks.md`` for what each costs):

- ``reference``: sequential recurrence (:mod:`rdfa_s6.ssm.reference`), the test oracle;
- ``native``: a compiled CPU kernel with a hand-written backward (:mod:`rdfa_s6.ssm.native`);
- ``chunked``: pure PyTorch, log-space within chunks, works on any device (:mod:`rdfa_s6.ssm.chunked`);
- ``cuda``: ``mamba_ssm``'s kernel, when it is importable and the tensors are on a CUDA device.

The choice is: the ``backend`` argument, else ``$RDFA_S6_SCAN``, else automatic (``cuda`` on CUDA tensors when
``mamba_ssm`` imports, ``native`` on CPU when the kernel builds, ``chunked`` otherwise). It is logged once.
Every backend has the signature of :class:`ScanBackend`.

:data:`BACKENDS` is the registry: the names ``model.scan_backend`` accepts are read from it when a config is
checked, so a backend added with :func:`register_scan_backend` (also from outside the package) can be chosen
from a config or ``$RDFA_S6_SCAN``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Protocol, Set, Tuple

import torch
from torch import Tensor

log = logging.getLogger(__name__)

ENV_VAR = "RDFA_S6_SCAN"
_logged: Set[str] = set()


class ScanBackend(Protocol):
    """The selective scan with the semantics of ``mamba_ssm``'s ``selective_scan_fn`` (real A only).

    ``h_t = exp(delta'_t A) h_{t-1} + delta'_t u_t B_t`` from ``h_{-1} = 0``, ``y_t = <h_t, C_t> + D u_t``,
    ``out = y * silu(z)``, where ``delta' = softplus(delta + delta_bias)`` (bias, softplus and gate optional;
    :mod:`rdfa_s6.ssm.reference` spells it out step by step).

    Args:
        u: [b, d, l] input; delta: [b, d, l] step sizes (before ``delta_bias``/softplus);
        A: [d, n] real, usually negative; B, C: [b, n, l]; D: [d] skip; z: [b, d, l] gate;
        delta_bias: [d]; delta_softplus: apply softplus to ``delta + delta_bias``.
    Returns:
        [b, d, l] in the dtype of ``u``.
    """

    def __call__(self, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                 z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                 delta_softplus: bool = False) -> Tensor: ...


@dataclass(frozen=True)
class _Entry:
    """A registered backend: how to get the function (built-ins import lazily), where it can run."""

    load: Callable[[], ScanBackend]
    available: Callable[[torch.device], bool]
    device_types: Optional[Tuple[str, ...]] = None  #: the only device types it accepts (None: any)


def _lazy(module: str, attr: str) -> Callable[[], ScanBackend]:
    def load() -> ScanBackend:
        import importlib

        fn: ScanBackend = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        return fn

    return load


def _native_available(device: torch.device) -> bool:
    from . import native

    return device.type == "cpu" and native.is_available()


def _cuda_available(device: torch.device) -> bool:
    from . import cuda as cuda_backend

    return device.type == "cuda" and cuda_backend.is_available()


#: the registry of scan backends, by name (the one list of the names ``model.scan_backend`` accepts)
BACKENDS: Dict[str, _Entry] = {
    "reference": _Entry(_lazy("reference", "selective_scan_reference"), lambda device: True),
    "native": _Entry(_lazy("native", "selective_scan_native"), _native_available, ("cpu",)),
    "chunked": _Entry(_lazy("chunked", "selective_scan_chunked"), lambda device: True),
    "cuda": _Entry(_lazy("cuda", "selective_scan_cuda"), _cuda_available, ("cuda",)),
}


def register_scan_backend(name: str, backend: ScanBackend,
                          available: Optional[Callable[[torch.device], bool]] = None) -> ScanBackend:
    """Make ``backend`` (a function with the :class:`ScanBackend` signature) selectable by ``name``: as
    ``model.scan_backend`` in a config, the ``backend`` argument or ``$RDFA_S6_SCAN``. ``available(device)``
    says where it runs (default: everywhere); automatic selection never picks it. Returns ``backend``."""
    key = name.strip().lower()
    if not key or key == "auto":
        raise ValueError(f"a scan backend cannot be named {name!r}")
    if key in BACKENDS:
        raise ValueError(f"scan backend {key!r} is already registered")
    BACKENDS[key] = _Entry(lambda: backend, available or (lambda device: True))
    return backend


def _load_backend(name: str) -> ScanBackend:
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown selective-scan backend {name!r}; expected one of {', '.join(BACKENDS)}") from None
    return entry.load()


def available_backends(device: torch.device = torch.device("cpu")) -> Dict[str, bool]:
    """Which backends can run on ``device`` here (the native one is built on first call)."""
    return {name: entry.available(device) for name, entry in BACKENDS.items()}


def resolve_backend(device: torch.device, backend: Optional[str] = None) -> str:
    """The backend name that ``selective_scan`` will use for tensors on ``device``."""
    from .settings import scan_backend_setting  # $RDFA_S6_SCAN is read there only (settings imports this module)

    name = scan_backend_setting(backend).strip().lower()
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"{ENV_VAR}/backend={name!r} is not one of auto, {', '.join(BACKENDS)}")
        types = BACKENDS[name].device_types
        if types is not None and device.type not in types:
            if name == "native":
                raise ValueError(f"the native scan runs on CPU tensors only, got device {device}")
            raise ValueError(f"the {name} scan needs {' or '.join(t.upper() for t in types)} tensors, "
                             f"got device {device}")
        return name
    if device.type == "cuda":
        from . import cuda as cuda_backend

        return "cuda" if cuda_backend.is_available() else "chunked"
    if device.type == "cpu":
        from . import native

        return "native" if native.is_available() else "chunked"
    return "chunked"


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                   z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                   backend: Optional[str] = None) -> Tensor:
    """The :class:`ScanBackend` named ``backend`` (a name of :data:`BACKENDS`, None: automatic).

    Checks the shapes, then runs the backend in float32 (float64 for float64 ``u``) with autocast off: under
    autocast the recurrence and its state stay in float32 (half precision is a known NaN source). The result
    has the dtype of ``u``.
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    name = resolve_backend(u.device, backend)
    if name not in _logged:
        _logged.add(name)
        log.info("selective scan backend: %s", name)
    fn = _load_backend(name)
    out_dtype = u.dtype
    c = torch.float64 if u.dtype == torch.float64 else torch.float32
    device_type = u.device.type if u.device.type in ("cpu", "cuda") else "cpu"
    with torch.autocast(device_type=device_type, enabled=False):
        out = fn(u.to(c), delta.to(c), A.to(c), B.to(c), C.to(c), _to(D, c), _to(z, c), _to(delta_bias, c),
                 delta_softplus=delta_softplus)
    return out.to(out_dtype)


def _to(t: Optional[Tensor], dtype: torch.dtype) -> Optional[Tensor]:
    return None if t is None else t.to(dtype)


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                  z: Optional[Tensor], delta_bias: Optional[Tensor]) -> None:
    if u.dim() != 3:
        raise ValueError(f"u must be [b, d, l], got shape {tuple(u.shape)}")
    b, d, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must match u {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != d or A.is_complex():
        raise ValueError(f"A must be real [d={d}, n], got {tuple(A.shape)} {A.dtype}")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.shape != (b, n, length):
            raise ValueError(f"{name} must be [b={b}, n={n}, l={length}], got {tuple(t.shape)}")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and v.shape != (d,):
            raise ValueError(f"{name} must be [d={d}], got {tuple(v.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must match u {tuple(u.shape)}, got {tuple(z.shape)}")
