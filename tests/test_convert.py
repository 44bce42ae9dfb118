"""``rdfa-s6 convert`` and checkpoint folders: official .pth -> safetensors folder -> identical model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rdfa_s6 import build_detector, cli, load_config, load_detector
from rdfa_s6.checkpoint import read_meta, save_checkpoint
from rdfa_s6.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _only_convert(monkeypatch):
    """Parse with the convert command alone, so these tests do not depend on the other commands' imports."""
    monkeypatch.setattr(cli, "COMMANDS", ["convert"])


def main(argv):
    return cli.main(argv)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """An official-format checkpoint of a randomly initialised THUMOS-14 model (EMA != raw weights)."""
    torch.manual_seed(0)
    model = build_detector(load_config("thumos14"))
    raw = model.state_dict()
    g = torch.Generator().manual_seed(1)
    ema = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in raw.items()}
    path = tmp_path_factory.mktemp("official") / "epoch_049.pth"
    torch.save({"epoch": 49, "model": {f"module.{k}": v for k, v in raw.items()}, "model_ema": ema,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "scheduler": {"base_lrs": [1e-4]},
                "mAP": np.float64(0.742)}, path)
    return path, raw, ema


def small_input(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(1, 3200, 64, generator=g)
    mask = torch.ones(1, 1, 64, dtype=torch.bool)
    mask[..., 50:] = False
    return feats, mask


@pytest.mark.parametrize("weights", ["ema", "model"])
def test_convert_round_trip_gives_identical_tensors_and_outputs(official, tmp_path, weights):
    path, raw, ema = official
    out = tmp_path / "ckpt"
    assert main(["convert", str(path), str(out), "--weight-set", {"model": "raw"}.get(weights, weights)]) == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "meta.json"}
    model, cfg = load_detector(out)
    expected = ema if weights == "ema" else raw
    got = model.state_dict()
    assert list(got) == list(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert cfg.name == "thumos14" and cfg.data.input_dim == 3200 and cfg.data.num_classes == 20
    meta = read_meta(out)
    assert meta["epoch"] == 49 and meta["mAP"] == pytest.approx(0.742)
    assert meta["source_weights"] in ("model_ema", "model")

    reference = build_detector(load_config("thumos14"))
    reference.load_state_dict(expected)
    reference.eval()
    feats, mask = small_input()
    with torch.no_grad():
        a, b = reference.forward_raw(feats, mask), model.forward_raw(feats, mask)
    for x, y in zip(a.cls_logits + a.offsets + a.masks + a.points, b.cls_logits + b.offsets + b.masks + b.points):
        assert torch.equal(x, y)


def test_missing_and_unexpected_keys_are_listed(official, tmp_path, capsys):
    path, raw, _ = official
    state = dict(raw)
    del state["neck.fpn_norms.3.bias"]
    state["backbone.stem_module.blocks.1.ln.weight"] = torch.ones(512)
    bad = tmp_path / "bad.pth"
    torch.save({"model_ema": state}, bad)
    assert main(["convert", str(bad), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "missing keys: neck.fpn_norms.3.bias" in err
    assert "unexpected keys: backbone.stem_module.blocks.1.ln.weight" in err
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_and_preset_conflicts(official, tmp_path, capsys):
    path, raw, _ = official
    state = dict(raw)
    state["backbone.stem_module.blocks.0.c_mamba.D"] = torch.ones(48)
    bad = tmp_path / "shape.pth"
    torch.save({"model_ema": state}, bad)
    assert main(["convert", str(bad), str(tmp_path / "o1")]) == 2
    assert "c_mamba.D: expected (576,), got (48,)" in capsys.readouterr().err
    assert main(["convert", str(path), str(tmp_path / "o2"), "--preset", "fineaction"]) == 2
    assert "input_dim=3200 but preset 'fineaction' says 1408" in capsys.readouterr().err


def test_pickled_code_is_refused(tmp_path, capsys):
    bad = tmp_path / "code.pth"
    torch.save({"model_ema": {}, "hook": DataError("not a tensor")}, bad)
    assert main(["convert", str(bad), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "refusing to unpickle" in err and "DataError" in err


def test_missing_weights_entry_and_missing_file(official, tmp_path, capsys):
    path, raw, _ = official
    only_model = tmp_path / "raw_only.pth"
    torch.save({"model": raw}, only_model)
    assert main(["convert", str(only_model), str(tmp_path / "o")]) == 2
    assert "no 'model_ema' entry" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_load_detector_errors_are_clear(tmp_path):
    cfg = load_config("demo", ["data.input_dim=8", "data.num_classes=2", "model.embed_dim=16",
                               "model.stem.chan_pool_len=8"])
    model = build_detector(cfg)
    folder = save_checkpoint(tmp_path / "ck", model, cfg, meta={"epoch": 3})
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left
    loaded, loaded_cfg = load_detector(folder)
    assert loaded_cfg == cfg and not loaded.training

    with pytest.raises(DataError, match="not found"):
        load_detector(tmp_path / "missing")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or not a safetensors file"):
        load_detector(folder)
    weights.write_bytes(data)
    # a config from another preset next to these weights
    other = json.loads((folder / "config.json").read_text())
    other["model"]["embed_dim"] = 32
    (folder / "config.json").write_text(json.dumps(other))
    with pytest.raises(DataError, match="another preset.*shape mismatches"):
        load_detector(folder)
    (folder / "config.json").write_text("{")
    with pytest.raises(DataError, match=r"config\.json: not valid JSON"):
        load_detector(folder)
    (folder / "config.json").unlink()
    with pytest.raises(DataError, match="not an rdfa-s6 checkpoint folder"):
        load_detector(folder)


def test_save_fills_inferred_dims(tmp_path):
    cfg = load_config("demo", ["model.embed_dim=16", "model.stem.chan_pool_len=8"])
    model = build_detector(cfg, input_dim=5, num_classes=4)
    save_checkpoint(tmp_path / "ck", model, cfg)
    loaded, loaded_cfg = load_detector(tmp_path / "ck")
    assert (loaded_cfg.data.input_dim, loaded_cfg.data.num_classes) == (5, 4)
    assert (loaded.input_dim, loaded.num_classes) == (5, 4)
