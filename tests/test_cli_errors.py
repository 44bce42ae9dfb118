"""Bad input to every command gives one line on stderr naming the file, video and field, and exit status 2.

Each case builds a tiny valid dataset (7 videos, C=6, classes Jump/Throw) and a tiny untrained checkpoint,
breaks one thing and runs ``rdfa_s6.cli.main`` in process. Deliberate non-errors (warnings) are at the end:
segments after a video's duration (common in THUMOS-14: evaluation keeps them, training clips them to the
features, check-data lists them), reversed or unknown-label detections in a results file (scored or ignored
as ActivityNet's official code does, unless *no* detection can match).
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import pytest
import torch

from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.cli import main
from rdfa_s6.config import load_config
from rdfa_s6.models import build_detector

DIM = 6
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2"]
LABELS = {"0": "Jump", "1": "Throw"}


def _checkpoint(folder: Path, *overrides: str) -> Path:
    cfg = load_config("demo", TINY + [f"data.input_dim={DIM}", "data.num_classes=2", *overrides])
    save_checkpoint(folder, build_detector(cfg), cfg, meta={"label_names": LABELS})
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("ckpt")
    return SimpleNamespace(good=_checkpoint(base / "good"), wide=_checkpoint(base / "wide", "model.embed_dim=32"))


pytestmark = pytest.mark.usefixtures("one_thread")


class Ctx:
    """A fresh dataset in ``tmp/data`` and a copy of the checkpoint in ``tmp/ckpt``, with helpers that break
    them (each returns the Ctx, so that a case reads ``c.save(...).train()``) and build command lines."""

    def __init__(self, tmp: Path, checkpoints: SimpleNamespace) -> None:
        self.tmp, self.root, self.ckpt = tmp, tmp / "data", tmp / "ckpt"
        self.ann, self.feats, self.preds = self.root / "annotations.json", self.root / "features", tmp / "pred.json"
        self.feats.mkdir(parents=True)
        shutil.copytree(checkpoints.good, self.ckpt)
        self.wide = checkpoints.wide
        self.db: Dict[str, dict] = {}
        for subset, n in (("training", 4), ("validation", 1), ("test", 2)):
            for i in range(n):
                self.db[f"{subset}_{i}"] = {"subset": subset, "duration": 5.73, "fps": 30.0, "annotations": [
                    {"label": "Jump", "segment": [1.0, 2.0], "label_id": 0},
                    {"label": "Throw", "segment": [3.0, 4.0], "label_id": 1}]}
                self.save(f"{subset}_{i}", np.random.default_rng(i).standard_normal((40, DIM)))
        self.write()

    # ---- breaking things
    def write(self, text: Optional[str] = None) -> "Ctx":
        self.ann.write_text(text if text is not None else json.dumps({"database": self.db}))
        return self

    def edit(self, fn: Callable[[Dict[str, dict]], Any]) -> "Ctx":
        fn(self.db)
        return self.write()

    def edit_ann(self, video: str, **fields: Any) -> "Ctx":
        return self.edit(lambda db: db[video]["annotations"][0].update(fields))

    def save(self, video: str, array: Any, dtype: Any = np.float32) -> "Ctx":
        np.save(self.feats / f"{video}.npy", np.asarray(array, dtype=dtype))
        return self

    def put(self, path: Path, data: Union[str, bytes]) -> "Ctx":
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return self

    def remove(self, video: str) -> "Ctx":
        (self.feats / f"{video}.npy").unlink()
        return self

    def feature(self, video: str) -> str:
        return str(self.feats / f"{video}.npy")

    # ---- command lines
    def run(self, *argv: Any) -> list:
        return list(argv)

    def train(self, *extra: Any) -> list:
        return ["train", "demo", "--data-root", self.root, "--out", self.tmp / "run", "--no-progress", *TINY, *extra]

    def test(self, *extra: Any) -> list:
        return ["test", self.ckpt, "--data-root", self.root, "--no-progress", "--out", self.tmp / "out", *extra]

    def check(self, *extra: Any) -> list:
        return ["check-data", "demo", "--data-root", self.root, *extra]

    def infer(self, features: Any = None, *extra: Any) -> list:
        return ["infer", self.ckpt, features or self.feats / "test_0.npy", "--out", self.tmp / "d.json", *extra]

    def evaluate(self, results: Any, *extra: Any) -> list:
        self.preds.write_text(results if isinstance(results, str) else json.dumps({"results": results}))
        return ["evaluate", "--pred", self.preds, "--gt", self.ann, *extra]

    def visualize(self, *extra: Any) -> list:
        self.preds.write_text(json.dumps({"results": {"test_0": [DET]}}))
        return ["visualize", "--gt", self.ann, "--pred", self.preds, "--out", self.tmp / "fig", *extra]


def nan_at(row: int, value: float = np.nan) -> np.ndarray:
    array = np.zeros((40, DIM), np.float32)
    array[row, 1] = value
    return array


def pth(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def swap_names(db: Dict[str, dict]) -> None:
    for entry in db.values():
        for ann in entry["annotations"]:
            ann["label"] = {"Jump": "Throw", "Throw": "Jump"}[ann["label"]]


DET = {"segment": [1.0, 2.0], "label": "Jump", "score": 0.9}
FPS = ("--fps", "30")
#: name "command/what is wrong" -> (command line, strings the one stderr line must contain)
CASES: Dict[str, Callable[[Ctx], Tuple[list, List[str]]]] = {
    # ---- annotation files: train, test and check-data read them through the same validated parser
    "check-data/annotations-not-json": lambda c: (c.write('{"database": {').check(), [str(c.ann), "not valid JSON"]),
    "train/no-database": lambda c: (c.write('{"videos": {}}').train(), [str(c.ann), "'database'"]),
    "test/no-subset": lambda c: (c.edit(lambda db: db["test_0"].pop("subset")).test(),
                                 [str(c.ann), "'test_0'", "'subset'"]),
    "train/no-segment": lambda c: (c.edit(lambda db: db["training_1"]["annotations"][0].pop("segment")).train(),
                                   [str(c.ann), "'training_1'", "'segment'"]),
    "check-data/non-numeric-segment": lambda c: (c.edit_ann("training_1", segment=["a", 2]).check(),
                                                 [str(c.ann), "'training_1'", "'segment'", "expected a number"]),
    "train/reversed-segment": lambda c: (c.edit_ann("training_2", segment=[3, 2]).train(),
                                         [str(c.ann), "'training_2'", "'segment'", "before start"]),
    "test/nan-segment": lambda c: (c.edit_ann("test_1", segment=[float("nan"), 2]).test(),
                                   [str(c.ann), "'test_1'", "'segment'", "finite"]),
    "train/duration-zero": lambda c: (c.edit(lambda db: db["training_0"].update(duration=0)).train(),
                                      [str(c.ann), "'training_0'", "'duration'", "positive"]),
    "check-data/duration-not-a-number": lambda c: (c.edit(lambda db: db["test_0"].update(duration="long")).check(),
                                                   [str(c.ann), "'test_0'", "'duration'", "number"]),
    "train/label-with-two-ids": lambda c: (c.edit_ann("training_3", label_id=5).train(),
                                           [str(c.ann), "'training_3'", "'label_id'"]),
    "test/label-unknown-to-the-model": lambda c: (c.edit_ann("test_1", label="Spin", label_id=7).test(),
                                                  [str(c.ann), "'test_1'", "'label_id'", "num_classes=2"]),
    "test/labels-renamed-vs-the-model": lambda c: (c.edit(swap_names).test(),
                                                   [str(c.ann), "label_id 0", "'Throw'", "'Jump'", str(c.ckpt)]),
    "train/no-fps": lambda c: (c.edit(lambda db: db["training_2"].pop("fps")).train(),
                               [str(c.ann), "'training_2'", "'fps'"]),
    "train/empty-split": lambda c: (c.train("data.train_split=nope"), [str(c.ann), "'nope'", "training (4)"]),
    "check-data/empty-split": lambda c: (c.check("data.val_split=nope"), [str(c.ann), "'nope'", "empty split"]),
    "test/empty-split": lambda c: (c.test("--split", "nope"), [str(c.ann), "'nope'"]),
    # ---- feature files
    "train/missing-features": lambda c: (c.remove("training_1").train(),
                                         [c.feature("training_1"), "'training_1'", "not found"]),
    "test/missing-features": lambda c: (c.remove("test_1").test(), [c.feature("test_1"), "'test_1'", "not found"]),
    "check-data/missing-features": lambda c: (c.remove("validation_0").check(),
                                              [c.feature("validation_0"), "'validation_0'", "not found"]),
    "train/features-rank-3": lambda c: (c.save("training_2", np.zeros((2, 40, DIM))).train(),
                                        [c.feature("training_2"), "'training_2'", "[T, C]"]),
    "test/features-C-differs-from-the-model": lambda c: (c.save("test_0", np.zeros((40, DIM + 1))).test(),
                                                         [c.feature("test_0"), "'test_0'", "7 channels", "expected 6"]),
    "train/features-mixed-C": lambda c: (c.save("training_3", np.zeros((40, DIM + 2))).train(),
                                         [c.feature("training_3"), "'training_3'", "8 channels"]),
    "check-data/features-mixed-C-across-splits": lambda c: (
        c.save("test_0", np.zeros((40, 9))).save("test_1", np.zeros((40, 9))).save("validation_0", np.zeros((40, 9)))
        .check(), [c.feature("validation_0"), "'validation_0'", "9 channels", "expected 6"]),
    "train/features-int-dtype": lambda c: (c.save("training_0", np.zeros((40, DIM)), np.int64).train(),
                                           [c.feature("training_0"), "'training_0'", "int64"]),
    "check-data/features-nan": lambda c: (c.save("training_1", nan_at(7)).check(),
                                          [c.feature("training_1"), "'training_1'", "NaN", "step 7"]),
    "test/features-inf": lambda c: (c.save("test_1", nan_at(3, np.inf)).test(),
                                    [c.feature("test_1"), "'test_1'", "NaN or Inf"]),
    "infer/features-nan": lambda c: (c.save("test_0", nan_at(0)).infer(None, *FPS),
                                     [c.feature("test_0"), "'test_0'", "NaN"]),
    "train/features-nan-found-by-a-dataloader-worker": lambda c: (
        c.save("training_1", nan_at(5)).train("train.num_workers=1", "data.val_split=null"),
        [c.feature("training_1"), "'training_1'", "NaN"]),
    "test/features-zero-steps": lambda c: (c.save("test_0", np.zeros((0, DIM))).test(),
                                           [c.feature("test_0"), "'test_0'", "zero time steps"]),
    "check-data/features-zero-steps": lambda c: (c.save("training_0", np.zeros((0, DIM))).check(),
                                                 [c.feature("training_0"), "'training_0'", "zero time steps"]),
    # the file alone: in a folder with good files, the others are processed and it is named (test_hostile.py)
    "infer/features-zero-steps": lambda c: (c.save("test_1", np.zeros((0, DIM))).infer(c.feature("test_1"), *FPS),
                                            [c.feature("test_1"), "'test_1'", "zero time steps"]),
    "infer/features-truncated": lambda c: (
        c.put(c.tmp / "t.npy", Path(c.feature("test_0")).read_bytes()[:100]).infer(c.tmp / "t.npy", *FPS),
        [str(c.tmp / "t.npy"), "'t'", "cannot read"]),
    "infer/features-wrong-extension": lambda c: (c.put(c.tmp / "t.txt", "x").infer(c.tmp / "t.txt", *FPS),
                                                 [str(c.tmp / "t.txt"), ".npy"]),
    # ---- configs
    "train/unknown-config-key": lambda c: (c.train("train.epoch=3"), ["'train.epoch'", "'train.epochs'"]),
    "train/config-wrong-type": lambda c: (c.train("train.epochs=abc"), ["'train.epochs'", "expected int", "'abc'"]),
    "check-data/yaml-unknown-key": lambda c: (
        c.put(c.tmp / "c.yaml", "base: demo\nmodel:\n  embed_dimm: 3\n").run("check-data", c.tmp / "c.yaml",
                                                                             "--data-root", c.root),
        [str(c.tmp / "c.yaml"), "'model.embed_dimm'", "'model.embed_dim'"]),
    "test/override-outside-infer-and-eval": lambda c: (c.test("model.embed_dim=8"), ["model.embed_dim=8", "infer.*"]),
    "test/override-wrong-type": lambda c: (c.test("infer.nms_sigma=wide"), ["'infer.nms_sigma'", "expected float"]),
    # ---- checkpoints
    "test/weights-truncated": lambda c: (
        c.put(c.ckpt / "model.safetensors", (c.ckpt / "model.safetensors").read_bytes()[:300]).test(),
        [str(c.ckpt / "model.safetensors"), "truncated"]),
    "infer/config-truncated": lambda c: (c.put(c.ckpt / "config.json", '{"data": {').infer(None, *FPS),
                                         [str(c.ckpt / "config.json"), "not valid JSON"]),
    "infer/meta-not-an-object": lambda c: (c.put(c.ckpt / "meta.json", "[]").infer(None, *FPS),
                                           [str(c.ckpt / "meta.json"), "JSON object"]),
    "infer/meta-label-names-malformed": lambda c: (
        c.put(c.ckpt / "meta.json", '{"label_names": ["Jump"]}').infer(None, *FPS),
        [str(c.ckpt / "meta.json"), "'label_names'"]),
    "test/weights-of-another-preset": lambda c: (
        c.put(c.ckpt / "model.safetensors", (c.wide / "model.safetensors").read_bytes()).test(),
        [str(c.ckpt / "model.safetensors"), "shape mismatches", "(32, 6, 3)"]),
    "test/not-a-checkpoint-folder": lambda c: (["test", c.root, "--data-root", c.root],
                                               [str(c.root), "neither a checkpoint"]),
    "convert/not-a-torch-file": lambda c: (
        c.put(c.tmp / "x.pth", b"garbage").run("convert", c.tmp / "x.pth", c.tmp / "o"),
        [str(c.tmp / "x.pth"), "not a readable torch checkpoint"]),
    "convert/truncated": lambda c: (
        c.put(c.tmp / "x.pth", pth({"model_ema": {"a": torch.zeros(3)}})[:200]).run("convert", c.tmp / "x.pth",
                                                                                     c.tmp / "o"),
        [str(c.tmp / "x.pth"), "truncated"]),
    "convert/weights-of-another-model": lambda c: (
        c.put(c.tmp / "x.pth", pth({"model_ema": {"fc.weight": torch.zeros(3)}})).run(
            "convert", c.tmp / "x.pth", c.tmp / "o", "--preset", "demo"),
        [str(c.tmp / "x.pth"), "conv_1.weight", "fc.weight"]),
    # ---- results files and evaluation
    "evaluate/predictions-not-json": lambda c: (c.evaluate("{"), [str(c.preds), "not valid JSON"]),
    "evaluate/prediction-without-segment": lambda c: (c.evaluate({"test_0": [{"label": "Jump", "score": 1}]}),
                                                      [str(c.preds), "'test_0'", "'segment'"]),
    "evaluate/prediction-nan-score": lambda c: (
        c.evaluate('{"results": {"test_0": [{"segment": [1, 2], "label": "Jump", "score": NaN}]}}'),
        [str(c.preds), "'test_0'", "score", "finite"]),
    "evaluate/no-known-label": lambda c: (c.evaluate({"test_0": [{**DET, "label": "Zebra"}]}),
                                          [str(c.preds), "'label'", "Zebra", "Jump"]),
    "evaluate/no-video-of-the-subset": lambda c: (c.evaluate({"training_0": [DET]}),
                                                  [str(c.preds), "training_0", "'test'", str(c.ann)]),
    "evaluate/json-is-a-folder": lambda c: (c.evaluate({"test_0": [DET]}, "--json", c.tmp), ["--json", str(c.tmp)]),
    "visualize/gt-without-subset": lambda c: (c.edit(lambda db: db["test_1"].pop("subset")).visualize(),
                                              [str(c.ann), "test_1", "'subset'"]),
    "visualize/metrics-file-is-not-metrics": lambda c: (c.visualize("--metrics", c.ann), [str(c.ann), "per_class_AP"]),
    # ---- options
    "infer/fps-nan": lambda c: (c.infer(None, "--fps", "nan"), ["--fps", "nan"]),
    "infer/stride-negative": lambda c: (c.infer(None, *FPS, "--stride", "-4"), ["--stride", "-4"]),
    "infer/no-fps-anywhere": lambda c: (c.infer(), ["--fps", str(c.ckpt / "config.json"), "default_fps"]),
    "infer/out-is-a-folder": lambda c: (c.infer(None, *FPS, "--out", c.tmp), ["--out", str(c.tmp)]),
    "synth/min-len-zero": lambda c: (["synth", c.tmp / "s", "--min-len", "0"], ["--min-len"]),
    "synth/noise-nan": lambda c: (["synth", c.tmp / "s", "--noise", "nan"], ["--noise", "nan"]),
    "synth/no-videos": lambda c: (["synth", c.tmp / "s", "--train-videos", "0", "--val-videos", "0",
                                   "--test-videos", "0"], ["--train-videos"]),
    "synth/out-is-a-file": lambda c: (["synth", c.ann], [str(c.ann), "not a folder"]),
    "demo/out-is-not-a-demo-folder": lambda c: (["demo", "--out", c.root], [str(c.root), "not an earlier demo"]),
}


def run_cli(capsys, argv) -> Tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_status_2(name, tmp_path, checkpoints, capsys):
    argv, needles = CASES[name](Ctx(tmp_path, checkpoints))
    code, out, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}; stderr: {err}"
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rdfa-s6 {argv[0]}: error: "), lines[0]
    assert "Traceback" not in err + out and "Error:" not in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_unreadable_checkpoint_file(tmp_path, checkpoints, capsys, monkeypatch):
    """A file that exists but cannot be read (permissions; tests run as root, so simulated)."""
    c = Ctx(tmp_path, checkpoints)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "model.safetensors":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, _, err = run_cli(capsys, c.test())
    assert code == 2 and err.count("\n") == 1
    assert str(c.ckpt / "model.safetensors") in err and "Permission denied" in err


def test_there_are_enough_cases():
    assert len(CASES) >= 30 and {n.split("/")[0] for n in CASES} >= {
        "train", "test", "infer", "evaluate", "check-data", "convert", "visualize", "synth", "demo"}


# ---- deliberate warnings, not errors ---------------------------------------------------------------------
def test_segment_after_the_duration_is_a_warning_for_check_data(tmp_path, checkpoints, capsys, caplog):
    """Real annotations (THUMOS-14) have them: check-data lists them and still exits 0."""
    c = Ctx(tmp_path, checkpoints).edit_ann("training_1", segment=[5.0, 6.5])
    code, out, _ = run_cli(capsys, c.check())
    assert code == 0 and "training_1: 1 segment(s)" in out and "after their video's duration" in caplog.text


def test_reversed_and_unknown_label_detections_are_scored_as_the_official_code_does(tmp_path, checkpoints,
                                                                                     capsys, caplog):
    """ActivityNet's eval_detection.py scores reversed segments as they are (the shared THUMOS-14 eval cases
    hold hundreds) and the evaluator ignores unknown labels with a warning: status 0 while some detection can
    match."""
    c = Ctx(tmp_path, checkpoints)
    code, out, err = run_cli(capsys, c.evaluate({"test_0": [DET, {**DET, "segment": [3.0, 2.0]},
                                                            {**DET, "label": "Zebra"}]}))
    assert code == 0, err
    assert "Zebra" in caplog.text and "mAP(%)" in out


def test_train_out_is_a_file(tmp_path, checkpoints, capsys):
    c = Ctx(tmp_path, checkpoints)
    argv = c.train()
    argv[argv.index("--out") + 1] = c.ann
    assert run_cli(capsys, argv)[0] == 2


def test_invalid_yaml_is_one_line(tmp_path, checkpoints, capsys):
    c = Ctx(tmp_path, checkpoints)
    (tmp_path / "c.yaml").write_text("model: [1,\n")
    code, _, err = run_cli(capsys, ["check-data", tmp_path / "c.yaml", "--data-root", c.root])
    assert code == 2 and len(err.strip().splitlines()) == 1
