"""The format readers (rdfa_s6.formats): one reader per file format, one error style
(``<what> <file>: video '<id>', <item>, field '<name>': <problem>``, one line), no torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from rdfa_s6.errors import DataError
from rdfa_s6.formats.annotations import read_annotations, video_durations
from rdfa_s6.formats.jsonfile import parse_number, parse_segment, where
from rdfa_s6.formats.meta import id_names, label_names, read_meta_file
from rdfa_s6.formats.results import read_results
from rdfa_s6.formats.scores import load_external_scores

GOOD_ANN = {"database": {"v1": {"subset": "test", "duration": 20.0, "fps": 30.0,
                                "annotations": [{"label": "Jump", "segment": [1.0, 2.0], "label_id": 0}]}}}
GOOD_RESULTS = {"results": {"v1": [{"segment": [1.0, 2.0], "label": "Jump", "score": 0.5}]}}

#: reader, the noun its messages start with, a valid document, a bad video entry, a bad field (and its name)
READERS: Dict[str, Any] = {
    "annotations": (read_annotations, "annotation file", GOOD_ANN,
                    {"database": {"v1": [1, 2]}},
                    {"database": {"v1": {"subset": "test", "annotations": [{"label": "J", "segment": [0, "x"]}]}}},
                    "segment"),
    "results": (read_results, "predictions", GOOD_RESULTS,
                {"results": {"v1": {"segment": [0, 1]}}},
                {"results": {"v1": [{"segment": [0, 1], "label": "J", "score": "high"}]}}, "score"),
    "scores": (load_external_scores, "external score file", {"v1": [0.2, 0.8]},
               {"v1": "high"}, {"v1": [0.2, None]}, None),
    "meta": (read_meta_file, "checkpoint metadata", {"label_names": {"0": "Jump"}}, None, None, None),
}


def _write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _error(read: Callable[[Path], Any], path: Path) -> str:
    with pytest.raises(DataError) as info:
        read(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


@pytest.mark.parametrize("kind", sorted(READERS))
def test_every_reader_names_the_file_for_a_missing_or_broken_file(kind, tmp_path):
    read, what, good, *_ = READERS[kind]
    read(_write(tmp_path / "good.json", good))  # a valid file reads
    missing = _error(read, tmp_path / "missing.json")
    assert missing.startswith(what) and "not found" in missing, missing
    broken = _error(read, _write(tmp_path / "broken.json", '{"a": '))
    assert broken.startswith(f"{what} {tmp_path / 'broken.json'}: not valid JSON"), broken


@pytest.mark.parametrize("kind", [k for k in sorted(READERS) if READERS[k][3] is not None])
def test_every_reader_names_the_video_and_the_field(kind, tmp_path):
    read, what, _, bad_video, bad_field, field = READERS[kind]
    msg = _error(read, _write(tmp_path / "v.json", bad_video))
    assert msg.startswith(f"{what} {tmp_path / 'v.json'}: video 'v1'"), msg
    msg = _error(read, _write(tmp_path / "f.json", bad_field))
    assert msg.startswith(f"{what} {tmp_path / 'f.json'}: video 'v1'"), msg
    if field is not None:
        assert f"field '{field}'" in msg, msg


def test_meta_fields_are_checked_with_the_file_and_field_named(tmp_path):
    path = _write(tmp_path / "meta.json", {"label_names": ["Jump"], "class_names": {"3": "Spin"}})
    meta = read_meta_file(path)
    assert id_names(meta, "class_names", str(path)) == {3: "Spin"} and id_names(meta, "absent", str(path)) == {}
    with pytest.raises(DataError, match=rf"checkpoint metadata {path}: field 'label_names': expected an object"):
        label_names(meta, str(path), 1)
    with pytest.raises(DataError, match="class ids 0..1"):
        label_names({"label_names": {"0": "Jump"}}, str(path), 2)
    with pytest.raises(DataError, match=rf"{path}: expected a JSON object of metadata, got list"):
        read_meta_file(_write(path, [1]))


def test_annotation_records_are_as_written_and_policies_come_later():
    """The reader keeps what training rejects (reversed segments, no label_id, no duration); the training
    policy and the evaluation policy decide on the same records."""
    from rdfa_s6.data.annotations import parse_annotations
    from rdfa_s6.eval.groundtruth import load_ground_truth

    doc = {"database": {"v1": {"subset": "test", "annotations": [{"label": "Jump", "segment": [3.0, 2.0]}]},
                        "v2": {"subset": "training", "duration": 9, "fps": 25, "annotations": None}}}
    raw = read_annotations(doc)
    (event,) = raw.videos["v1"].events
    assert (event.label, event.start, event.end, event.label_id) == ("Jump", 3.0, 2.0, None)
    assert raw.videos["v1"].duration is None and raw.videos["v2"].events == ()
    assert (raw.videos["v2"].duration, raw.videos["v2"].fps) == (9.0, 25.0)
    gt = load_ground_truth(doc, "test")  # the official policy keeps the event as annotated
    assert gt.start.tolist() == [3.0] and gt.end.tolist() == [2.0] and gt.labels == ["Jump"]
    with pytest.raises(DataError, match="'segment': end 2.0 is before start 3.0"):
        parse_annotations(doc, "a.json")
    assert video_durations(doc) == {"v2": 9.0}


@pytest.mark.parametrize("value, problem", [
    ("1", "expected a number, got str '1'"), (True, "expected a number, got bool True"),
    (float("nan"), "expected a finite number, got nan"), (10 ** 400, "expected a finite number"),
])
def test_numbers_are_finite_json_numbers(value, problem):
    with pytest.raises(DataError, match=f"^here: {problem}"):
        parse_number(value, "here")
    assert parse_number(7, "here") == 7.0 and isinstance(parse_number(7, "here"), float)


def test_segments_and_locations():
    assert parse_segment([2, 1.5], "s") == (2.0, 1.5)  # ordering is a policy, not the format's
    with pytest.raises(DataError, match=r"^s\[1\]: expected a number"):
        parse_segment([0, None], "s")
    with pytest.raises(DataError, match=r"^s: expected \[start_s, end_s\]"):
        parse_segment([0, 1, 2], "s")
    assert where("ground truth", "gt.json") == "ground truth gt.json"
    assert (where("ground truth", "gt.json", "v1", "annotations[0]", "segment")
            == "ground truth gt.json: video 'v1', annotations[0], field 'segment'")


def test_the_readers_do_not_import_torch():
    code = ("import sys, rdfa_s6.formats.annotations, rdfa_s6.formats.results, rdfa_s6.formats.scores, "
            "rdfa_s6.formats.meta; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_class_scores_given_in_memory_are_flattened_and_checked():
    import numpy as np

    from rdfa_s6.formats.scores import score_array

    np.testing.assert_array_equal(score_array(np.array([[0.25, 0.75]], np.float32), "here"), [0.25, 0.75])
    assert score_array((1, 2), "here").dtype == np.float64
    for bad in ([], [0.5, float("nan")]):
        with pytest.raises(DataError, match="^external class scores of video 'v': expected a non-empty list"):
            score_array(bad, "external class scores of video 'v'")
