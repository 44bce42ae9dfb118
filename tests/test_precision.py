"""rdfa_s6.precision: bf16 detection from CPU flags, resolve_precision, the autocast context, and its users."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rdfa_s6 import precision
from rdfa_s6.models.blocks import ChannelLayerNorm


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend the CPU has the given /proc/cpuinfo flags (None: no cpuinfo at all)."""

    def set_flags(flags):
        def cpu_flags(path="/proc/cpuinfo"):
            return None if flags is None else frozenset(flags)
        monkeypatch.setattr(precision, "_cpu_flags", cpu_flags)
        precision.cpu_bf16_support.cache_clear()

    yield set_flags
    precision.cpu_bf16_support.cache_clear()


@pytest.mark.parametrize("flags,fast,word", [
    (["avx2", "fma"], False, "no AMX"),
    (["avx512f", "avx512_bf16"], True, "AVX512-BF16"),
    (["avx512f", "amx_tile", "amx_bf16", "avx512_bf16"], True, "AMX"),
    (None, False, "unknown"),
])
def test_cpu_detection_and_auto(cpu_flags, flags, fast, word):
    cpu_flags(flags)
    support = precision.bf16_support("cpu")
    assert support.fast is fast and word in support.reason
    assert precision.resolve_precision("auto", "cpu") == ("bf16" if fast else "fp32")
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.resolve_precision("BF16", "cpu") == "bf16"  # honoured even where it is slow
    assert precision.describe("cpu").startswith(f"precision auto on cpu: {'bf16' if fast else 'fp32'}")


def test_parse_real_cpuinfo_format(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\nbogomips\t: 1\n")
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= precision._cpu_flags(str(info))
    assert precision._cpu_flags(str(tmp_path / "missing")) is None


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        precision.resolve_precision("fp16")


def test_autocast_runs_matmuls_in_bf16_and_fp32_exactly():
    lin = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with precision.autocast("cpu", "bf16") as chosen:
        assert chosen == "bf16"
        assert lin(x).dtype == torch.bfloat16
        with precision.autocast("cpu", "fp32"):  # fp32 inside switches an enclosing autocast off
            assert torch.equal(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias))


def test_channel_layernorm_computes_in_float32_for_bf16_inputs():
    norm = ChannelLayerNorm(16)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = (torch.randn(2, 16, 5) * 100 + 1000).to(torch.bfloat16)  # large mean: bf16 variance would cancel
    got = norm(x)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, norm(x.float()).to(torch.bfloat16), rtol=0, atol=0)


def test_bench_says_whether_bf16_is_used(capsys, cpu_flags):
    from rdfa_s6.cli import main

    cpu_flags(["avx2"])
    assert main(["bench", "--batch", "1", "--dim", "4", "--length", "8", "--state", "2"]) == 0
    out = capsys.readouterr().out
    assert "precision auto on cpu: fp32 (no AMX or AVX512-BF16" in out
