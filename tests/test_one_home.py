"""One source for every rule (issue 25): each rule is imported from its one home, and the source tree holds no
second definition of it (docs/contributing.md, "Where each rule lives")."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rdfa_s6"


def _definitions(pattern: str):
    """``file:line`` of every line of the package source matching ``pattern`` (a regular expression)."""
    rx = re.compile(pattern)
    return [f"{p.relative_to(SRC)}:{i}" for p in sorted(SRC.rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if rx.search(line)]


@pytest.mark.parametrize("home,pattern", [
    ("precision.py", r"^\s*(TRAIN_)?PRECISIONS\s*[:=]"),            # the precision choices
    ("precision.py", r"^def resolve_precision\b"),                   # the auto rule
    ("cpuinfo.py", r"/proc/cpuinfo\""),                               # the CPU-flag reader
    ("video/decode.py", r"^\s*VIDEO_EXTENSIONS\s*[:=]"),              # the video file extensions
    ("device.py", r"^def resolve_device\b"),                         # the device rule
    ("filenames.py", r"^def file_stems\b"),                          # the file-name sanitiser
    ("data/paths.py", r"^def under_root\b|Path\(data_root\) / (path|value)"),  # paths relative to --data-root
])
def test_one_definition(home, pattern):
    found = _definitions(pattern)
    assert [f.split(":")[0] for f in found] == [home] * len(found) and found, found


def test_the_homes_export_them():
    from rdfa_s6.cpuinfo import cpu_flags, cpu_signature  # noqa: F401
    from rdfa_s6.precision import PRECISIONS, TRAIN_PRECISIONS, autocast_dtype, resolve_precision
    from rdfa_s6.video.decode import VIDEO_EXTENSIONS

    assert PRECISIONS == ("auto", "fp32", "bf16") and TRAIN_PRECISIONS == ("fp32", "bf16", "fp16")
    assert autocast_dtype("fp32") is None and callable(resolve_precision)
    assert {".mp4", ".webm", ".ogv", ".mkv", ".avi"} <= set(VIDEO_EXTENSIONS)
    assert len(set(VIDEO_EXTENSIONS)) == len(VIDEO_EXTENSIONS)


def test_users_import_the_one_definition():
    from rdfa_s6 import precision
    from rdfa_s6.report import data as report_data
    from rdfa_s6.ssm import native
    from rdfa_s6.train import options
    from rdfa_s6.video import decode, extract

    assert report_data.VIDEO_EXTENSIONS is decode.VIDEO_EXTENSIONS
    assert extract.resolve_precision is precision.resolve_precision
    assert options.TRAIN_PRECISIONS is precision.TRAIN_PRECISIONS
    assert native._cpu_signature.__module__ == "rdfa_s6.cpuinfo"


def test_the_cli_reads_the_precision_choices():
    from rdfa_s6.cli import build_parser
    from rdfa_s6.precision import EXTRACT_PRECISIONS, PRECISIONS, TRAIN_CHOICES

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices

    def choices(command):
        return tuple(next(a for a in sub[command]._actions if a.dest == "precision").choices)

    assert choices("train") == TRAIN_CHOICES  # auto and the training precisions
    assert choices("extract") == EXTRACT_PRECISIONS  # the forward precisions and fp16 autocast of the backbone
    for command in ("infer", "test", "demo", "watch"):
        assert choices(command) == PRECISIONS, command


def test_a_segment_after_the_video_is_checked_once_and_warned_about_once_per_run(tmp_path, caplog):
    """The loader, the training set and check-data each had their own check; training warned twice."""
    import json

    from _tiny_training import TINY_OVERRIDES, TINY_SPEC

    from rdfa_s6.config import load_config
    from rdfa_s6.data.synth import generate
    from rdfa_s6.train.loop import Trainer, TrainOptions

    generate(tmp_path / "data", TINY_SPEC)
    path = tmp_path / "data" / "annotations.json"
    ann = json.loads(path.read_text())
    entry = next(e for e in ann["database"].values() if e["subset"] == "training" and e["annotations"])
    entry["annotations"][0]["segment"][1] = entry["duration"] + 5.0
    path.write_text(json.dumps(ann))
    with caplog.at_level("WARNING"):
        Trainer(load_config("demo", TINY_OVERRIDES), TrainOptions(out_dir=tmp_path / "run",
                                                                  data_root=tmp_path / "data", progress=False))
    warned = [r.getMessage() for r in caplog.records if "after" in r.getMessage() and "duration" in r.getMessage()]
    assert len(warned) == 1, warned
    assert _definitions(r"segments\[:, 1\] > .*duration|\.end > duration") == []
