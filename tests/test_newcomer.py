"""A newcomer's rough edges (issue 22): each test here failed on the code before the fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from _hostile import run_cli

from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.config import load_config
from rdfa_s6.data.synth import SynthSpec, generate
from rdfa_s6.models import build_detector

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("newcomer")
    generate(base / "data", SynthSpec(train_videos=1, val_videos=0, test_videos=2, num_classes=2, dim=16,
                                      min_len=40, max_len=48, seed=4))
    db = json.loads((base / "data" / "annotations.json").read_text())["database"]
    names = {str(a["label_id"]): a["label"] for rec in db.values() for a in rec["annotations"]}
    cfg = load_config("demo", TINY + ["data.input_dim=16", "data.num_classes=2"])
    save_checkpoint(base / "ckpt", build_detector(cfg), cfg, meta={"label_names": names})
    return base


def test_every_map_table_states_the_precision_and_device(world, tmp_path):
    """test prints it under its table and records it; infer's results carry it, so evaluate's table says it too."""
    out = run_cli(["test", world / "ckpt", "--data-root", world / "data", "--out", tmp_path, "--no-progress",
                   "--precision", "fp32", "--device", "cpu"])
    assert out.rc == 0, out.err
    assert "detections computed in fp32 on cpu" in out.out
    assert json.loads((tmp_path / "metrics_test.json").read_text())["computed_with"] == {"precision": "fp32",
                                                                                         "device": "cpu"}
    out = run_cli(["infer", world / "ckpt", world / "data" / "features", "--out", tmp_path / "d.json", "--fps", "30",
                   "--no-progress", "--precision", "fp32", "--device", "cpu"])
    assert out.rc == 0, out.err
    out = run_cli(["evaluate", "--pred", tmp_path / "d.json", "--gt", world / "data" / "annotations.json"])
    assert out.rc == 0, out.err
    assert "detections computed in fp32 on cpu" in out.out


def test_a_results_file_without_the_key_is_scored_as_before(world, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"results": {"synth_test_0000": []}}))
    out = run_cli(["evaluate", "--pred", tmp_path / "p.json", "--gt", world / "data" / "annotations.json"])
    assert "computed in" not in out.out


def test_demo_help_says_what_quick_costs():
    out = run_cli(["demo", "--help"])
    assert "under a minute" not in out.out and "half the epochs" in out.out


def test_the_api_doc_describes_predict_video():
    text = (ROOT / "docs" / "api.md").read_text()
    assert "predict_video(" in text and "ext_scores" in text


def test_no_progress_keeps_the_line_per_epoch(world, tmp_path):
    """--no-progress said "no progress bars" but also silenced the per-epoch loss lines."""
    out = run_cli(["train", "demo", "--data-root", world / "data", "--out", tmp_path / "run", "--no-progress",
                   *TINY, "train.epochs=1", "train.batch_size=1", "data.val_split=null"])
    assert out.rc == 0, out.err
    assert "epoch 1/1: loss" in out.out


def test_the_first_native_build_says_so_once(tmp_path, monkeypatch, capsys):
    """The first use compiled the native scan for a few seconds in silence."""
    import shutil

    from rdfa_s6.ssm import native

    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler here: the chunked scan is used (one warning says so)")
    monkeypatch.setenv("RDFA_S6_CACHE", str(tmp_path))
    first = native._build(cxx)
    said = capsys.readouterr().err
    assert said.count("compiling the native selective scan once") == 1 and str(tmp_path) in said
    assert native._build(cxx) == first  # cached: not compiled, not said again
    assert "compiling" not in capsys.readouterr().err
