"""rdfa_s6.precision: bf16 detection from CPU flags, resolve_precision, the autocast context, and its users."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rdfa_s6 import cpuinfo, precision
from rdfa_s6.models.blocks import ChannelLayerNorm


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend the CPU has the given /proc/cpuinfo flags (None: no cpuinfo at all)."""

    def set_flags(flags):
        def cpu_flags(path="/proc/cpuinfo"):
            return None if flags is None else frozenset(flags)
        monkeypatch.setattr(cpuinfo, "cpu_flags", cpu_flags)
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
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= cpuinfo.cpu_flags(str(info))
    assert cpuinfo.cpu_flags(str(tmp_path / "missing")) is None


def test_unknown_precision_is_rejected():
    from rdfa_s6.errors import UserError

    with pytest.raises(UserError, match="auto, fp32, bf16"):
        precision.resolve_precision("fp16")


def test_extract_follows_the_one_auto_rule(cpu_flags):
    """``extract`` used to pick bf16 on AMX CPUs only (and on any CUDA card): it now asks rdfa_s6.precision,
    which also accepts AVX512-BF16."""
    from rdfa_s6.video import extract

    cpu_flags(["avx512f", "avx512_bf16"])
    assert extract.resolve_precision("auto", torch.device("cpu")) == "bf16"
    cpu_flags(["avx2"])
    assert extract.resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_an_explicit_slow_bf16_warns_once_not_once_per_batch(cpu_flags, monkeypatch, caplog):
    """Inference enters ``autocast`` once per batch; the warning that bf16 is slow here is said once."""
    from rdfa_s6.config import load_config
    from rdfa_s6.infer.predictor import predict_batch
    from rdfa_s6.models import build_detector

    cpu_flags(["avx2"])
    monkeypatch.setattr(precision, "_warned", set())
    cfg = load_config("demo", ["model.embed_dim=8", "model.stem.recurrences=1", "model.branch.levels=2",
                               "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=32",
                               "model.stem.chan_pool_len=8"])
    model = build_detector(cfg, input_dim=4, num_classes=2).eval()
    from rdfa_s6.data.batch import Batch, VideoMeta

    batch = Batch(torch.randn(1, 4, 32), torch.ones(1, 1, 32, dtype=torch.bool),
                  [VideoMeta(video_id="v", fps=30.0, duration=4.0, feat_stride=4.0, num_frames=16.0)])
    with caplog.at_level("WARNING", logger="rdfa_s6.precision"):
        for _ in range(3):
            predict_batch(model, batch, cfg.infer, {0: "a", 1: "b"}, precision="bf16")
    assert [r.getMessage() for r in caplog.records].count(
        "bf16 requested on cpu: " + precision.bf16_support("cpu").reason) == 1


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
