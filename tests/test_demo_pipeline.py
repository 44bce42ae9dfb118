"""``rdfa-s6 demo`` and ``demo --video`` share one pipeline (issue 25): the same test stage, in ``--precision``,
on the config's test split, and figures of that split. The heavy stages (data, training, plotting) are
replaced by stand-ins that record what they are given; the slow end-to-end demo runs are in test_commands."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rdfa_s6.cli import main
from rdfa_s6.config import load_config

SPLIT = "holdout"  # not "test": the figures used to hard-code it


class _Stop(Exception):
    pass


def _annotations(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = {f"v{i}": {"subset": SPLIT if i < 2 else "training", "duration": 10.0, "fps": 30.0,
                    "annotations": [{"segment": [1.0, 2.0], "label": "a", "label_id": 0}]} for i in range(4)}
    path.write_text(json.dumps({"database": db}))


@pytest.fixture
def stubbed(monkeypatch, tmp_path):
    """Stand-ins for the data stages, the trainer, the evaluation (recording ``precision``) and the plots."""
    import rdfa_s6.eval.report
    import rdfa_s6.infer.runner
    import rdfa_s6.report
    import rdfa_s6.train.loop
    import rdfa_s6.viz
    import rdfa_s6.viz.timeline
    from rdfa_s6.data import synth
    from rdfa_s6.video import extract as video_extract
    from rdfa_s6.video import synth as video_synth

    seen = {"precision": [], "timelines": [], "splits": []}
    cfg = load_config("demo", [f"data.test_split={SPLIT}", "train.epochs=1"])

    class Trainer:
        def __init__(self, cfg_, opts):
            self.cfg = cfg

        def request_stop(self, why):
            pass

        def run(self, progress=None):
            return SimpleNamespace(final=None, history=[], steps=0, model=SimpleNamespace(eval=lambda: "model"),
                                   config=cfg, data=None)

    def evaluate_split(model, cfg_, data, split, progress=None, precision="fp32"):
        seen["precision"].append(precision)
        seen["splits"].append(split)
        if seen.get("stop"):
            raise _Stop
        metrics = {"tiou_thresholds": [0.5], "mAP": [0.5], "average_mAP": 0.5, "per_class_AP": {"a": [0.5]},
                   "gt_policy": "actionformer"}
        return {"results": {"v0": [{"segment": [1.0, 2.0], "label": "a", "score": 0.9}]}}, metrics

    def fake_extract(paths, opts, progress=None):
        _annotations(Path(opts.out) / "annotations.json")
        return SimpleNamespace(video_seconds=1.0, seconds=1.0)

    def timeline(vid, gt, preds, duration, path):
        seen["timelines"].append(vid)
        return path

    monkeypatch.setattr(synth, "generate", lambda root, spec: _annotations(Path(root) / "annotations.json"))
    monkeypatch.setattr(video_synth, "generate_videos", lambda folder, spec: None)
    monkeypatch.setattr(video_synth, "load_ground_truth",
                        lambda folder: json.loads((Path(folder).parent / "data" / "annotations.json").read_text())
                        ["database"])
    monkeypatch.setattr(video_extract, "extract", fake_extract)
    monkeypatch.setattr(rdfa_s6.train.loop, "Trainer", Trainer)
    monkeypatch.setattr(rdfa_s6.infer.runner, "evaluate_split", evaluate_split)
    monkeypatch.setattr(rdfa_s6.eval.report, "format_table", lambda metrics: "table")
    monkeypatch.setattr(rdfa_s6.report, "write_report", lambda *a, **k: SimpleNamespace(path=tmp_path / "r.html"))
    for name in ("plot_training_curve", "plot_class_ap", "plot_error_breakdown"):
        monkeypatch.setattr(rdfa_s6.viz, name, lambda *a: a[-1])
    monkeypatch.setattr(rdfa_s6.viz.timeline, "plot_timeline", timeline)
    return seen


def test_demo_video_tests_in_the_requested_precision(stubbed, tmp_path):
    """The video demo used to test in fp32 whatever ``--precision`` said (its example.srt was auto)."""
    stubbed["stop"] = True
    with pytest.raises(_Stop):
        main(["demo", "--video", "--quick", "--out", str(tmp_path / "out"), "--precision", "bf16", "--no-progress"])
    assert stubbed["precision"] == ["bf16"]


def test_both_demos_share_the_test_stage_and_figure_the_test_split(stubbed, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--quick", "--out", str(tmp_path / "out"), "--precision", "fp32", "--no-progress"]) == 0
    assert stubbed["precision"] == ["fp32"] and stubbed["splits"] == [SPLIT]
    assert stubbed["timelines"] == ["v0", "v1"]  # the videos of data.test_split, not of a subset named "test"
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.startswith("# rdfa-s6 demo report") and "Synthetic data" in report
