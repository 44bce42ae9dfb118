"""Happy paths of the command line, in process and tiny: synth -> check-data -> train -> test -> infer -> visualize.

A module-scoped synthetic dataset (8 short videos, C=10, 2 classes) and one run of ``train`` for 1 epoch of a
tiny model (embed_dim 16, one recurrence, 3 pyramid levels) keep every test to a few seconds on 2 CPU cores.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdfa_s6.cli import main
from rdfa_s6.data.coords import covered_seconds, expected_steps

#: a tiny model and one epoch: trains in seconds on a CPU
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2", "train.warmup_epochs=0"]
SYNTH = ["--train-videos", "4", "--val-videos", "2", "--test-videos", "2", "--classes", "2", "--dim", "10",
         "--min-len", "32", "--max-len", "60", "--seed", "3"]
FPS, STRIDE, WINDOW = 30.0, 4, 16  # the synthetic data's (and the demo preset's) units


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(capsys, *argv) -> Tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The synthetic dataset, with one training segment moved to end 0.5 s after its video's duration (the
    kind of annotation error real data has: a warning, clamped in training)."""
    root = tmp_path_factory.mktemp("data")
    assert main(["synth", str(root), *SYNTH]) == 0
    doc = json.loads((root / "annotations.json").read_text())
    entry = doc["database"]["synth_training_0000"]
    entry["annotations"][-1]["segment"][1] = entry["duration"] + 0.5
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "demo", "--data-root", str(data_dir), "--out", str(out), "--no-progress", *TINY]) == 0
    return out


def test_synth_writes_the_standard_layout(tmp_path, capsys):
    code, out, _ = cli(capsys, "synth", tmp_path / "d", *SYNTH)
    assert code == 0 and "wrote 8 videos" in out
    database = json.loads((tmp_path / "d" / "annotations.json").read_text())["database"]
    assert sorted({e["subset"] for e in database.values()}) == ["test", "training", "validation"]
    for vid, entry in database.items():
        feats = np.load(tmp_path / "d" / "features" / f"{vid}.npy")
        assert feats.dtype == np.float32 and feats.shape[1] == 10 and 32 <= feats.shape[0] <= 60
        # T clips of 16 frames every 4 frames at 30 fps cover ((T - 1) * 4 + 16) / 30 s
        assert entry["duration"] == pytest.approx(covered_seconds(feats.shape[0], FPS, STRIDE, WINDOW), abs=1e-3)
        for ann in entry["annotations"]:
            assert 0 <= ann["segment"][0] < ann["segment"][1] <= entry["duration"]


def test_check_data_prints_a_table_and_passes_with_warnings(data_dir, capsys):
    """Warnings (a segment ending after the duration) leave the exit status 0; errors make it 2 (see
    test_cli_errors.py)."""
    code, out, err = cli(capsys, "check-data", "demo", "--data-root", data_dir)
    assert code == 0 and err == ""
    header = next(line for line in out.splitlines() if line.startswith("split"))
    assert "videos" in header and "beyond dur." in header
    assert "synth_training_0000" in out and "ending after the duration" in out
    assert "ok: training can start (warnings above)" in out


def test_check_data_on_thumos14_annotations(shared_data, tmp_path, capsys):
    """THUMOS-14 has 30 segments that start after their video's stated duration, in 5 videos (22 in
    video_test_0000270). check-data reports them as warnings, not errors: evaluation must keep them (the
    official code does) and training drops those that start after the features end; here the features are
    as long as the durations imply, so all of them are also listed as starting after the last step."""
    database = json.loads((shared_data / "thumos14.json").read_text())["database"]
    (tmp_path / "features").mkdir()
    for vid, entry in database.items():
        steps = max(1, round(expected_steps(entry["duration"], entry["fps"], STRIDE, WINDOW)))
        np.save(tmp_path / "features" / f"{vid}.npy", np.zeros((steps, 2), np.float32))
    code, out, err = cli(capsys, "check-data", "thumos14", "--data-root", tmp_path, "--show", "10",
                         f"data.annotation_file={shared_data / 'thumos14.json'}", "data.feature_dir=features",
                         "data.file_suffix=", "data.file_ext=.npy", "data.input_dim=2")
    assert code == 0, err
    assert "video_test_0000270: 22 segment(s)" in out and "video_validation_0000364: 2 segment(s)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("validation", "test "))}
    assert rows["validation"][1] == "200" and rows["test"][1] == "212"
    assert rows["test"][9] == "26" and rows["validation"][9] == "4"  # the "beyond dur." column
    assert "segments starting after the last feature step" in out
    assert "ok: training can start (warnings above)" in out


def test_train_writes_a_run_folder(run_dir):
    assert (run_dir / "final" / "model.safetensors").is_file()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("kind") == "epoch" for r in records)
    meta = json.loads((run_dir / "final" / "meta.json").read_text())
    assert sorted(meta["label_names"].values()) == ["Jump", "Throw"]


def test_training_dataset_warns_and_follows_gt_clip(data_dir, caplog):
    """A segment ending after the duration is a warning, once, when the annotations are loaded (the training set
    used to warn a second time). The demo preset keeps it as annotated in training
    (data.gt_clip none, the official THUMOS-14 loader); gt_clip upstream cuts it at the end of the last clip,
    T + 0.5 * 16 / 4 = T + 2 steps (crop_ratio off here, so that no random crop cuts it instead)."""
    from rdfa_s6.config import load_config
    from rdfa_s6.data.dataset import TALDataset
    from rdfa_s6.data.prepare import prepare_data

    cfg = load_config("demo", TINY + ["data.crop_ratio=null"])
    with caplog.at_level("WARNING"):
        data = prepare_data(cfg.data, data_dir, ["training"])
    assert "synth_training_0000" in caplog.text and "training handles them as data.gt_clip says" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        dataset = TALDataset(data.annotations.split("training"), data.reader, cfg.data, training=True)
    assert "duration" not in caplog.text
    sample = dataset[0]
    assert sample["meta"].video_id == "synth_training_0000"
    untouched = TALDataset(data.annotations.split("training"), data.reader, cfg.data, training=False)[0]
    length = sample["feats"].shape[1]
    assert float(untouched["segments"][:, 1].max()) > length + 2
    assert torch.equal(sample["segments"], untouched["segments"])
    cut = dataclasses.replace(cfg.data, gt_clip="upstream")
    clipped = TALDataset(data.annotations.split("training"), data.reader, cut, training=True)[0]
    assert float(clipped["segments"][:, 1].max()) == pytest.approx(length + 2)


def test_test_writes_metrics_json(run_dir, data_dir, tmp_path, capsys):
    code, out, err = cli(capsys, "test", run_dir, "--data-root", data_dir, "--json", tmp_path / "m.json",
                         "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert metrics["gt_policy"] == "actionformer"  # eval.gt_policy, the official metric's (test_upstream_datasets)
    assert len(metrics["mAP"]) == 5 and all(0.0 <= v <= 1.0 for v in metrics["mAP"])
    assert metrics["average_mAP"] == pytest.approx(float(np.mean(metrics["mAP"])))
    assert set(metrics["per_class_AP"]) <= {"Jump", "Throw"} and metrics["per_class_AP"]
    assert (tmp_path / "out" / "results_test.json").is_file() and "mAP(%)" in out


def _csv_rows(path: Path) -> List[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_infer_folder_to_json_and_csv(run_dir, data_dir, tmp_path, capsys):
    feats = data_dir / "features"
    code, out, err = cli(capsys, "infer", run_dir, feats, "--fps", FPS, "--out", tmp_path / "d.json",
                         "--csv", tmp_path / "d.csv")
    assert code == 0, err
    results = json.loads((tmp_path / "d.json").read_text())["results"]
    assert set(results) == {p.stem for p in feats.glob("*.npy")}
    rows = _csv_rows(tmp_path / "d.csv")
    assert rows and list(rows[0]) == ["video_id", "start_s", "end_s", "label", "score"]
    for row in rows:
        duration = covered_seconds(np.load(feats / f"{row['video_id']}.npy").shape[0], FPS, STRIDE, WINDOW)
        assert row["label"] in ("Jump", "Throw")
        assert 0.0 <= float(row["start_s"]) <= float(row["end_s"]) <= duration + 1e-4


def _copy_checkpoint(src: Path, dst: Path, **data_fields) -> Path:
    dst.mkdir()
    for name in ("model.safetensors", "meta.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    config = json.loads((src / "config.json").read_text())
    for key, value in data_fields.items():
        section, field = key.split("__")
        config[section][field] = value
    (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize("fields, steps, stride, window", [
    ({}, 20, 4.0, 16.0),
    ({"data__downsample_rate": 2}, 10, 8.0, 16.0),  # every 2nd row, as in training
    ({"data__force_upsampling": True}, 64, (19 * 4 + 16) / 64, (19 * 4 + 16) / 64),  # resized to max_seq_len
])
def test_infer_feeds_the_model_as_training_did(run_dir, tmp_path, capsys, monkeypatch, fields, steps, stride,
                                               window):
    """Regression: the duration was (T * stride + window) / fps, one stride too long (20 rows at 10 fps:
    9.6 s instead of 9.2 s), and data.downsample_rate / force_upsampling were ignored."""
    import rdfa_s6.api as api

    seen = []

    def fake_predict_batch(model, batch, cfg, names, external=None, precision="fp32"):
        assert precision == "auto"  # infer's default --precision reaches the predictor
        seen.append((batch.feats.shape, batch.mask.sum().item(), batch.meta[0], dict(names)))
        meta = batch.meta[0]
        return {meta.video_id: [{"segment": [0.0, meta.duration], "label": names[0], "label_id": 0,
                                    "score": 0.5}]}

    monkeypatch.setattr(api, "predict_batch", fake_predict_batch)
    np.save(tmp_path / "v.npy", np.zeros((20, 10), np.float32))
    ckpt = _copy_checkpoint(run_dir / "final", tmp_path / "ckpt", **fields)
    code, _, err = cli(capsys, "infer", ckpt, tmp_path / "v.npy", "--fps", "10", "--out", tmp_path / "d.json")
    assert code == 0, err
    (shape, valid, meta, names), = seen
    assert meta.duration == pytest.approx((19 * 4 + 16) / 10)
    assert valid == steps and shape[1] == 10
    assert meta.feat_stride == pytest.approx(stride) and meta.num_frames == pytest.approx(window)
    assert sorted(names.values()) == ["Jump", "Throw"]


def test_infer_video_longer_than_the_point_buffer(run_dir, tmp_path, capsys):
    """The model precomputes anchor points for max_seq_len * max_buffer_len_factor = 64 * 6 = 384 steps;
    longer videos are processed whole with points computed on the fly, giving the same detections as a
    model whose buffer is large enough."""
    long = np.random.default_rng(1).standard_normal((500, 10)).astype(np.float32)
    np.save(tmp_path / "long.npy", long)
    code, _, err = cli(capsys, "infer", run_dir, tmp_path / "long.npy", "--fps", FPS, "--out", tmp_path / "a.json")
    assert code == 0, err
    big = _copy_checkpoint(run_dir / "final", tmp_path / "big", model__max_buffer_len_factor=10.0)
    assert cli(capsys, "infer", big, tmp_path / "long.npy", "--fps", FPS, "--out", tmp_path / "b.json")[0] == 0
    a = json.loads((tmp_path / "a.json").read_text())["results"]["long"]
    b = json.loads((tmp_path / "b.json").read_text())["results"]["long"]
    assert a == b and a
    assert max(d["segment"][1] for d in a) <= covered_seconds(500, FPS, STRIDE, WINDOW) + 1e-4


def test_visualize_test_outputs(run_dir, data_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli(capsys, "test", run_dir, "--data-root", data_dir, "--out", tmp_path, "--no-progress")[0] == 0
    code, out, err = cli(capsys, "visualize", "--gt", data_dir / "annotations.json", "--pred",
                         tmp_path / "results_test.json", "--out", tmp_path / "fig", "--run", run_dir,
                         "--num-videos", "1")
    assert code == 0, err
    pngs = sorted(p.name for p in (tmp_path / "fig").glob("*.png"))
    assert "class_ap.png" in pngs and "training_curve.png" in pngs and any(p.startswith("timeline_") for p in pngs)
    assert all((tmp_path / "fig" / p).stat().st_size > 1000 for p in pngs)
    assert f"{len(pngs)} files written" in out


# ---- the header check that train and test run before loading (FeatureReader.peek) is as robust as load() ------
def _npy_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 2), np.float32))
    return buf.getvalue()


_NPY = _npy_bytes()


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=200),
    st.integers(0, len(_NPY)).map(lambda n: _NPY[:n]),
    st.lists(st.tuples(st.integers(0, len(_NPY) - 1), st.integers(0, 255)), min_size=1, max_size=6).map(
        lambda edits: bytes(_edit(_NPY, edits)))))
def test_fuzz_feature_header_check_agrees_with_load(tmp_path, data):
    """prepare_data (train, test) checks every .npy header with FeatureReader.peek; on any bytes it raises
    DataError only, and whatever it accepts has the (T, C) that the fuzz-tested load() then returns (or load
    raises DataError, e.g. for NaN)."""
    from rdfa_s6.data.features import FeatureReader
    from rdfa_s6.errors import DataError

    (tmp_path / "v.npy").write_bytes(data)
    reader = FeatureReader(tmp_path, ext=".npy")
    try:
        shape = reader.peek("v")
    except DataError:
        return
    try:
        feats = reader.load("v")
    except DataError:
        return
    assert shape == (feats.shape[1], feats.shape[0])


def _edit(base: bytes, edits) -> bytearray:
    out = bytearray(base)
    for pos, value in edits:
        out[pos] = value
    return out
