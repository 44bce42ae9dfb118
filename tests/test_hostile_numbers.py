"""Hostile numbers and names (issue 21): NaN, infinities, out-of-range values and huge counts in config keys and
command-line options, garbage ``checkpoints/LATEST`` files, and file names that are not UTF-8.

Every refusal is exit status 2 with one line naming the key or option, no traceback, and every file that existed
before is byte-identical after (``tests/_hostile.py``). The config part walks the schema: every numeric field has a
range in ``rdfa_s6.config.ranges.RANGES``, and a NaN or infinite override of each float field is refused by
``load_config`` naming the key.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Sequence

import numpy as np
import pytest
from _hostile import assert_refused, assert_unchanged, run_cli, snapshot

from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.cli import main
from rdfa_s6.commands._common import MAX_TIOU, parse_tiou
from rdfa_s6.config import list_presets, load_config
from rdfa_s6.config.ranges import RANGES, numeric_fields
from rdfa_s6.errors import ConfigError, DataError, UserError
from rdfa_s6.models import build_detector

pytestmark = pytest.mark.usefixtures("one_thread")

DIM = 6
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", f"data.input_dim={DIM}",
        "data.num_classes=2"]
#: a file name that is not UTF-8 (Python gives it as a lone surrogate)
BAD = os.fsdecode(b"bad\xff")


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    cfg = load_config("demo", TINY)
    save_checkpoint(folder, build_detector(cfg), cfg, meta={"label_names": {"0": "Jump", "1": "Throw"}})
    return folder


@pytest.fixture
def w(tmp_path, ckpt) -> SimpleNamespace:
    """A tiny dataset (annotations + 3 feature files), a results file and the checkpoint's path."""
    root = tmp_path / "data"
    (root / "features").mkdir(parents=True)
    db = {}
    for i, subset in enumerate(("training", "validation", "test")):
        db[f"v{i}"] = {"subset": subset, "duration": 5.73, "fps": 30.0,
                       "annotations": [{"label": "Jump", "segment": [1.0, 2.0], "label_id": 0}]}
        np.save(root / "features" / f"v{i}.npy", np.random.default_rng(i).standard_normal((40, DIM)).astype("f4"))
    (root / "annotations.json").write_text(json.dumps({"database": db}))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"results": {"v2": [{"segment": [1.0, 2.0], "label": "Jump", "score": 0.9}]}}))
    return SimpleNamespace(tmp=tmp_path, root=root, ann=root / "annotations.json", pred=pred, ckpt=ckpt,
                           feat=root / "features" / "v2.npy")


def refused(argv: Sequence[Any], *needles: str, roots: Sequence[Path] = ()) -> str:
    before = snapshot(*roots)
    line = assert_refused(run_cli(argv), *needles)
    assert_unchanged(before, *roots)
    return line


# -------------------------------------------------------------------------------- config: the range table
def _leaf_override(key: str, hint: Any, value: str) -> str:
    """``key=...`` that puts ``value`` (text) into the first number of the key's default (a list keeps its shape)."""
    default = load_config("thumos14")
    for part in key.split("."):
        default = getattr(default, part)
    if isinstance(default, list):
        text = json.dumps(default or [0])
        first = next(i for i, ch in enumerate(text) if ch.isdigit() or ch == "-")
        end = first
        while end < len(text) and text[end] not in ",]":
            end += 1
        return f"{key}={text[:first]}{value}{text[end:]}"
    return f"{key}={value}"


def _is_float(hint: Any) -> bool:
    return hint is float or any(_is_float(a) for a in typing.get_args(hint))


def test_every_numeric_config_key_has_a_range():
    keys = dict(numeric_fields())
    assert set(keys) == set(RANGES), (sorted(set(keys) - set(RANGES)), sorted(set(RANGES) - set(keys)))
    for key, valid in RANGES.items():
        assert math.isfinite(valid.lo) and math.isfinite(valid.hi) and valid.lo <= valid.hi, key


@pytest.mark.parametrize("key", [k for k, h in numeric_fields() if _is_float(h)])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_of_every_float_key_are_refused_naming_it(key, value):
    hint = dict(numeric_fields())[key]
    with pytest.raises(ConfigError, match=rf"config key '{key}(\[0\])*': must be a finite number in "):
        load_config("thumos14", [_leaf_override(key, hint, value)])


@pytest.mark.parametrize("key", sorted(RANGES))
def test_a_value_beyond_the_range_of_every_key_is_refused_naming_it(key):
    hint = dict(numeric_fields())[key]
    valid = RANGES[key]
    beyond = valid.hi * 2 + 1 if _is_float(hint) else int(valid.hi) + 1
    with pytest.raises(ConfigError, match=rf"config key '{key}(\[0\])*': must be in "):
        load_config("thumos14", [_leaf_override(key, hint, repr(beyond))])


def test_the_presets_hold_values_within_range():
    for name in list_presets():
        load_config(name)


@pytest.mark.parametrize("override", ["train.lr=nan", "train.lr=inf", "infer.max_seg_num=-1", "infer.nms_sigma=nan",
                                      "infer.iou_threshold=inf", "train.seed=" + "9" * 400])
def test_bad_config_values_are_refused_by_every_command_that_takes_overrides(w, override):
    key = override.split("=")[0]
    roots = [w.tmp]
    refused(["train", "demo", "--data-root", w.root, "--out", w.tmp / "run", "--no-progress", override], key,
            roots=roots)
    assert not (w.tmp / "run").exists()
    refused(["check-data", "demo", "--data-root", w.root, override], key, roots=roots)
    fake = w.tmp / "official.pth"
    fake.write_bytes(b"not read: the config is checked first")
    refused(["convert", fake, w.tmp / "converted", override], key, roots=roots)
    if key.startswith("infer."):  # test takes infer.* and eval.* overrides only
        refused(["test", w.ckpt, "--data-root", w.root, "--out", w.tmp / "t", "--no-progress", override], key,
                roots=roots + [w.ckpt])


# ------------------------------------------------------------------------------------------------- --tiou
@pytest.mark.parametrize("text, needle", [
    ("0.3:inf:0.1", "thresholds in (0, 1]"), ("nan", "thresholds in (0, 1]"), ("0.5,nan", "got nan"),
    ("0,0.5", "got 0"), ("1.5", "got 1.5"), ("-0.5:0.5:0.1", "(0, 1]"), ("0.3:0.7:inf", "finite step"),
    ("0.3:0.7:nan", "finite step"), ("1e-9:1:1e-9", f"more than {MAX_TIOU} thresholds"),
    (",".join(["0.5"] * (MAX_TIOU + 1)), f"at most {MAX_TIOU}"),
])
def test_tiou_refusals(w, text, needle):
    with pytest.raises(UserError, match=r"^--tiou"):
        parse_tiou(text)
    roots = [w.tmp]
    refused(["evaluate", "--pred", w.pred, "--gt", w.ann, f"--tiou={text}"], "--tiou", needle, roots=roots)
    refused(["view", "--pred", w.pred, "--gt", w.ann, "--out", w.tmp / "v.html", f"--tiou={text}"], "--tiou", needle,
            roots=roots)
    refused(["visualize", "--pred", w.pred, "--gt", w.ann, "--out", w.tmp / "fig", f"--tiou={text}"],
            "--tiou", needle, roots=roots)
    assert not (w.tmp / "v.html").exists() and not (w.tmp / "fig").exists()


def test_in_range_bounds():
    from rdfa_s6.commands._common import in_range

    in_range(None, "--x", 0, 1)
    for ok in (0, 0.5, 1, 1.0):
        in_range(ok, "--x", 0, 1)
    for bad in (-1e-300, 1.0000001, math.nan, math.inf, -math.inf, 10**400):
        with pytest.raises(UserError, match=r"^--x: expected a number in \[0, 1\], got "):
            in_range(bad, "--x", 0, 1)
    with pytest.raises(UserError, match=r"in \(0, 1\], got 0"):
        in_range(0, "--x", 0, 1, lo_open=True)


def test_tiou_still_parses_the_official_thresholds():
    assert parse_tiou("0.5:0.95:0.05")[-1] == 0.95 and len(parse_tiou("0.5:0.95:0.05")) == 10
    assert parse_tiou("0.3,0.5,1") == [0.3, 0.5, 1.0]


# ------------------------------------------------------------------------------- numeric command options
def _cases(w) -> List[tuple]:
    out = w.tmp / "o"
    infer = ["infer", w.ckpt, w.feat, "--out", w.tmp / "d.json"]
    extract = ["extract", w.tmp / "none.mp4", "--out", out, "--backbone", "colour-motion", "--random-init"]
    ev = ["evaluate", "--pred", w.pred, "--gt", w.ann]
    view = ["view", "--pred", w.pred, "--out", w.tmp / "v.html"]
    viz = ["visualize", "--pred", w.pred, "--out", out]
    export = ["export", w.pred, "--format", "csv", "--out", w.tmp / "e.csv"]
    train = ["train", "demo", "--data-root", w.root, "--out", out, "--no-progress"]
    watch = ["watch", w.tmp / "chunks", "--model", w.ckpt, "--out", w.tmp / "w.jsonl"]
    imp = ["import", w.pred, "--from", "activitynet", "--out", w.tmp / "i.json"]
    return [
        (watch + ["--timeout", "nan"], "--timeout"), (watch + ["--timeout", "0"], "--timeout"),
        (watch + ["--window-steps", "0"], "--window-steps"), (watch + ["--hop-steps", str(10**9)], "--hop-steps"),
        (watch + ["--min-score", "inf"], "--min-score"), (watch + ["--fps", "nan"], "--fps"),
        (watch + ["--stride", "0"], "--stride"), (watch + ["--window", "inf"], "--window"),
        (watch + ["--batch-size", "0"], "--batch-size"),
        (imp + ["--fps", "inf"], "--fps"), (imp + ["--stride", "0"], "--stride"), (imp + ["--window", "0"], "--window"),
        (imp + ["--window", "nan"], "--window"), (imp + ["--seed", "-1"], "--seed"),
        (infer + ["--fps", "1e-320"], "--fps"), (infer + ["--fps", "nan"], "--fps"),
        (infer + ["--fps", "inf"], "--fps"), (infer + ["--fps", "30", "--stride", "1e308"], "--stride"),
        (infer + ["--fps", "30", "--stride", "0"], "--stride"),
        (infer + ["--fps", "30", "--window", "inf"], "--window"),
        (infer + ["--fps", "30", "--window", "-1"], "--window"),
        (infer + ["--fps", "30", "--min-score", "nan"], "--min-score"),
        (infer + ["--fps", "30", "--cue-min-score", "inf"], "--cue-min-score"),
        (infer + ["--fps", "30", "--cues", "-1"], "--cues"),
        (infer + ["--fps", "30", "--batch-size", "1000000000"], "--batch-size"),
        (extract + ["--fps", "inf"], "--fps"), (extract + ["--fps", "1e6"], "--fps"),
        (extract + ["--fps", "nan"], "--fps"), (extract + ["--fps", "0"], "--fps"),
        (extract + ["--stride", "0"], "--stride"), (extract + ["--window", "100000"], "--window"),
        (extract + ["--batch-size", "0"], "--batch-size"), (extract + ["--workers", "1000"], "--workers"),
        (ev + ["--error-tiou", "inf"], "--error-tiou"), (ev + ["--error-tiou", "nan"], "--error-tiou"),
        (view + ["--threshold", "inf"], "--threshold"), (view + ["--threshold", "nan"], "--threshold"),
        (view + ["--error-tiou", "0"], "--error-tiou"),
        (viz + ["--tiou", "nan"], "--tiou"), (viz + ["--num-videos", str(10**9)], "--num-videos"),
        (viz + ["--top-k", "0"], "--top-k"),
        (export + ["--min-score", "nan"], "--min-score"), (export + ["--min-score", "inf"], "--min-score"),
        (export + ["--fps", "1e-320"], "--fps"), (export + ["--fps", "inf"], "--fps"),
        (["synth", out, "--noise", "inf"], "--noise"), (["synth", out, "--noise", "nan"], "--noise"),
        (["synth", out, "--train-videos", str(10**9)], "--train-videos"), (["synth", out, "--seed", "-1"], "--seed"),
        (["synth", out, "--dim", str(10**6)], "--dim"), (["synth", out, "--max-len", str(10**9)], "--max-len"),
        (["demo", "--out", out, "--seed", "-1"], "--seed"), (["demo", "--out", out, "--seed", str(2**40)], "--seed"),
        (["check-data", "demo", "--data-root", w.root, "--show", "-1"], "--show"),
        (train + ["--max-skipped", str(10**7)], "--max-skipped"), (train + ["--log-every", "0"], "--log-every"),
        (train + ["--checkpoint-every", "-1"], "--checkpoint-every"),
        (["bench", "--length", str(10**9)], "--length"), (["bench", "--state", "0"], "--state"),
    ]


def test_numeric_options_out_of_range_are_refused_naming_the_option(w):
    roots = [w.tmp, w.ckpt]
    for argv, option in _cases(w):
        line = refused(argv, option, roots=roots)
        assert " in [" in line or " in (" in line, line  # the message states the range
    assert not (w.tmp / "o").exists() and not (w.tmp / "d.json").exists() and not (w.tmp / "e.csv").exists()
    assert not (w.tmp / "w.jsonl").exists() and not (w.tmp / "i.json").exists()


# ------------------------------------------------------------------------- the library keeps times finite
def test_the_api_refuses_times_that_would_not_be_finite(ckpt):
    from rdfa_s6.api import Detection, Detector
    from rdfa_s6.infer.results import write_results_csv, write_results_json

    det = Detector.from_pretrained(ckpt, precision="fp32")
    feats = np.zeros((40, DIM), np.float32)
    for fps, stride in ((1e-320, None), (1.0, 1e308)):
        with pytest.raises(UserError, match=r"video 'clip': .* not a finite number"):
            det.predict(feats, fps=fps, stride=stride, video_id="clip")
    assert all(math.isfinite(x) for d in det.predict(feats, fps=30.0) for x in (d.start, d.end, d.score))
    bad = {"v\n1": [Detection(float("inf"), float("inf"), "Jump", 0.5)]}
    for writer in (write_results_json, write_results_csv):
        with pytest.raises(DataError, match=r"video 'v\\n1': a detection holds a non-finite number"):
            writer(Path("/nonexistent/never-written"), bad)


# ----------------------------------------------------------------------------------- checkpoints/LATEST
def _run_folder(w, latest: bytes) -> Path:
    run = w.tmp / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "LATEST").write_bytes(latest)
    return run


@pytest.mark.parametrize("latest, needle", [
    (b"\xff\xfe\x00garbage\n", "not UTF-8"), (b"../../somewhere\n", "'../../somewhere'"), (b"a/b\n", "'a/b'"),
    (b"x" * 5000, "expected the name of a checkpoint folder"), (b"bad\x1b[2Jname", "\\x1b"),
])
def test_a_garbage_latest_is_one_line_naming_the_file(w, latest, needle):
    run = _run_folder(w, latest)
    roots = [w.tmp, w.ckpt]
    refused(["test", run, "--data-root", w.root, "--no-progress"], "LATEST", needle, roots=roots)
    refused(["infer", run, w.feat, "--fps", "30", "--out", w.tmp / "d.json"], "LATEST", needle, roots=roots)
    refused(["train", "demo", "--data-root", w.root, "--out", run, "--resume", "--no-progress", *TINY,
             "train.batch_size=1"], "LATEST", needle, roots=roots)


def test_latest_naming_a_folder_outside_checkpoints_is_not_followed(w):
    outside = w.tmp / "elsewhere"
    save_checkpoint(outside, build_detector(load_config("demo", TINY)), load_config("demo", TINY),
                    meta={"label_names": {"0": "Jump", "1": "Throw"}})
    run = _run_folder(w, b"../../elsewhere\n")
    refused(["infer", run, w.feat, "--fps", "30", "--out", w.tmp / "d.json"], "LATEST", roots=[w.tmp])
    (run / "checkpoints" / "LATEST").write_bytes(b"link\n")
    (run / "checkpoints" / "link").symlink_to(outside)
    refused(["infer", run, w.feat, "--fps", "30", "--out", w.tmp / "d.json"], "LATEST", "symbolic link",
            roots=[w.tmp])
    assert not (w.tmp / "d.json").exists()


# ------------------------------------------------------------------------------ names that are not UTF-8
def run_strict(argv: Sequence[Any]) -> SimpleNamespace:
    """``run_cli`` on streams that encode as a UTF-8 terminal does (strict): printing a lone surrogate raises."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in range(2))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([os.fspath(a) for a in argv])
        except SystemExit as exit_:
            rc = int(exit_.code or 0)
    return SimpleNamespace(rc=rc, out=out.buffer.getvalue().decode(), err=err.buffer.getvalue().decode())


def test_a_feature_file_not_named_in_utf8_is_refused_by_infer_naming_it(w):
    bad = w.tmp / f"{BAD}.npy"
    np.save(bad, np.zeros((40, DIM), np.float32))
    before = snapshot(w.tmp)
    outcome = run_strict(["infer", w.ckpt, bad, "--fps", "30", "--out", w.tmp / "d.json"])
    assert outcome.rc == 2 and len(outcome.err.splitlines()) == 1, outcome.err
    assert "video id 'bad\\udcff'" in outcome.err and "not UTF-8" in outcome.err
    assert_unchanged(before, w.tmp)
    assert not (w.tmp / "d.json").exists()


def test_a_video_file_not_named_in_utf8_is_refused_by_extract(w):
    from _video_helpers import write_video

    folder = w.tmp / "videos"
    folder.mkdir()
    write_video(folder / f"{BAD}.mp4", 8)
    outcome = run_strict(["extract", folder, "--out", w.tmp / "x", "--backbone", "colour-motion", "--workers", "0",
                          "--no-progress", "--device", "cpu"])
    assert outcome.rc == 2 and "video id 'bad\\udcff'" in outcome.err and len(outcome.err.splitlines()) == 1


def test_paths_not_in_utf8_are_printed_escaped(w):
    out = w.tmp / f"synth{BAD}"
    outcome = run_strict(["synth", out, "--train-videos", "2", "--val-videos", "0", "--test-videos", "1"])
    assert outcome.rc == 0 and "synth" + "bad\\udcff" in outcome.out, outcome.err
    outcome = run_strict(["check-data", "demo", "--data-root", out, "data.val_split=null"])
    assert outcome.rc == 0 and "bad\\udcff" in outcome.out, outcome.err
    pred = w.tmp / f"{BAD}.json"
    pred.write_bytes(w.pred.read_bytes())
    outcome = run_strict(["evaluate", "--pred", pred, "--gt", w.ann, "--json", w.tmp / f"m{BAD}.json"])
    assert outcome.rc == 0 and "mbad\\udcff.json" in outcome.out, outcome.err
