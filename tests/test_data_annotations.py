"""The training policy on annotation files (docs/model.md §2.1): valid files, one error per bad field,
and fuzzing (only DataError or well-formed records).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rdfa_s6.data.annotations import load_annotations, parse_annotations
from rdfa_s6.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------------------------
# Annotation reader (docs/model.md §2.1)
# --------------------------------------------------------------------------------------------------------------
def _doc(**video):
    entry = {"subset": "Validation", "duration": 100.0, "fps": 30.0,
             "annotations": [{"label": "Jump", "segment": [1.0, 2.0], "label_id": 0}]}
    entry.update(video)
    return {"database": {"vid_7": entry}}


def _ann(**fields):
    ann = {"label": "Jump", "segment": [1.0, 2.0], "label_id": 0}
    ann.update(fields)
    for key in [k for k, v in ann.items() if v is _DROP]:
        del ann[key]
    return ann


_DROP = object()


def test_parse_valid_annotations():
    data = {"version": "x", "database": {
        "a": {"subset": "Validation", "duration": 50.0, "fps": 30.0,
              "annotations": [{"label": "Diving", "segment": [1.5, 3.0], "label_id": 7},
                              {"label": "CliffDiving", "segment": [1.5, 3.0], "label_id": 4}]},
        "b": {"subset": "test", "fps": 25, "annotations": []},
        "c": {"subset": "TEST"}}}
    ann = parse_annotations(data, "x.json")
    assert [v.video_id for v in ann.split("test")] == ["b", "c"]
    assert [v.video_id for v in ann.split("validation")] == ["a"]
    a = ann.videos["a"]
    np.testing.assert_array_equal(a.segments, [[1.5, 3.0], [1.5, 3.0]])
    assert a.labels.tolist() == [7, 4] and a.labels.dtype == np.int64
    assert ann.videos["c"].duration == 1e8 and ann.videos["c"].fps is None
    assert ann.videos["b"].segments.shape == (0, 2)
    assert ann.num_classes == 8 and ann.label_names == {4: "CliffDiving", 7: "Diving"}
    assert parse_annotations(data, default_fps=12.0).videos["a"].fps == 12.0
    assert ann.subsets() == {"validation": 1, "test": 2}


@pytest.mark.parametrize("video, field", [
    ({"subset": 3}, "subset"),
    ({"subset": None}, "subset"),
    ({"annotations": [_ann(segment=[5.0, 2.0])]}, "segment"),
    ({"annotations": [_ann(segment=[float("nan"), 2.0])]}, "segment"),
    ({"annotations": [_ann(segment=[1.0, "2.0"])]}, "segment"),
    ({"annotations": [_ann(segment=[1.0])]}, "segment"),
    ({"annotations": [_ann(segment=[-1.0, 2.0])]}, "segment"),
    ({"annotations": [_ann(label_id=_DROP)]}, "label_id"),
    ({"annotations": [_ann(label_id=1.0)]}, "label_id"),
    ({"annotations": [_ann(label_id=True)]}, "label_id"),
    ({"annotations": [_ann(), _ann(label_id=1)]}, "label_id"),                # same label, two ids
    ({"annotations": [_ann(), _ann(label="Other")]}, "label_id"),             # same id, two labels
    ({"annotations": [_ann(label=_DROP)]}, "label"),
    ({"duration": -5.0}, "duration"),
    ({"duration": 0}, "duration"),
    ({"duration": "long"}, "duration"),
    ({"fps": 0.0}, "fps"),
    ({"fps": float("inf")}, "fps"),
    ({"annotations": {"a": 1}}, "annotations"),
])
def test_annotation_errors_name_video_and_field(video, field):
    with pytest.raises(DataError) as info:
        parse_annotations(_doc(**video), "ann.json")
    msg = str(info.value)
    assert "vid_7" in msg and f"'{field}'" in msg and "ann.json" in msg, msg


def test_annotation_missing_database_and_json_errors(tmp_path):
    for data in ({}, {"database": []}, [], None, {"Database": {}}):
        with pytest.raises(DataError, match="'database'"):
            parse_annotations(data, "ann.json")
    with pytest.raises(DataError, match="not found"):
        load_annotations(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{\"database\": ")
    with pytest.raises(DataError, match="not valid JSON"):
        load_annotations(tmp_path / "bad.json")
    with pytest.raises(DataError, match="vid_7"):
        parse_annotations({"database": {"vid_7": [1, 2]}})


@pytest.mark.parametrize("video", [
    {"annotations": [_ann(segment=[0, 10 ** 400])]},
    {"duration": 10 ** 400},
    {"fps": 10 ** 400},
    {"annotations": [_ann(label_id=2 ** 64)]},
])
def test_annotation_huge_integers(video):
    # json.loads("1" + "0" * 400) is a valid Python int, so this comes straight from a JSON file
    with pytest.raises(DataError, match="vid_7"):
        parse_annotations(_doc(**video), "ann.json")


# ---- fuzzing --------------------------------------------------------------------------------------------------
def _json_values(ints):
    scalars = st.none() | st.booleans() | ints | st.floats() | st.text(max_size=6)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                                     max_size=4), max_leaves=12)


def _mostly_valid(good, keys, values):
    """``good`` dicts, one time in four with up to two fields replaced by ``values`` and/or one removed."""
    def mutate(d):
        edits = st.tuples(st.dictionaries(st.sampled_from(keys), values, max_size=2),
                          st.sets(st.sampled_from(keys), max_size=1))
        return edits.map(lambda e: {**{k: v for k, v in d.items() if k not in e[1]}, **e[0]})
    return st.integers(0, 3).flatmap(lambda i: good.flatmap(mutate) if i == 0 else good)


def _annotation_docs(ints):
    """Arbitrary JSON values, and dicts shaped like real annotation files with random field values."""
    anything = _json_values(ints)
    number = ints | st.floats() | st.sampled_from([0.0, 1.0, 2.5, -1.0, 1e8])
    odd = anything | number
    times = st.floats(0, 200, allow_nan=False)
    good_ann = st.tuples(st.sampled_from([("Jump", 0), ("Throw", 1), ("Spin", 5)]), times, times).map(
        lambda x: {"label": x[0][0], "label_id": x[0][1], "segment": sorted(x[1:])})
    ann = st.integers(0, 4).flatmap(
        lambda i: anything if i == 0 else _mostly_valid(good_ann, ["label", "label_id", "segment"], odd))
    good_video = st.fixed_dictionaries(
        {"subset": st.sampled_from(["training", "Test"])},
        optional={"duration": st.floats(1, 300) | st.none(), "fps": st.sampled_from([30.0, 25, 29.97]),
                  "annotations": st.lists(ann, min_size=1, max_size=4)})
    video = st.integers(0, 4).flatmap(
        lambda i: anything if i == 0 else _mostly_valid(good_video, ["subset", "duration", "fps", "annotations"], odd))
    database = st.dictionaries(st.text(max_size=5), video, min_size=1, max_size=4)
    doc = st.fixed_dictionaries({"database": database}, optional={"version": anything})
    return st.integers(0, 4).flatmap(
        lambda i: anything if i == 0 else _mostly_valid(doc, ["database"], odd))


def _parse_only_data_errors(doc):
    try:
        ann = parse_annotations(doc)
    except DataError:
        return
    for v in ann.videos.values():  # on success the records are well formed
        assert v.segments.shape == (len(v.labels), 2) and v.segments.dtype == np.float64
        assert np.all(np.isfinite(v.segments)) and np.all(v.segments[:, 0] >= 0)
        assert np.all(v.segments[:, 1] >= v.segments[:, 0]) and np.all(v.labels >= 0)
        assert v.duration > 0 and (v.fps is None or v.fps > 0)


_INT64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)


@FUZZ
@given(_annotation_docs(_INT64))
def test_fuzz_parse_annotations_raises_only_data_error(doc):
    """Arbitrary JSON-like values (integers within int64): DataError or success, nothing else."""
    _parse_only_data_errors(doc)


@FUZZ
@given(_annotation_docs(st.integers()))
@example({"database": {"v": {"subset": "t", "duration": 10 ** 400}}})
def test_fuzz_parse_annotations_unbounded_integers(doc):
    """Same with unbounded integers, which json.loads produces for long digit strings."""
    _parse_only_data_errors(doc)
