"""Hostile input (issue 21), the lead's classes: writes through planted symlinks, outputs that are inputs,
inputs that share a video id, results deleted behind the user's back, messages a user string could split or
forge, tracebacks for user-fixable OS errors and devices, and one bad video among good ones.

Every case runs the command in process (tests/_hostile.py) and checks the exit status, a single error line, no
traceback, and that every file that existed before is byte-identical after. The writers' classes (CSV formulas,
SRT/XML escaping, per-video names in export, the viewer) are in test_hostile_writers.py, the numbers' classes in
test_hostile_numbers.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _hostile import assert_refused, assert_unchanged, run_cli, snapshot

from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.config import load_config
from rdfa_s6.data.synth import SynthSpec, generate
from rdfa_s6.models import build_detector
from rdfa_s6.runlock import LOCK_FILE

pytestmark = pytest.mark.usefixtures("one_thread")

DATA_SPEC = SynthSpec(train_videos=2, val_videos=0, test_videos=2, num_classes=2, dim=16, min_len=40, max_len=48,
                      seed=3)
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64"]
TRAIN = ["train.epochs=1", "train.batch_size=2", "data.val_split=null", *TINY]
FPS = ["--fps", "30"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A tiny synthetic dataset and an untrained checkpoint for it (labels as the dataset names them)."""
    base = tmp_path_factory.mktemp("hostile")
    data = base / "data"
    generate(data, DATA_SPEC)
    names = {str(v["label_id"]): v["label"] for rec in json.loads((data / "annotations.json").read_text())[
        "database"].values() for v in rec["annotations"]}
    cfg = load_config("demo", TINY + [f"data.input_dim={DATA_SPEC.dim}", f"data.num_classes={DATA_SPEC.num_classes}"])
    ckpt = save_checkpoint(base / "ckpt", build_detector(cfg), cfg, meta={"label_names": names})
    feats = sorted((data / "features").glob("synth_test_*.npy"))
    return SimpleNamespace(data=data, ckpt=ckpt, feats=feats, ann=data / "annotations.json")


def _victim(tmp: Path) -> Path:
    victim = tmp / "thesis.tex"
    victim.write_text("\\section{Years of work}\n")
    return victim


# ---- 1. writes through symlinks --------------------------------------------------------------------------------
def _plant_lock(out: Path, victim: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.symlink(victim, out / LOCK_FILE)


@pytest.mark.parametrize("command", ["train", "extract", "demo", "convert"])
def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(command, tmp_path, world):
    victim, out = _victim(tmp_path), tmp_path / "out"
    _plant_lock(out, victim)
    before = snapshot(tmp_path)
    argv = {"train": ["train", "demo", "--data-root", world.data, "--out", out, "--no-progress", *TRAIN],
            "extract": ["extract", tmp_path / "none.mp4", "--out", out, "--backbone", "colour-motion"],
            "demo": ["demo", "--out", out, "--quick", "--no-progress"],
            "convert": ["convert", tmp_path / "official.pth", out]}[command]
    outcome = run_cli(argv)
    assert_refused(outcome, "symbolic link", LOCK_FILE, command=command)
    assert_unchanged(before, tmp_path)
    assert os.path.islink(out / LOCK_FILE)  # refused, not removed: it is the user's to look at


def test_a_planted_metrics_log_symlink_is_refused(tmp_path, world):
    """The metrics log is the one run file appended to in place: a link there is refused, never followed."""
    victim, out = _victim(tmp_path), tmp_path / "run"
    out.mkdir()
    os.symlink(victim, out / "metrics.jsonl")
    before = snapshot(tmp_path)
    outcome = run_cli(["train", "demo", "--data-root", world.data, "--out", out, "--no-progress", *TRAIN])
    assert_refused(outcome, "symbolic link", "metrics.jsonl", command="train")
    assert_unchanged(before, tmp_path)


def test_atomic_writes_replace_a_planted_link_never_its_target(tmp_path, world):
    """Every other file is written to a new temporary name and renamed: a link at the final name is replaced."""
    victim = _victim(tmp_path)
    os.symlink(victim, tmp_path / "d.json")
    before = snapshot(victim)
    outcome = run_cli(["infer", world.ckpt, world.feats[0], "--out", tmp_path / "d.json", *FPS, "--no-progress"])
    assert outcome.rc == 0, outcome.err
    assert_unchanged(before, victim)
    assert not (tmp_path / "d.json").is_symlink() and "results" in json.loads((tmp_path / "d.json").read_text())


# ---- 3. an output that is an input -----------------------------------------------------------------------------
def _link(kind: str, target: Path, at: Path) -> Path:
    if kind == "symlink":
        os.symlink(target, at)
    elif kind == "hardlink":
        os.link(target, at)
    else:  # a path through ..
        at = target.parent / ".." / target.parent.name / target.name
    return at


@pytest.mark.parametrize("kind", ["same", "dotdot", "symlink", "hardlink"])
def test_infer_refuses_to_write_over_its_input(kind, tmp_path, world):
    feats = tmp_path / "x.npy"
    feats.write_bytes(world.feats[0].read_bytes())
    out = feats if kind == "same" else _link(kind, feats, tmp_path / "out.npy")
    before = snapshot(tmp_path)
    assert_refused(run_cli(["infer", world.ckpt, feats, "--out", out, *FPS]), "--out", "INPUT", command="infer")
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("option", ["--out", "--csv", "--srt"])
def test_infer_refuses_to_write_over_its_model(option, tmp_path, world):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for f in world.ckpt.iterdir():
        (ckpt / f.name).write_bytes(f.read_bytes())
    before = snapshot(tmp_path)
    target = ckpt / ("config.json" if option != "--srt" else "meta.json")
    argv = ["infer", ckpt, world.feats[0], *FPS]
    argv += [option, target] if option == "--out" else ["--out", tmp_path / "d.json", option, target]
    if option == "--srt":  # a .json path is taken as a folder for subtitles: it exists as a file
        assert_refused(run_cli(argv), "--srt", command="infer")
    else:
        assert_refused(run_cli(argv), option, "CHECKPOINT", command="infer")
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("victim", ["--pred", "--gt"])
def test_evaluate_json_refuses_to_write_over_its_inputs(kind, victim, tmp_path, world):
    gt = tmp_path / "gt.json"
    gt.write_bytes(world.ann.read_bytes())
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"results": {"synth_test_0000": [
        {"segment": [1.0, 2.0], "label": json.loads(gt.read_text())["database"]["synth_test_0000"]["annotations"][0][
            "label"], "score": 0.5}]}}))
    target = {"--pred": pred, "--gt": gt}[victim]
    out = target if kind == "same" else _link(kind, target, tmp_path / "m.json")
    before = snapshot(tmp_path)
    outcome = run_cli(["evaluate", "--pred", pred, "--gt", gt, "--json", out])
    assert_refused(outcome, "--json", victim, command="evaluate")
    assert_unchanged(before, tmp_path)


def test_test_refuses_json_over_the_annotation_file(tmp_path, world):
    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations.json").write_bytes(world.ann.read_bytes())
    os.symlink(world.data / "features", data / "features")
    before = snapshot(tmp_path)
    outcome = run_cli(["test", world.ckpt, "--data-root", data, "--no-progress", "--out", tmp_path / "o",
                       "--json", data / "annotations.json"])
    assert_refused(outcome, "--json", "annotation file", command="test")
    assert_unchanged(before, tmp_path)


def test_convert_refuses_an_output_folder_that_would_replace_its_input(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    official = out / "model.safetensors"  # a .pth saved under this name, converted "in place"
    official.write_bytes(b"not really a checkpoint")
    before = snapshot(tmp_path)
    assert_refused(run_cli(["convert", official, out]), "out_dir", "checkpoint", command="convert")
    assert_unchanged(before, tmp_path)


# ---- 4. inputs that share a video id ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["two-folders", "two-extensions", "same-file-twice"])
def test_infer_refuses_two_inputs_with_one_video_id(layout, tmp_path, world):
    array = np.load(world.feats[0])
    if layout == "two-folders":
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
        np.save(tmp_path / "a" / "x.npy", array), np.save(tmp_path / "b" / "x.npy", array)
        inputs = [tmp_path / "a" / "x.npy", tmp_path / "b"]
    elif layout == "two-extensions":
        np.save(tmp_path / "y.npy", array)
        np.savez(tmp_path / "y.npz", feats=array)
        inputs = [tmp_path / "y.npy", tmp_path / "y.npz"]
    else:
        np.save(tmp_path / "z.npy", array)
        inputs = [tmp_path / "z.npy", tmp_path / "z.npy"]
    before = snapshot(tmp_path)
    outcome = run_cli(["infer", world.ckpt, *inputs, "--out", tmp_path / "d.json", *FPS])
    assert_refused(outcome, "share the video id", command="infer")
    assert_unchanged(before, tmp_path)
    assert not (tmp_path / "d.json").exists()


# ---- 5. results deleted behind the user's back -------------------------------------------------------------------
def _unfinished_run(tmp: Path, world) -> Path:
    run = tmp / "run"
    name = "epoch001_step0000002"
    for f in world.ckpt.iterdir():
        (run / "checkpoints" / name).mkdir(parents=True, exist_ok=True)
        (run / "checkpoints" / name / f.name).write_bytes(f.read_bytes())
    (run / "checkpoints" / "LATEST").write_text(name + "\n")
    return run


def test_test_keeps_results_of_an_unfinished_run_outside_the_pruned_checkpoints(tmp_path, world):
    run = _unfinished_run(tmp_path, world)
    outcome = run_cli(["test", run, "--data-root", world.data, "--no-progress"])
    assert outcome.rc == 0, outcome.err
    kept = run / "tests" / "epoch001_step0000002"
    assert (kept / "results_test.json").is_file() and (kept / "metrics_test.json").is_file()
    assert not list((run / "checkpoints").rglob("results_*.json"))
    assert str(kept / "results_test.json") in outcome.out


def test_test_and_infer_run_beside_a_training_that_holds_the_run(tmp_path, world):
    """A live training holds the run folder (its lock); testing and inferring on the run only read its
    checkpoints and write elsewhere, so they work beside it and leave its checkpoints as they were."""
    run = _unfinished_run(tmp_path, world)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom rdfa_s6.runlock import hold_folder\n"
        f"with hold_folder({str(run)!r}, 'rdfa-s6 train (test holder)'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run / "checkpoints")
        outcome = run_cli(["test", run, "--data-root", world.data, "--no-progress"])
        assert outcome.rc == 0, outcome.err
        outcome = run_cli(["infer", run, world.feats[0], "--out", tmp_path / "d.json", *FPS, "--no-progress"])
        assert outcome.rc == 0, outcome.err
        assert_unchanged(before, run / "checkpoints")
    finally:
        holder.kill()
        holder.wait()


# ---- 7. messages that a user string could split or forge; user-fixable errors as one line ------------------------
def test_a_newline_in_a_file_name_cannot_forge_an_error_line(tmp_path, world):
    name = tmp_path / "a\nrdfa-s6 infer: error: forged.txt"
    name.write_text("x")
    outcome = run_cli(["infer", world.ckpt, name, "--out", tmp_path / "d.json", *FPS])
    line = assert_refused(outcome, "\\n", command="infer")
    assert line.count(": error: ") == 2  # the forged text stays inside the one escaped line


def test_a_huge_video_id_is_shortened_in_messages(tmp_path, world):
    name = tmp_path / ("v" * 200 + ".txt")
    name.write_text("x")
    line = assert_refused(run_cli(["infer", world.ckpt, name, *FPS]), "…", command="infer")
    assert len(line) < 400


@pytest.mark.parametrize("command", ["train", "test", "infer"])
@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps", "garbage", "cpu:x"])
def test_a_device_this_machine_lacks_is_one_line(command, device, tmp_path, world):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = {"train": ["train", "demo", "--data-root", world.data, "--out", tmp_path / "run", *TRAIN],
            "test": ["test", world.ckpt, "--data-root", world.data, "--out", tmp_path / "o"],
            "infer": ["infer", world.ckpt, world.feats[0], "--out", tmp_path / "d.json", *FPS]}[command]
    before = snapshot(tmp_path)
    assert_refused(run_cli([*argv, "--device", device]), "--device", device, command=command)
    assert_unchanged(before, tmp_path)


def test_permission_denied_while_writing_is_one_line(tmp_path, world, monkeypatch):
    """An unwritable folder (EACCES; tests run as root, so the refusal is simulated where the write happens)."""
    import rdfa_s6.atomic as atomic

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(kwargs.get("dir", "?")))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    outcome = run_cli(["infer", world.ckpt, world.feats[0], "--out", tmp_path / "d.json", *FPS, "--no-progress"])
    assert_refused(outcome, "permission denied", str(tmp_path), command="infer")


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, world, monkeypatch):
    """os.access says no (as it does for a user without write permission): refused before the model loads."""
    import rdfa_s6.outputs as outputs

    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if Path(p) == tmp_path / "ro" else real(p, mode))
    (tmp_path / "ro").mkdir()
    for argv in (["infer", world.ckpt, world.feats[0], "--out", tmp_path / "ro" / "d.json", *FPS],
                 ["test", world.ckpt, "--data-root", world.data, "--out", tmp_path / "ro"],
                 ["evaluate", "--pred", tmp_path / "p.json", "--gt", world.ann, "--json", tmp_path / "ro" / "m.json"]):
        assert_refused(run_cli(argv), "permission denied", str(tmp_path / "ro"), command=argv[0])


# ---- 9. one bad video among good ones ----------------------------------------------------------------------------
def test_infer_processes_the_good_inputs_and_names_the_bad_one(tmp_path, world):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in world.feats:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.npy").write_bytes(world.feats[0].read_bytes()[:100])  # truncated
    outcome = run_cli(["infer", world.ckpt, folder, "--out", tmp_path / "d.json", *FPS, "--no-progress"])
    assert outcome.rc == 2
    assert "Traceback" not in outcome.err
    results = json.loads((tmp_path / "d.json").read_text())["results"]
    assert sorted(results) == sorted(f.stem for f in world.feats)
    failed = [ln for ln in outcome.err_lines if ": failed: " in ln]
    assert len(failed) == 1 and "broken" in failed[0], outcome.err
    assert "1 of 3 inputs failed" in outcome.err


def test_infer_with_only_bad_inputs_writes_nothing(tmp_path, world):
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    outcome = run_cli(["infer", world.ckpt, tmp_path / "broken.npy", "--out", tmp_path / "d.json", *FPS])
    assert_refused(outcome, "broken", command="infer")
    assert not (tmp_path / "d.json").exists()


def test_infer_refuses_feature_options_for_video_inputs_only(tmp_path, world):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: refused before")
    for option in (["--fps", "25"], ["--stride", "8"], ["--window", "16"]):
        outcome = run_cli(["infer", world.ckpt, video, "--out", tmp_path / "d.json", *option])
        assert_refused(outcome, option[0], "only for feature files", command="infer")


def test_swapped_infer_arguments_say_which_is_the_model(tmp_path, world):
    outcome = run_cli(["infer", world.feats[0], world.ckpt, "--out", tmp_path / "d.json", *FPS])
    assert_refused(outcome, "first argument must be the checkpoint", command="infer")


def test_a_checkpoint_pruned_while_loading_is_looked_up_again(tmp_path, world, monkeypatch):
    """Training publishes a newer checkpoint and prunes the one being read: the loader finds the newer one."""
    import shutil

    import rdfa_s6.api as api

    run = _unfinished_run(tmp_path, world)
    newer = run / "checkpoints" / "epoch002_step0000004"
    shutil.copytree(run / "checkpoints" / "epoch001_step0000002", newer)
    real, calls = api.load_detector, []

    def racing(model_dir, **kwargs):
        calls.append(Path(model_dir).name)
        if len(calls) == 1:  # the trainer publishes and prunes right now
            (run / "checkpoints" / "LATEST").write_text(newer.name + "\n")
            shutil.rmtree(model_dir)
        return real(model_dir, **kwargs)

    monkeypatch.setattr(api, "load_detector", racing)
    det = api.Detector.from_pretrained(run)
    assert calls == ["epoch001_step0000002", "epoch002_step0000004"] and det.source == newer


def test_synth_replaces_planted_links_never_their_targets(tmp_path):
    victim = _victim(tmp_path)
    (tmp_path / "s" / "features").mkdir(parents=True)
    os.symlink(victim, tmp_path / "s" / "features" / "synth_training_0000.npy")
    os.symlink(victim, tmp_path / "s" / "annotations.json")
    before = snapshot(victim)
    outcome = run_cli(["synth", tmp_path / "s", "--train-videos", "1", "--val-videos", "0", "--test-videos", "0"])
    assert outcome.rc == 0, outcome.err
    assert_unchanged(before, victim)
    assert np.load(tmp_path / "s" / "features" / "synth_training_0000.npy").ndim == 2
