"""The fused native Bi-S6 path (rdfa_s6.ssm.fused) against the reference mixer: values, every gradient, gradcheck,
time-block and channel-group edges, bf16 autocast tolerance, and the switch back to the reference path."""
from __future__ import annotations

import pytest
import torch
from test_bis6 import randomise  # random weights everywhere, conv biases included

from rdfa_s6.ssm import BiS6, fused, native

pytestmark = pytest.mark.skipif(not native.is_available(), reason="native kernel unavailable")


def outputs_and_grads(m: BiS6, h: torch.Tensor, use_fused: bool, seed: int = 1):
    m.fused = use_fused
    h = h.detach().requires_grad_()
    out = m(h)
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    params = [p for p in m.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out, [h] + params, g)
    names = ["h"] + [k for k, p in m.named_parameters() if p.requires_grad]
    return out.detach(), dict(zip(names, grads))


def assert_same(m: BiS6, h: torch.Tensor, rtol: float, atol: float) -> None:
    ref_out, ref_grads = outputs_and_grads(m, h, False)
    got_out, got_grads = outputs_and_grads(m, h, True)
    torch.testing.assert_close(got_out, ref_out, rtol=rtol, atol=atol)
    assert got_grads.keys() == ref_grads.keys()
    for key in ref_grads:
        torch.testing.assert_close(got_grads[key], ref_grads[key], rtol=rtol, atol=atol, msg=key)


# (d_model, expand, kernel sizes, bc_source, aggregation, length): d_inner not a multiple of the vector width,
# L below the largest kernel, L crossing the conv kernel's 128-step time blocks and the scan's 64-step chunks
CASES = [
    (6, 1, (2, 3, 4), "first", "concat", 9),
    (13, 1, (2, 3, 4), "per_kernel", "sum", 3),
    (10, 2, (4,), "first", "concat", 300),
    (9, 1, (1, 5), "per_kernel", "concat", 130),
    (17, 1, (2, 3, 4), "first", "sum", 257),
]


def _case_id(c) -> str:
    return f"D{c[0]}x{c[1]}-k{''.join(map(str, c[2]))}-{c[3]}-{c[4]}-L{c[5]}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fused_equals_reference_float64(case, one_thread):
    d, expand, ks, bc, agg, length = case
    m = randomise(BiS6(d, d_state=4, expand=expand, kernel_sizes=ks, bc_source=bc, kernel_aggregation=agg).double())
    h = torch.randn(2, length, d, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert fused.usable(m, h)
    assert_same(m, h, rtol=1e-10, atol=1e-11)


def test_fused_equals_reference_float32_two_threads():
    torch.manual_seed(0)
    m = BiS6(40, kernel_sizes=(2, 3, 4))  # the model's own initialisation, d_state 16
    h = torch.randn(3, 200, 40)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # per-thread partial sums of dB, dC
    try:
        assert_same(m, h, rtol=1e-4, atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_fused_gradcheck_float64(one_thread):
    m = randomise(BiS6(5, d_state=2, kernel_sizes=(2, 3), bc_source="first").double())
    m.fused = True
    h = torch.randn(2, 6, 5, dtype=torch.float64, requires_grad=True)
    params = tuple(m.parameters())

    def fn(h, *ps):
        return torch.func.functional_call(m, dict(zip([k for k, _ in m.named_parameters()], ps)), (h,))

    assert torch.autograd.gradcheck(fn, (h,) + params, eps=1e-6, atol=1e-7, fast_mode=True)


def test_stream_convs_gradcheck_float64(one_thread):
    """The conv kernel alone, on both streams, across a 128-step time block boundary of its backward."""
    g = torch.Generator().manual_seed(0)
    n, ks = 3, (1, 3, 4)
    proj = torch.randn(1, 131, 4 * n, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(len(ks), max(ks), n, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(len(ks), n, dtype=torch.float64, generator=g, requires_grad=True)

    def fn(p, w, b):  # taps beyond k_i are unused: mask them so gradcheck sees the real dependency
        mask = torch.tensor([[1.0 if j < k else 0.0] for k in ks for j in range(max(ks))], dtype=w.dtype)
        return fused.StreamConvs.apply(p, w * mask.view(len(ks), max(ks), 1), b, ks)

    assert torch.autograd.gradcheck(fn, (proj, weight, bias), eps=1e-6, atol=1e-7, fast_mode=True)


def test_freeze_dwconv_in_the_fused_path(one_thread):
    m = BiS6(16, kernel_sizes=(2, 3, 4), freeze_dwconv=True)
    m(torch.randn(1, 5, 16)).sum().backward()
    assert all(c.weight.grad is None and c.bias.grad is None for c in m.conv1ds)
    assert m.in_proj.weight.grad is not None and m.x_proj.weight.grad is not None


def test_bf16_autocast_stays_close_to_float32(one_thread):
    """bf16 matmuls (scan and convs in float32): relative error of the output and of the input gradient."""
    torch.manual_seed(0)
    m = BiS6(64, kernel_sizes=(2, 3, 4))
    h = torch.randn(2, 96, 64)
    ref = m(h.requires_grad_())
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = m(h)
    assert got.dtype == torch.bfloat16
    (got_grad,) = torch.autograd.grad(got.float().square().sum(), h)
    rel = (got.float() - ref).norm() / ref.norm()
    rel_grad = (got_grad - ref_grad).norm() / ref_grad.norm()
    assert rel < 2e-2 and rel_grad < 5e-2, (rel.item(), rel_grad.item())


def test_environment_switches_back_to_the_reference_path(monkeypatch):
    monkeypatch.setenv("RDFA_S6_FUSED", "0")
    assert BiS6(8).fused is False
    monkeypatch.setenv("RDFA_S6_FUSED", "1")
    assert BiS6(8).fused is True


def test_other_backends_do_not_take_the_fused_path(monkeypatch):
    m = BiS6(8, kernel_sizes=(2, 3), scan_backend="chunked")
    called = []
    monkeypatch.setattr(fused, "bis6_fused", lambda *a: called.append(1))
    m(torch.randn(1, 4, 8))
    assert not called
