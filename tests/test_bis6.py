"""BiS6 / FA-Bi-S6 against a direct sequential float64 transcription of docs/model.md §3.3."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rdfa_s6.ssm import BiS6, native


def spec_bis6(m: BiS6, h: torch.Tensor) -> torch.Tensor:
    """docs/model.md §3.3 written out step by step with loops, for one module's weights. h: [B, L, D] -> [B, L, D]."""
    batch, length, _ = h.shape
    n, s, r = m.d_inner, m.d_state, m.dt_rank
    A = -torch.exp(m.A_log)
    proj = h @ m.in_proj.weight.T  # [B, L, 4N]
    out = []
    for b in range(batch):
        per_direction = []
        for direction in ("fwd", "bwd"):
            seq = proj[b, :, : 2 * n] if direction == "fwd" else proj[b, :, 2 * n :].flip(0)
            x, z = seq[:, :n], seq[:, n:]
            us, deltas, bs, cs = [], [], [], []
            for conv, k in zip(m.conv1ds, m.kernel_sizes):
                u = torch.zeros(length, n, dtype=h.dtype)
                for t in range(length):
                    acc = conv.bias.clone()
                    for j in range(k):  # causal: tap j looks at step t - (k - 1) + j
                        src = t - (k - 1) + j
                        if src >= 0:
                            acc = acc + conv.weight[:, 0, j] * x[src]
                    u[t] = acc * torch.sigmoid(acc)
                xdbl = u @ m.x_proj.weight.T
                dt, b_in, c_out = xdbl[:, :r], xdbl[:, r : r + s], xdbl[:, r + s :]
                deltas.append(F.softplus(dt @ m.dt_proj.weight.T + m.dt_proj.bias))
                us.append(u)
                bs.append(b_in)
                cs.append(c_out)
            outs = []
            for i in range(len(m.kernel_sizes)):
                src = 0 if m.bc_source == "first" else i
                state = torch.zeros(n, s, dtype=h.dtype)
                o = torch.zeros(length, n, dtype=h.dtype)
                for t in range(length):
                    drive = (deltas[i][t] * us[i][t])[:, None] * bs[src][t][None, :]
                    state = torch.exp(deltas[i][t, :, None] * A) * state + drive
                    y = state @ cs[src][t] + m.D * us[i][t]
                    o[t] = y * z[t] * torch.sigmoid(z[t])
                outs.append(o)
            agg = torch.cat(outs, dim=1) if m.kernel_aggregation == "concat" else sum(outs)
            per_direction.append(agg if direction == "fwd" else agg.flip(0))
        out.append(torch.cat(per_direction, dim=1) @ m.out_proj.weight.T)
    return torch.stack(out)


def randomise(m: BiS6, seed: int = 0) -> BiS6:
    """Random weights everywhere (conv biases included), so no term hides behind an initial zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        m.A_log.copy_(torch.rand(m.A_log.shape, generator=g, dtype=m.A_log.dtype) * 2 - 1)
    return m


BACKENDS = ["reference", "chunked"] + (["native"] if native.is_available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bc_source", ["first", "per_kernel"])
@pytest.mark.parametrize("aggregation", ["concat", "sum"])
def test_bis6_matches_spec_transcription(backend, bc_source, aggregation):
    m = BiS6(6, d_state=3, kernel_sizes=(2, 3, 4), bc_source=bc_source, kernel_aggregation=aggregation,
             scan_backend=backend).double()
    randomise(m)
    h = torch.randn(2, 9, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = spec_bis6(m, h)
    got = m(h)
    assert got.shape == (2, 9, 6)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12), (got - expected).abs().max()


def test_single_kernel_bis6_matches_spec_transcription():
    m = randomise(BiS6(8, d_state=4, expand=2, kernel_sizes=(4,)).double())
    h = torch.randn(1, 7, 8, dtype=torch.float64)
    assert torch.allclose(m(h), spec_bis6(m, h), rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not native.is_available(), reason="native kernel unavailable")
def test_bis6_gradients_native_equal_reference():
    torch.manual_seed(0)
    m = randomise(BiS6(10, d_state=4, kernel_sizes=(2, 3, 4)).double())
    h = torch.randn(2, 13, 10, dtype=torch.float64, requires_grad=True)
    grads = {}
    for backend in ("reference", "native"):
        m.scan_backend = backend
        params = [h] + list(m.parameters())
        grads[backend] = torch.autograd.grad(m(h).square().sum(), params)
    for a, b in zip(grads["native"], grads["reference"]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-11)


def spec_param_count(d: int, kernels, d_state: int = 16) -> int:
    """docs/model.md §3.10: P = 4DN + sum_i (N k_i + N) + N(R + 2S) + (RN + N) + NS + N + 2KN D, with N = D."""
    n, r, k = d, math.ceil(d / 16), len(kernels)
    return (4 * d * n + sum(n * ki + n for ki in kernels) + n * (r + 2 * d_state) + (r * n + n) + n * d_state + n
            + 2 * k * n * d)


@pytest.mark.parametrize("d,kernels,expected", [(512, (2, 3, 4), 2_685_952), (576, (2, 3, 4), 3_394_944),
                                                (512, (4,), 1_633_792)])
def test_parameter_count_matches_spec(d, kernels, expected):
    m = BiS6(d, kernel_sizes=kernels)
    assert sum(p.numel() for p in m.parameters()) == spec_param_count(d, kernels) == expected


def test_official_parameter_names_and_shapes():
    m = BiS6(512, kernel_sizes=(2, 3, 4))
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "A_log": (512, 16), "D": (512,), "in_proj.weight": (2048, 512),
        "conv1ds.0.weight": (512, 1, 2), "conv1ds.0.bias": (512,), "conv1ds.1.weight": (512, 1, 3),
        "conv1ds.1.bias": (512,), "conv1ds.2.weight": (512, 1, 4), "conv1ds.2.bias": (512,),
        "x_proj.weight": (64, 512), "dt_proj.weight": (512, 32), "dt_proj.bias": (512,),
        "out_proj.weight": (512, 3072),
    }


def test_official_initialisation():
    torch.manual_seed(0)
    m = BiS6(64, kernel_sizes=(2, 3, 4))
    assert torch.allclose(m.A_log, torch.log(torch.arange(1, 17.0)).expand(64, 16))
    assert torch.equal(m.D, torch.ones(64))
    assert all(torch.equal(c.bias, torch.zeros(64)) for c in m.conv1ds)
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6 and dt.min() < 0.01 < dt.max()
    bound = m.dt_rank ** -0.5
    assert m.dt_proj.weight.abs().max() <= bound


def test_freeze_dwconv_freezes_only_the_convs():
    m = BiS6(16, kernel_sizes=(2, 3, 4), freeze_dwconv=True)
    frozen = {k for k, p in m.named_parameters() if not p.requires_grad}
    assert frozen == {f"conv1ds.{i}.{w}" for i in range(3) for w in ("weight", "bias")}
    m(torch.randn(1, 5, 16)).sum().backward()
    assert all(m.conv1ds[i].weight.grad is None for i in range(3))
    assert m.in_proj.weight.grad is not None


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="bc_source"):
        BiS6(8, bc_source="last")
    with pytest.raises(ValueError, match="kernel_aggregation"):
        BiS6(8, kernel_aggregation="mean")


@pytest.mark.parametrize("kernel_sizes", [(4,), (2, 3, 4), (1, 3)])
def test_causal_dw_convs_match_conv1d_and_gradcheck(kernel_sizes):
    """The fused causal depthwise convs equal F.conv1d on a left-padded input, and their backward is exact."""
    from rdfa_s6.ssm.bis6 import CausalDWConvs

    g = torch.Generator().manual_seed(0)
    s, length, n = 2, 7, 3
    base = torch.randn(s, length, 2 * n, dtype=torch.float64, generator=g)
    x = base[..., :n].detach().requires_grad_()  # a strided view, as BiS6 passes it
    params = []
    for k in kernel_sizes:
        params += [torch.randn(n, 1, k, dtype=torch.float64, generator=g).requires_grad_(),
                   torch.randn(n, dtype=torch.float64, generator=g).requires_grad_()]
    got = CausalDWConvs.apply(x, kernel_sizes, *params)
    for i, k in enumerate(kernel_sizes):
        expected = F.conv1d(F.pad(x.transpose(1, 2), (k - 1, 0)), params[2 * i], params[2 * i + 1], groups=n)
        torch.testing.assert_close(got[i], expected.transpose(1, 2), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, *p: CausalDWConvs.apply(x, kernel_sizes, *p), (x, *params))
    frozen = [p.detach() for p in params]  # freeze_dwconv: no parameter gradients asked for
    out = CausalDWConvs.apply(x, kernel_sizes, *frozen)
    (grad_x,) = torch.autograd.grad(out.sum(), x)
    assert grad_x.shape == x.shape
