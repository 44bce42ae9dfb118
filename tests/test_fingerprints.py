"""Fingerprints that a refactor must keep: a seeded tiny model per registered encoder (its state dict and its
outputs on a seeded input) and a tiny training (its losses and final weights).

A refactor that claims "behaviour stays as it is" keeps these green. Names and shapes are compared exactly;
float values as a few summary numbers (sum, sum of absolute values, sum of squares, a sum weighted by position,
a handful of elements) with a relative tolerance of 1e-4, because CPUs differ in their last bits (AVX2 vs
AVX512 kernels sum in another order). A change that is meant to alter these numbers prints the new values with
``PYTHONPATH=src python tests/test_fingerprints.py`` and says why in its commit message.

The tolerance was checked against other summation orders: the module stays green with ``RDFA_S6_SCAN=reference``
or ``chunked``, ``RDFA_S6_FUSED=0``, ``ATEN_CPU_CAPABILITY=avx2`` or ``default`` and
``MKL_ENABLE_INSTRUCTIONS=SSE4_2``.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import _tiny_training
import pytest
import torch
from _tiny_training import train_tiny

from rdfa_s6 import build_detector, load_config
from rdfa_s6.checkpoint import latest_checkpoint, read_weights

tiny_data = _tiny_training.tiny_data
_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags

#: the encoders whose fingerprints are recorded below (a newly registered encoder adds its own)
ENCODER_NAMES = ("rdfa_s6", "actionformer", "actionmamba")

TINY = [
    "data.input_dim=12", "data.num_classes=3", "data.max_seq_len=64", "model.embed_dim=16",
    "model.stem.chan_pool_len=8", "model.branch.levels=2", "model.regression_ranges=[[0,4],[4,8],[8,10000]]",
    "model.mixer.d_state=4", "model.baseline.window_size=5", "model.baseline.num_heads=2",
]
RTOL, ATOL = 1e-4, 1e-6


# ---- summaries ---------------------------------------------------------------------------------------------
def layout(state: Mapping[str, torch.Tensor]) -> Dict[str, object]:
    """Names and shapes, exactly: their count, total size and a digest of the ``name shape`` lines (no floats)."""
    lines = "".join(f"{k} {tuple(v.shape)}\n" for k, v in sorted(state.items()))
    return {"tensors": len(state), "numel": sum(v.numel() for v in state.values()),
            "names_shapes_sha256": hashlib.sha256(lines.encode()).hexdigest()}


def by_name(state: Mapping[str, torch.Tensor]) -> List[torch.Tensor]:
    """The tensors in the order of their names (a file's order is not the module's)."""
    return [state[k] for k in sorted(state)]


def summary(tensors: Sequence[torch.Tensor]) -> List[float]:
    """``[sum, abs-sum, square-sum, position-weighted sum, 6 elements]`` of the concatenated values (float64)."""
    flat = torch.cat([t.detach().double().flatten() for t in tensors])
    weights = torch.cos(torch.arange(flat.numel(), dtype=torch.float64) * 0.7)
    picks = [flat[int(i * (flat.numel() - 1) / 5)] for i in range(6)]
    return [float(x) for x in (flat.sum(), flat.abs().sum(), (flat * flat).sum(), (flat * weights).sum(), *picks)]


def assert_close(got: Sequence[float], expected: Sequence[float], what: str) -> None:
    """Each number within RTOL of the expected one; sums that cancel are judged against the abs-sum's scale."""
    scale = abs(expected[1])
    for i, (g, e) in enumerate(zip(got, expected)):
        tol = ATOL + RTOL * (max(abs(e), scale) if i in (0, 3) else abs(e))
        assert abs(g - e) <= tol, f"{what}: number {i} is {g!r}, recorded {e!r} (all: {got})"
    assert len(got) == len(expected), what


# ---- what is fingerprinted ---------------------------------------------------------------------------------
def seeded_model(encoder: str) -> torch.nn.Module:
    """The tiny model with ``encoder``, initialised from seed 0 (without touching the caller's global RNG)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_detector(load_config("demo", TINY + [f"model.encoder={encoder}"])).eval()


def seeded_input() -> tuple:
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 12, 64, generator=g)
    mask = torch.ones(2, 1, 64, dtype=torch.bool)
    mask[1, :, 50:] = False
    feats[1, :, 50:] = 0
    return feats, mask


def model_fingerprint(encoder: str) -> Dict[str, object]:
    model = seeded_model(encoder)
    state = model.state_dict()
    with torch.no_grad():
        out = model(*seeded_input())
    return {**layout(state), "values": summary(by_name(state)),
            "cls_logits": summary(out.cls_logits), "offsets": summary(out.offsets),
            "output_shapes": [list(x.shape) for x in out.cls_logits] + [list(x.shape) for x in out.offsets]}


def training_fingerprint(data: Path, out: Path) -> Dict[str, object]:
    train_tiny(data, out, log_every=1)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("kind") == "train"]
    ema = read_weights(out / "final" / "model.safetensors")
    raw = read_weights(latest_checkpoint(out) / "raw.safetensors")  # type: ignore[operator]
    return {"losses": [[r["loss"], r["cls_loss"], r["reg_loss"], r["grad_norm"]] for r in steps],
            **layout(ema), "values": summary(by_name(ema)), "raw_values": summary(by_name(raw))}


# ---- the recorded numbers (from the code of commit f27f015) ------------------------------------------------
EXPECTED_MODELS: Dict[str, Dict[str, object]] = {
    "rdfa_s6": {
        "tensors": 84,
        "numel": 12712,
        "names_shapes_sha256": "04905f82a6a8c31be4bcef62921adeff1a555342609ce33f9f0ce89e71adcd00",
        "values": [159.1490207, 1858.656381, 2051.132108, 27.78218967, 9.999999747e-05,
                  0.2493973374, 0.1042573527, 0.08713132143, 0.1323729306, 1],
        "cls_logits": [-2718.354841, 2718.354841, 12366.46993, 5.164199227, -5.387348175,
                      -4.516384602, -4.219205856, -4.646030903, -4.499994278, -0],
        "offsets": [86.24900812, 86.24900812, 44.79303986, 2.047196725, 0,
                   0.424642235, 0, 0, 0.4734299481, 0],
        "output_shapes": [[2, 64, 3], [2, 32, 3], [2, 16, 3], [2, 64, 2], [2, 32, 2], [2, 16, 2]],
    },
    "actionformer": {
        "tensors": 139,
        "numel": 19160,
        "names_shapes_sha256": "d6163a390493c72f6018abee79d75596046f447c00aafa012b20365e119ce5f5",
        "values": [462.541324, 2267.402035, 820.4057425, -10.3446889, 0,
                  0.4509906173, 0.007966160774, -0.03238607943, 0.04864446819, 1],
        "cls_logits": [-2706.625748, 2706.625748, 12253.95157, 9.165649185, -4.52110672,
                      -4.50666523, -4.666431427, -4.407453537, -4.420686722, -0],
        "offsets": [28.45460699, 28.45460699, 7.814783531, 0.2216606111, 0,
                   0.04818154871, 0.00951206591, 0.0976491943, 0.3287121654, 0],
        "output_shapes": [[2, 64, 3], [2, 32, 3], [2, 16, 3], [2, 64, 2], [2, 32, 2], [2, 16, 2]],
    },
    "actionmamba": {
        "tensors": 79,
        "numel": 12632,
        "names_shapes_sha256": "f686e56e6fafd82f6504c27b44648284f4d9c804e5bf8eeb00ddd61d887630a8",
        "values": [179.9692218, 1978.477321, 2209.401509, 16.51733743, 9.999999747e-05,
                  -0.1960000396, 0.05888819322, 0.06738519669, 0.03278217837, 1],
        "cls_logits": [-2715.748279, 2715.748279, 12342.17918, 10.16019313, -4.834107876,
                      -4.718749046, -4.577381611, -4.156980515, -4.451986313, -0],
        "offsets": [74.31575336, 74.31575336, 40.35705339, -0.2407119816, 0,
                   0.1070242003, 0, 0, 0.4188376665, 0],
        "output_shapes": [[2, 64, 3], [2, 32, 3], [2, 16, 3], [2, 64, 2], [2, 32, 2], [2, 16, 2]],
    },
}
EXPECTED_TRAINING: Dict[str, object] = {
    "losses": [  # loss, cls_loss, reg_loss, grad_norm of steps 1-4
        [0.2246726304, 0.123568736, 0.1011038944, 0.4546660185],
        [0.2247627974, 0.1190613732, 0.1057014242, 0.3945756853],
        [0.193836689, 0.1063383147, 0.08749836683, 0.3425164521],
        [0.2242626995, 0.1195517778, 0.1047109216, 0.3615902066],
    ],
    "tensors": 99,
    "numel": 205835,
    "names_shapes_sha256": "81476615584e007b3b6e161423d4153cff89c0e09be75defc848a47ffbb24f0e",
    "values": [8182.024853, 20722.74128, 27134.68145, -37.25974398, 0.0001117956781,
              -0.0190125443, 0.001022170181, 0.03425866365, 0.02331230417, 1.000053763],
    "raw_values": [8184.740831, 20722.88614, 27130.08323, -37.11604401, 0.0008094937075,
                  -0.0187743064, 0.001001535216, 0.03459228575, 0.02537168376, 1.002444386],
}


# ---- the tests -----------------------------------------------------------------------------------------------
def test_every_registered_encoder_has_a_fingerprint():
    from rdfa_s6.models.encoders import ENCODERS

    assert set(ENCODER_NAMES) <= set(ENCODERS)
    assert set(EXPECTED_MODELS) == set(ENCODER_NAMES)


@pytest.mark.parametrize("encoder", ENCODER_NAMES)
def test_seeded_model_state_dict_and_outputs(encoder):
    got, expected = model_fingerprint(encoder), EXPECTED_MODELS[encoder]
    for key in ("tensors", "numel", "names_shapes_sha256", "output_shapes"):
        assert got[key] == expected[key], f"{encoder}: {key} changed"
    for key in ("values", "cls_logits", "offsets"):
        assert_close(got[key], expected[key], f"{encoder} {key}")  # type: ignore[arg-type]


def test_tiny_training_losses_and_final_weights(tiny_data, tmp_path):
    got, expected = training_fingerprint(tiny_data, tmp_path / "run"), EXPECTED_TRAINING
    for key in ("tensors", "numel", "names_shapes_sha256"):
        assert got[key] == expected[key], f"training: {key} changed"
    assert len(got["losses"]) == len(expected["losses"])  # type: ignore[arg-type]
    for step, (g, e) in enumerate(zip(got["losses"], expected["losses"]), start=1):  # type: ignore[call-overload]
        for i, (a, b) in enumerate(zip(g, e)):
            assert math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL), f"step {step}, number {i}: {a!r} vs {b!r}"
    assert_close(got["values"], expected["values"], "training: final EMA weights")  # type: ignore[arg-type]
    assert_close(got["raw_values"], expected["raw_values"], "training: last raw weights")  # type: ignore[arg-type]


if __name__ == "__main__":  # print the current numbers, to record an intended change
    import sys
    import tempfile

    from rdfa_s6.data.synth import generate

    torch.set_num_threads(1)
    print("EXPECTED_MODELS =", json.dumps({e: model_fingerprint(e) for e in ENCODER_NAMES}, indent=1))
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "data", _tiny_training.TINY_SPEC)
        print("EXPECTED_TRAINING =", json.dumps(training_fingerprint(Path(tmp) / "data", Path(tmp) / "run"),
                                                indent=1))
    sys.exit(0)
