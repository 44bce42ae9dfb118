"""Every selective-scan backend against the sequential float64 reference: outputs and all gradients."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from rdfa_s6.ssm import native, selective_scan, selective_scan_reference

BACKENDS = ["chunked"] + (["native"] if native.is_available() else [])
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")

# (b, d, l, n): l = 1, l below / not a multiple of the native chunk (64) and of the chunked chunk (~sqrt l)
SHAPES = [(1, 3, 1, 1), (2, 5, 1, 4), (2, 19, 70, 4), (1, 33, 130, 16), (2, 17, 200, 16), (3, 8, 64, 1)]
# (use D, use z, use delta_bias, softplus)
OPTIONS = [(True, True, True, True), (False, False, False, False), (True, False, False, True),
           (False, True, True, False)]


def make_inputs(b, d, length, n, dtype, use_d, use_z, use_bias, seed=0, d_contiguous=True):
    g = torch.Generator().manual_seed(seed)

    def bdl(scale=1.0, shift=0.0):
        t = torch.randn(b, length, d, generator=g, dtype=dtype) * scale + shift
        return t.transpose(1, 2) if d_contiguous else t.transpose(1, 2).contiguous()

    inputs = {
        "u": bdl(),
        "delta": bdl(0.5, -1.0),
        "A": -torch.rand(d, n, generator=g, dtype=dtype) * 2 - 0.05,
        "B": torch.randn(b, n, length, generator=g, dtype=dtype),
        "C": torch.randn(b, n, length, generator=g, dtype=dtype),
        "D": torch.randn(d, generator=g, dtype=dtype) if use_d else None,
        "z": bdl() if use_z else None,
        "delta_bias": torch.randn(d, generator=g, dtype=dtype) * 0.5 if use_bias else None,
    }
    if not inputs["delta"].lt(0).all():  # without softplus delta must stay positive to be a step size
        inputs["delta"] = inputs["delta"].abs()
    return {k: (v.requires_grad_() if v is not None else None) for k, v in inputs.items()}


def run(fn, inputs, softplus, grad_out, **kw):
    out = fn(**inputs, delta_softplus=softplus, **kw)
    used = [v for v in inputs.values() if v is not None]
    grads = torch.autograd.grad(out, used, grad_out, allow_unused=True, materialize_grads=True)
    names = [k for k, v in inputs.items() if v is not None]
    return {"out": out, **dict(zip(names, grads))}


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    scale = ref.abs().max().item()
    diff = (a - ref).abs().max().item()
    return diff / scale if scale > 0 else diff


def check_against_reference(backend, shape, options, dtype, tol, d_contiguous=True):
    b, d, length, n = shape
    use_d, use_z, use_bias, softplus = options
    inputs = make_inputs(b, d, length, n, dtype, use_d, use_z, use_bias, d_contiguous=d_contiguous)
    grad_out = torch.randn(b, d, length, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ref = run(selective_scan_reference, inputs, softplus, grad_out)
    got = run(selective_scan, inputs, softplus, grad_out, backend=backend)
    assert got["out"].dtype == dtype and got["out"].shape == (b, d, length)
    for key in ref:
        assert torch.isfinite(got[key]).all(), key
        err = rel_err(got[key], ref[key])
        assert err <= tol, f"{backend} {key}: relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "D{}z{}bias{}sp{}".format(*map(int, o)))
def test_backend_matches_reference_float64(backend, shape, options):
    check_against_reference(backend, shape, options, torch.float64, 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES[1:4], ids=lambda s: "x".join(map(str, s)))
def test_backend_matches_reference_float32(backend, shape):
    check_against_reference(backend, shape, OPTIONS[0], torch.float32, 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_accepts_any_memory_layout(backend):
    check_against_reference(backend, (2, 21, 90, 16), OPTIONS[0], torch.float64, 1e-10, d_contiguous=False)


@pytest.mark.skipif("native" not in BACKENDS, reason="the native kernel does not build here")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_reads_contiguous_bdl_in_place(dtype):
    """mamba_ssm's layout (contiguous [b, d, l]; d not a multiple of the vector width) read without a copy:
    same values as the reference, output and gradients in the layout of u; mixed layouts too."""
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    check_against_reference("native", (2, 21, 90, 16), OPTIONS[0], dtype, tol, d_contiguous=False)
    inputs = make_inputs(2, 13, 70, 16, dtype, True, True, True, d_contiguous=False)
    out = selective_scan(**inputs, delta_softplus=True, backend="native")
    assert out.is_contiguous()
    mixed = dict(inputs, z=inputs["z"].detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_())
    grad_out = torch.randn(2, 13, 70, dtype=dtype)
    ref = run(selective_scan_reference, mixed, True, grad_out)
    got = run(selective_scan, mixed, True, grad_out, backend="native")
    for key in ref:
        assert rel_err(got[key], ref[key]) <= tol, key


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_strong_decay_stays_finite(backend, dtype):
    """Per-step decays down to exp(-80): states underflow to zero, nothing becomes inf or nan."""
    b, d, length, n = 2, 20, 150, 16
    inputs = make_inputs(b, d, length, n, dtype, True, True, False)
    with torch.no_grad():
        inputs["A"].copy_(-torch.linspace(1.0, 80.0, d * n, dtype=dtype).view(d, n))
        inputs["delta"].copy_(torch.rand(b, d, length, dtype=dtype) * 0.5 + 0.5)
    grad_out = torch.randn(b, d, length, dtype=dtype)
    ref = run(selective_scan_reference, inputs, False, grad_out)
    got = run(selective_scan, inputs, False, grad_out, backend=backend)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for key in ref:
        assert torch.isfinite(got[key]).all(), key
        assert rel_err(got[key], ref[key]) <= tol, key


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend):
    inputs = make_inputs(2, 3, 7, 2, torch.float64, True, True, True)
    args = tuple(inputs[k] for k in NAMES)

    def fn(*xs):
        return selective_scan(*xs, delta_softplus=True, backend=backend)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7)


def test_autocast_keeps_the_recurrence_in_float32():
    inputs = make_inputs(2, 16, 50, 16, torch.float32, True, True, True)
    half = {k: (v.detach().bfloat16() if v is not None and k in ("u", "delta", "z", "B", "C") else v)
            for k, v in inputs.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = selective_scan(**half, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    expected = selective_scan_reference(**{k: (v.float() if v is not None else None) for k, v in half.items()},
                                        delta_softplus=True)
    assert torch.allclose(out.float(), expected.bfloat16().float(), rtol=0, atol=0.0)


def test_backend_from_environment_variable(monkeypatch):
    from rdfa_s6.ssm.scan import resolve_backend

    monkeypatch.setenv("RDFA_S6_SCAN", "chunked")
    assert resolve_backend(torch.device("cpu")) == "chunked"
    monkeypatch.setenv("RDFA_S6_SCAN", "reference")
    assert resolve_backend(torch.device("cpu")) == "reference"
    assert resolve_backend(torch.device("cpu"), "chunked") == "chunked"  # the argument wins
    monkeypatch.setenv("RDFA_S6_SCAN", "fastest")
    with pytest.raises(ValueError, match="fastest"):
        resolve_backend(torch.device("cpu"))
    monkeypatch.setenv("RDFA_S6_SCAN", "cuda")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_backend(torch.device("cpu"))


def test_every_backend_has_the_scan_backend_signature():
    """Each backend (and the entry point, which adds ``backend``) takes ScanBackend's parameters, in order, with
    its defaults: the statically typed registry is also what callers can rely on at run time."""
    import inspect

    from rdfa_s6.ssm import BACKENDS as NAMES_OF_BACKENDS
    from rdfa_s6.ssm import ScanBackend
    from rdfa_s6.ssm.scan import _load_backend

    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    expected = params(ScanBackend.__call__)[1:]  # without self
    assert [name for name, _, _ in expected] == list(NAMES) + ["delta_softplus"]
    for name in NAMES_OF_BACKENDS:
        assert params(_load_backend(name)) == expected, name
    assert params(selective_scan)[:-1] == expected and params(selective_scan)[-1][0] == "backend"


def test_shape_errors_name_the_argument():
    inputs = make_inputs(2, 4, 10, 3, torch.float32, True, True, True)
    inputs["B"] = inputs["B"][:, :2]
    with pytest.raises(ValueError, match="B must be"):
        selective_scan(**inputs)


def test_without_a_compiler_the_automatic_choice_falls_back_to_chunked(tmp_path):
    code = (
        "import logging, torch; logging.basicConfig(level=logging.WARNING);"
        "from rdfa_s6.ssm.scan import resolve_backend;"
        "print(resolve_backend(torch.device('cpu')))"
    )
    env = dict(os.environ, RDFA_S6_CXX=str(tmp_path / "no-such-compiler"), RDFA_S6_CACHE=str(tmp_path))
    env.pop("RDFA_S6_SCAN", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "chunked"
    warnings = [line for line in proc.stderr.splitlines() if "native selective scan unavailable" in line]
    assert len(warnings) == 1


def test_native_kernel_builds_here():
    """The machines this project runs on have g++; the fast path must not silently disappear."""
    assert native.is_available(), native.unavailable_reason()
