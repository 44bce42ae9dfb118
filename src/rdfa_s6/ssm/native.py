"""The native CPU selective scan: a C++ kernel (``csrc/selective_scan.cpp``) with a hand-written backward.

The kernel is compiled on first use with the system C++ compiler (``$RDFA_S6_CXX``, else ``$CXX``, else
``g++``), for this CPU (``-march=native``), and cached in ``$RDFA_S6_CACHE`` (default
``~/.cache/rdfa_s6``) under a name that hashes the source, the flags, the compiler and the CPU's features,
so a changed kernel or a different machine gets a fresh build. It is loaded with :mod:`ctypes` (no PyTorch
headers, no build step at install). Without a working compiler :func:`is_available` is False, a one-line
warning says why, and the automatic backend choice falls back to ``chunked``.

Memory layout: the kernel vectorises over channels ``d``. ``u``, ``delta``, ``z`` with stride 1 along ``d``
([b, d, l] views of [b, l, d]-contiguous tensors, what a ``Linear`` produces) and contiguous [b, d, l]
tensors (``mamba_ssm``'s layout) are both read in place; other layouts are copied once. The output and the
gradients take the layout of ``u``.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from ..cpuinfo import cpu_signature as _cpu_signature

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "selective_scan.cpp"
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC", "-std=c++17"]
#: steps between saved states in the forward; the backward recomputes one chunk at a time
CHUNK = 64

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_error: Optional[str] = None
_tried = False
_mismatch: Optional[BaseException] = None  #: a LayoutMismatch found at load: raised by every later use


class _ScanParams(ctypes.Structure):
    """Mirror of ``struct ScanParams`` in ``csrc/selective_scan.cpp`` (keep the two in the same order)."""

    _fields_ = (
        [(name, ctypes.c_int64) for name in ("batch", "dim", "len", "nstate", "chunk")]
        + [("softplus", ctypes.c_int32), ("nthreads", ctypes.c_int32)]
        + [
            (name, ctypes.c_void_p)
            for name in (
                "u", "delta", "A", "B", "C", "D", "z", "bias", "out", "ckpt", "dout",
                "du", "ddelta", "dz", "dA", "dB", "dC", "dD", "dbias",
            )
        ]
        + [
            (name, ctypes.c_int64)
            for name in (
                "u_sb", "u_sl", "delta_sb", "delta_sl", "z_sb", "z_sl", "out_sb", "out_sl",
                "dout_sb", "dout_sl", "grad_sb", "grad_sl", "B_sb", "B_sn", "B_sl", "C_sb", "C_sn", "C_sl",
                "u_sd", "delta_sd", "z_sd", "out_sd", "dout_sd", "grad_sd",
            )
        ]
        + [("boff", ctypes.c_void_p), ("btsl", ctypes.c_void_p)]
    )


class _ConvParams(ctypes.Structure):
    """Mirror of ``struct ConvParams`` in ``csrc/selective_scan.cpp`` (keep the two in the same order)."""

    _fields_ = (
        [(name, ctypes.c_int64) for name in ("batch", "len", "dim", "nk", "kmax")]
        + [("nthreads", ctypes.c_int32), ("pad", ctypes.c_int32)]
        + [(name, ctypes.c_void_p) for name in ("ksz", "x", "w", "bias", "du", "u", "dx", "dw", "dbias")]
        + [("x_sb", ctypes.c_int64), ("x_sl", ctypes.c_int64)]
        + [("x_coff", ctypes.c_int64 * 2)]
    )


#: the ctypes mirrors, by their index in ``rdfa_struct_layout`` (csrc/selective_scan.cpp)
_MIRRORS = (_ScanParams, _ConvParams)


class LayoutMismatch(RuntimeError):
    """A ctypes mirror disagrees with its C struct (a field added, moved or retyped on one side only)."""


def mirror_layout(mirror: Any) -> str:
    """``"size name@offset ..."`` of a ctypes mirror, in the text format of ``rdfa_struct_layout``."""
    return " ".join([str(ctypes.sizeof(mirror))] + [f"{n}@{getattr(mirror, n).offset}" for n, _t in mirror._fields_])


def check_layouts(lib: Any) -> None:
    """Compare each ctypes mirror with the C side's ``sizeof``/``offsetof`` (``rdfa_struct_layout``); raise
    :class:`LayoutMismatch` naming the first field that differs."""
    lib.rdfa_struct_layout.argtypes = [ctypes.c_int]
    lib.rdfa_struct_layout.restype = ctypes.c_char_p
    for which, mirror in enumerate(_MIRRORS):
        c_side = lib.rdfa_struct_layout(which).decode().split()
        py_side = mirror_layout(mirror).split()
        if c_side == py_side:
            continue
        name = mirror.__name__.lstrip("_")
        c_f, py_f = next(((c, p) for c, p in zip(c_side[1:], py_side[1:]) if c != p), (None, None))
        if c_f is not None:
            first = f"field {c_f} in C, {py_f} in the mirror"
        elif len(c_side) != len(py_side):
            first = f"{len(c_side) - 1} fields in C, {len(py_side) - 1} in the mirror"
        else:
            first = f"sizeof is {c_side[0]} bytes in C, {py_side[0]} in the mirror"
        raise LayoutMismatch(f"struct {name} of {_SOURCE.name} does not match its ctypes mirror in native.py "
                             f"({first}); change both together")


def _compiler() -> Optional[str]:
    name = os.environ.get("RDFA_S6_CXX") or os.environ.get("CXX") or "g++"
    return shutil.which(name)


def _cache_dir() -> Path:
    root = os.environ.get("RDFA_S6_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "rdfa_s6"


def _build(cxx: str) -> Path:
    source = _SOURCE.read_bytes()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256(
        b"\0".join([source, " ".join(_FLAGS).encode(), version.encode(), _cpu_signature().encode()])
    ).hexdigest()[:16]
    target = _cache_dir() / f"selective_scan_{key}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # build into a private temporary file, then rename: concurrent processes never see a partial library
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    # the first use on a machine compiles for a few seconds: say so once, rather than seem to hang
    print(f"rdfa-s6: compiling the native selective scan once (a few seconds; cached in {target.parent})",
          file=sys.stderr, flush=True)
    try:
        proc = subprocess.run([cxx, *_FLAGS, str(_SOURCE), "-o", tmp], capture_output=True, text=True)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
            raise RuntimeError(f"{cxx} failed: {first}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("built the native selective scan: %s", target)
    return target


def _load() -> Optional[ctypes.CDLL]:
    """The library, or None when it cannot be built (a warning says why). A mirror that disagrees with the C
    side is a bug of this package, not of the machine: LayoutMismatch, at every call."""
    global _lib, _error, _tried, _mismatch
    with _lock:
        if _mismatch is not None:
            raise _mismatch
        if _tried:
            return _lib
        _tried = True
        try:
            cxx = _compiler()
            if cxx is None:
                raise RuntimeError("no C++ compiler found (set RDFA_S6_CXX or install g++)")
            lib = ctypes.CDLL(str(_build(cxx)))
            for fn in ("rdfa_scan_fwd_f32", "rdfa_scan_fwd_f64", "rdfa_scan_bwd_f32", "rdfa_scan_bwd_f64"):
                getattr(lib, fn).argtypes = [ctypes.POINTER(_ScanParams)]
                getattr(lib, fn).restype = None
            lib.rdfa_scan_lanes.argtypes = [ctypes.c_int]
            lib.rdfa_scan_lanes.restype = ctypes.c_int
            for fn in ("rdfa_conv_fwd_f32", "rdfa_conv_fwd_f64", "rdfa_conv_bwd_f32", "rdfa_conv_bwd_f64"):
                getattr(lib, fn).argtypes = [ctypes.POINTER(_ConvParams)]
                getattr(lib, fn).restype = None
            for fn in ("rdfa_conv_kmax", "rdfa_conv_time_block"):
                getattr(lib, fn).argtypes = []
                getattr(lib, fn).restype = ctypes.c_int
            check_layouts(lib)
            _lib = lib
        except LayoutMismatch as err:
            _error = str(err)
            _mismatch = err
            raise
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            _error = str(err)
            log.warning("native selective scan unavailable (%s); using the pure-PyTorch 'chunked' scan", _error)
        return _lib


def is_available() -> bool:
    """True when the kernel is (or can be) built and loaded; builds it on the first call."""
    return _load() is not None


def unavailable_reason() -> Optional[str]:
    """Why the kernel could not be built, or None."""
    _load()
    return _error


def library() -> ctypes.CDLL:
    """The loaded kernels (built on the first call); RuntimeError saying why when they are unavailable."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"the native kernels are unavailable: {_error}")
    return lib


def _lanes(dtype: torch.dtype) -> int:
    return int(library().rdfa_scan_lanes(1 if dtype == torch.float64 else 0))


def _bdl_layout(t: Tensor) -> Tensor:
    """A [b, d, l] tensor with stride 1 along d or along l (a view when possible, else one copy)."""
    if t.stride(1) == 1 or t.stride(2) == 1 or t.shape[1] == 1:
        return t
    return t.contiguous()


def _new_bdl(like: Tensor) -> Tensor:
    """A new [b, d, l] tensor shaped like ``like`` and in its layout: [b, l, d]-contiguous when ``like`` has
    stride 1 along d, else contiguous [b, d, l]."""
    b, d, length = like.shape
    if like.stride(1) == 1 and length != 1:
        return torch.empty(b, length, d, dtype=like.dtype, device=like.device).transpose(1, 2)
    return torch.empty(b, d, length, dtype=like.dtype, device=like.device)


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _bdl_strides(t: Tensor) -> Tuple[int, int]:
    return t.stride(0), t.stride(2)


def _params(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor], z: Optional[Tensor],
            bias: Optional[Tensor], softplus: bool) -> _ScanParams:
    b, d, length = u.shape
    p = _ScanParams()
    p.batch, p.dim, p.len, p.nstate, p.chunk = b, d, length, A.shape[1], CHUNK
    p.softplus, p.nthreads = int(softplus), max(1, torch.get_num_threads())
    p.u, p.delta, p.A, p.B, p.C = _ptr(u), _ptr(delta), _ptr(A), _ptr(B), _ptr(C)
    p.D, p.z, p.bias = _ptr(D), _ptr(z), _ptr(bias)
    p.u_sb, p.u_sl = _bdl_strides(u)
    p.delta_sb, p.delta_sl = _bdl_strides(delta)
    p.u_sd, p.delta_sd = u.stride(1), delta.stride(1)
    p.z_sd = p.out_sd = p.dout_sd = p.grad_sd = 1
    if z is not None:
        p.z_sb, p.z_sl = _bdl_strides(z)
        p.z_sd = z.stride(1)
    p.B_sb, p.B_sn, p.B_sl = B.stride()
    p.C_sb, p.C_sn, p.C_sl = C.stride()
    return p


class _NativeScan(torch.autograd.Function):
    # ctx: Any as in torch's own signature of forward/backward (a context object that takes attributes)
    @staticmethod
    def forward(ctx: Any, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], z: Optional[Tensor], bias: Optional[Tensor], softplus: bool) -> Tensor:
        lib = library()
        u, delta = _bdl_layout(u), _bdl_layout(delta)
        z = None if z is None else _bdl_layout(z)
        A = A.contiguous()
        D = None if D is None else D.contiguous()
        bias = None if bias is None else bias.contiguous()
        b, d, length = u.shape
        n = A.shape[1]
        lanes = _lanes(u.dtype)
        groups = (d + lanes - 1) // lanes
        nchunks = (length + CHUNK - 1) // CHUNK
        out = _new_bdl(u)
        ckpt = u.new_empty(b, groups, nchunks, n, lanes)
        p = _params(u, delta, A, B, C, D, z, bias, softplus)
        p.out, p.ckpt = out.data_ptr(), ckpt.data_ptr()
        p.out_sb, p.out_sl = _bdl_strides(out)
        p.out_sd = out.stride(1)
        (lib.rdfa_scan_fwd_f64 if u.dtype == torch.float64 else lib.rdfa_scan_fwd_f32)(ctypes.byref(p))
        ctx.softplus = softplus
        ctx.save_for_backward(u, delta, A, B, C, D, z, bias, ckpt)
        return out

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> Tuple[Optional[Tensor], ...]:
        lib = library()
        u, delta, A, B, C, D, z, bias, ckpt = ctx.saved_tensors
        b, d, length = u.shape
        n = A.shape[1]
        nthreads = max(1, torch.get_num_threads())
        dout = _bdl_layout(dout)
        du, ddelta = _new_bdl(u), _new_bdl(u)
        dz = None if z is None else _new_bdl(u)
        dA = u.new_empty(b, d, n)
        dB = u.new_zeros(nthreads, b, n, length)
        dC = u.new_zeros(nthreads, b, n, length)
        dD = u.new_empty(b, d)
        dbias = u.new_empty(b, d)
        p = _params(u, delta, A, B, C, D, z, bias, ctx.softplus)
        p.nthreads = nthreads
        p.ckpt, p.dout = ckpt.data_ptr(), dout.data_ptr()
        p.dout_sb, p.dout_sl = _bdl_strides(dout)
        p.dout_sd = dout.stride(1)
        p.du, p.ddelta, p.dz = du.data_ptr(), ddelta.data_ptr(), _ptr(dz)
        p.grad_sb, p.grad_sl = _bdl_strides(du)
        p.grad_sd = du.stride(1)
        p.dA, p.dB, p.dC, p.dD, p.dbias = dA.data_ptr(), dB.data_ptr(), dC.data_ptr(), dD.data_ptr(), dbias.data_ptr()
        (lib.rdfa_scan_bwd_f64 if u.dtype == torch.float64 else lib.rdfa_scan_bwd_f32)(ctypes.byref(p))
        needs = ctx.needs_input_grad
        return (
            du if needs[0] else None,
            ddelta if needs[1] else None,
            dA.sum(0) if needs[2] else None,
            dB.sum(0) if needs[3] else None,
            dC.sum(0) if needs[4] else None,
            dD.sum(0) if D is not None and needs[5] else None,
            dz if z is not None and needs[6] else None,
            dbias.sum(0) if bias is not None and needs[7] else None,
            None,
        )


def selective_scan_native(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                          z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                          delta_softplus: bool = False) -> Tensor:
    """:class:`~rdfa_s6.ssm.scan.ScanBackend` by the native CPU kernel; float32 or float64, one dtype for all."""
    if not is_available():
        raise RuntimeError(f"the native selective scan is unavailable: {_error}")
    if u.device.type != "cpu":
        raise ValueError(f"the native selective scan runs on CPU tensors, got {u.device}")
    if u.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the native selective scan takes float32 or float64, got {u.dtype}")
    tensors = (u, delta, A, B, C, D, z, delta_bias)
    if any(t is not None and t.dtype != u.dtype for t in tensors):
        raise TypeError("all selective-scan tensors must share one dtype")
    if u.numel() == 0:
        return u.new_zeros(u.shape)
    out: Tensor = _NativeScan.apply(  # type: ignore[no-untyped-call]  # torch leaves Function.apply unannotated
        u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus))
    return out
