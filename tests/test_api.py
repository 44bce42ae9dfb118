"""The Python API (``rdfa_s6.Detector``): the README example, equality with ``rdfa-s6 infer``, batching, devices,
external-score fusion, and the import surface (``__all__``, ``__dir__``, lazy torch import)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rdfa_s6.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2", "train.warmup_epochs=0"]
SYNTH = ["--train-videos", "4", "--val-videos", "2", "--test-videos", "3", "--classes", "2", "--dim", "10",
         "--min-len", "32", "--max-len", "60", "--seed", "3"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The layout of make demo (tiny): ``demo_out/data`` from ``rdfa-s6 synth``, ``demo_out/run`` from
    ``rdfa-s6 train``."""
    root = tmp_path_factory.mktemp("api")
    assert main(["synth", str(root / "demo_out" / "data"), *SYNTH]) == 0
    assert main(["train", "demo", "--data-root", str(root / "demo_out" / "data"),
                 "--out", str(root / "demo_out" / "run"),
                 "--no-progress", *TINY]) == 0
    return root


def _readme_block(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"README section {title!r} has no python code block"
    return blocks[0]


def test_readme_python_api_example_runs_verbatim(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(compile(_readme_block("Python API"), "README.md", "exec"), namespace)
    from rdfa_s6 import Detection

    assert isinstance(namespace["d"], Detection)
    assert all(isinstance(x, Detection) for x in namespace["dets"])
    assert set(namespace["batch"]) == {"synth_test_0000"}
    assert capsys.readouterr().out.strip()  # the example prints the first detection


def test_predict_on_a_feature_file_equals_the_infer_command(workdir, tmp_path, capsys):
    from rdfa_s6 import Detector

    feats = workdir / "demo_out" / "data" / "features" / "synth_test_0001.npy"
    code = main(["infer", str(workdir / "demo_out" / "run"), str(feats), "--out", str(tmp_path / "r.json"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    cli_dets = json.loads((tmp_path / "r.json").read_text())["results"]["synth_test_0001"]
    api_dets = Detector.from_pretrained(workdir / "demo_out" / "run").predict(feats)
    assert len(cli_dets) == len(api_dets) > 0
    for c, a in zip(cli_dets, api_dets):
        assert c["label"] == a.label
        assert c["segment"] == pytest.approx([a.start, a.end], abs=1e-4)
        assert c["score"] == pytest.approx(a.score, abs=1e-4)


def test_predict_many_equals_predict_alone(workdir):
    """Videos are batched only with videos padded to the same length, so batching changes nothing: three
    videos shorter than max_seq_len (one batch) and one longer (its own)."""
    from rdfa_s6 import Detector

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    feats_dir = workdir / "demo_out" / "data" / "features"
    videos = {p.stem: np.load(p) for p in sorted(feats_dir.glob("synth_test_*.npy"))}
    videos["long"] = np.random.default_rng(0).standard_normal((150, 10)).astype(np.float32)
    many = det.predict_many(videos, fps=30.0, batch_size=8)
    assert list(many) == list(videos)
    for vid, feats in videos.items():
        alone = det.predict(feats, fps=30.0, video_id=vid)
        assert [(d.label, d.label_id) for d in alone] == [(d.label, d.label_id) for d in many[vid]]
        np.testing.assert_allclose([[d.start, d.end, d.score] for d in alone],
                                   [[d.start, d.end, d.score] for d in many[vid]], atol=1e-5)


def test_detections_are_seconds_within_the_covered_span_and_named(workdir):
    from rdfa_s6 import Detector

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    feats = np.load(workdir / "demo_out" / "data" / "features" / "synth_test_0000.npy")
    dets = det.predict(torch.from_numpy(feats), fps=15.0, stride=8, window=8)
    covered = ((feats.shape[0] - 1) * 8 + 8) / 15.0
    assert dets and all(0 <= d.start <= d.end <= covered + 1e-6 for d in dets)
    assert {d.label for d in dets} <= set(det.label_names.values())
    assert dets == sorted(dets, key=lambda d: -d.score)
    entry = dets[0].to_dict()
    assert entry["segment"] == [dets[0].start, dets[0].end] and entry["label"] == dets[0].label


def test_run_records_the_training_videos_fps_so_infer_needs_no_fps(workdir):
    """``rdfa-s6 synth`` writes fps 30 for every video; the run records it (meta.json ``video_fps``)."""
    from rdfa_s6 import Detector

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    assert det.config.data.default_fps is None and det.default_fps == 30.0
    feats = np.load(workdir / "demo_out" / "data" / "features" / "synth_test_0000.npy")
    assert det.predict(feats) == det.predict(feats, fps=30.0)


def test_external_scores_fuse_under_the_dataset_class_names(workdir):
    """``ext_scores`` = [p_0 .. p_K] by class id: fused detections carry the annotation file's class names
    (the top two classes), scored sqrt(p_class * p_segment)."""
    from rdfa_s6 import Detector

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    feats = np.load(workdir / "demo_out" / "data" / "features" / "synth_test_0000.npy")
    plain = det.predict(feats)
    fused = det.predict(feats, ext_scores=[0.2, 0.8])
    names = json.loads((workdir / "demo_out" / "run" / "final" / "meta.json").read_text())["class_names"]
    assert {d.label for d in fused} == {names["0"], names["1"]}
    best = [d for d in fused if d.label_id == 1]
    top = sorted(plain, key=lambda d: -d.score)[: len(best)]
    np.testing.assert_allclose(sorted(d.score for d in best), sorted(np.sqrt(0.8 * d.score) for d in top),
                               rtol=1e-5)


def test_every_tensor_reaching_the_model_is_on_its_device(workdir, tmp_path, monkeypatch):
    """``rdfa-s6 infer --device D`` used to build the mask on the CPU, which fails on the first GPU call. No GPU
    here: the model goes to the ``meta`` device and a stand-in forward records where its inputs are."""
    from rdfa_s6.models.detector import DetectorNet as Network

    seen = []

    class Stop(Exception):
        pass

    def spy(self, feats, mask):
        seen.append((feats.device.type, mask.device.type, next(self.parameters()).device.type))
        raise Stop

    monkeypatch.setattr(Network, "forward", spy)
    feats = workdir / "demo_out" / "data" / "features" / "synth_test_0000.npy"
    with pytest.raises(Stop):
        main(["infer", str(workdir / "demo_out" / "run"), str(feats), "--fps", "30", "--device", "meta", "--out",
              str(tmp_path / "r.json")])
    assert seen == [("meta", "meta", "meta")]


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((5, 7), np.float32), "C=7"),
    (np.zeros((0, 10), np.float32), "T > 0"),
    (np.zeros(10, np.float32), "[T, C]"),
    (np.full((5, 10), np.nan, np.float32), "NaN"),
])
def test_bad_features_are_errors_naming_the_problem(workdir, bad, needle):
    from rdfa_s6 import Detector
    from rdfa_s6.errors import DataError

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    with pytest.raises(DataError, match=re.escape(needle)):
        det.predict(bad, fps=30.0)


def test_fps_is_required_when_nothing_records_it(workdir):
    from rdfa_s6 import Detector
    from rdfa_s6.errors import UserError

    det = Detector.from_pretrained(workdir / "demo_out" / "run")
    det.video_fps = None
    with pytest.raises(UserError, match="fps is required"):
        det.predict(np.zeros((20, 10), np.float32))


def test_the_top_level_api_is_typed_listed_and_imports_without_torch():
    import rdfa_s6
    from rdfa_s6 import Detection, Detector, load_detector

    assert {"Detector", "Detection", "load_detector"} <= set(rdfa_s6.__all__) <= set(dir(rdfa_s6))
    assert Detector.predict.__annotations__["return"] == "List[Detection]"
    assert "Detector" in load_detector.__annotations__["return"]
    code = "import sys, rdfa_s6; assert 'torch' not in sys.modules; print(sorted(rdfa_s6.__all__))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "Detector" in out and Detection.__name__ == "Detection"
