"""Small hand-made evaluation cases with hand-computed answers, input errors, and a parser fuzz test."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdfa_s6 import cli
from rdfa_s6.errors import DataError, UserError
from rdfa_s6.eval import evaluate, format_table, load_predictions
from rdfa_s6.eval.detection import interpolated_ap, segment_iou

THUMOS = [0.3, 0.4, 0.5, 0.6, 0.7]
LABEL_IDS = {"A": 7, "B": 3, "C": 11}

Event = Tuple[str, str, float, float]  # video, label, start_s, end_s


def gt_dict(events: Sequence[Event], extra_videos: Sequence[str] = (), subset: str = "Test") -> dict:
    db: Dict[str, dict] = {v: {"subset": subset, "duration": 200.0, "fps": 30.0, "annotations": []}
                           for v in extra_videos}
    for vid, label, s, e in events:
        db.setdefault(vid, {"subset": subset, "duration": 200.0, "fps": 30.0, "annotations": []})
        db[vid]["annotations"].append({"label": label, "segment": [s, e], "label_id": LABEL_IDS[label]})
    db["other_split_video"] = {"subset": "Validation", "annotations": [{"label": "C", "segment": [0, 5]}]}
    return {"database": db}


def pred_dict(dets: Sequence[Tuple[str, object, float, float, float]]) -> dict:
    results: Dict[str, List[dict]] = {}
    for vid, label, s, e, score in dets:
        results.setdefault(vid, []).append({"segment": [s, e], "label": label, "score": score})
    return {"version": "test", "external_data": {}, "results": results}


def run(gt: dict, dets, thresholds=THUMOS, **kw) -> dict:
    return evaluate(pred_dict(dets), gt, subset="test", tiou_thresholds=thresholds, **kw)


# ---- AP and mAP ---------------------------------------------------------------------------------------------

def test_perfect_prediction_ap_1() -> None:
    m = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "A", 0, 10, 0.9)])
    assert m["mAP"] == [1.0] * 5 and m["average_mAP"] == 1.0 and m["per_class_AP"] == {"A": [1.0] * 5}


def test_false_positive_above_true_positive_ap_half() -> None:
    m = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "A", 20, 30, 0.9), ("v1", "A", 0, 10, 0.8)])
    assert m["mAP"] == pytest.approx([0.5] * 5, abs=1e-12)


def test_interpolated_precision_envelope() -> None:
    # TP, FP, TP: precisions 1, 1/2, 2/3 at recalls 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3
    m = run(gt_dict([("v1", "A", 0, 10), ("v1", "A", 20, 30)]),
            [("v1", "A", 0, 10, 0.9), ("v1", "A", 50, 60, 0.8), ("v1", "A", 20, 30, 0.7)])
    assert m["average_mAP"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-12)
    assert interpolated_ap(np.array([[True, False, True]]), 2)[0] == pytest.approx(5 / 6, abs=1e-12)


def test_class_without_predictions_counts_as_zero(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = run(gt_dict([("v1", "A", 0, 10), ("v1", "B", 20, 30)]), [("v1", "A", 0, 10, 0.9)])
    assert m["per_class_AP"] == {"A": [1.0] * 5, "B": [0.0] * 5}
    assert m["mAP"] == [0.5] * 5
    assert any("B" in w for w in m["warnings"]) and "no predictions" in caplog.text


def test_threshold_dependence() -> None:
    # tIoU 6.5 / 10 = 0.65: a true positive up to 0.6, a false positive at 0.7
    m = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "A", 0, 6.5, 0.9)])
    assert m["mAP"] == [1.0, 1.0, 1.0, 1.0, 0.0] and m["average_mAP"] == pytest.approx(0.8)


def test_greedy_matching_takes_highest_tiou_unmatched_event() -> None:
    # first detection overlaps both events, best with the second; the second detection then gets the first
    gt = gt_dict([("v1", "A", 0, 10), ("v1", "A", 8, 20)])
    m = run(gt, [("v1", "A", 7, 20, 0.9), ("v1", "A", 0, 9, 0.8)], thresholds=[0.5])
    assert m["mAP"] == [1.0]
    # a lower-scored duplicate of a matched detection is a false positive (double detection)
    m = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8)], thresholds=[0.5])
    assert m["mAP"] == [1.0] and m["errors"]["num_false_positives"] == 0  # outside the top-G


def test_prediction_of_other_video_or_class_is_false_positive() -> None:
    gt = gt_dict([("v1", "A", 0, 10), ("v2", "B", 0, 10)])
    m = run(gt, [("v2", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8), ("v2", "B", 0, 10, 0.5)])
    assert m["per_class_AP"] == {"A": [0.5] * 5, "B": [1.0] * 5}


def test_unknown_video_warns_and_counts_as_false_positive(caplog: pytest.LogCaptureFixture) -> None:
    """The official code keeps such detections; its video has no ground truth, so they are false positives."""
    with caplog.at_level(logging.WARNING):
        m = run(gt_dict([("v1", "A", 0, 10)]), [("v9", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8)])
    assert m["mAP"] == pytest.approx([0.5] * 5)
    assert any("v9" in w for w in m["warnings"]) and "v9" in caplog.text
    # ranked below the true positive it changes nothing
    assert run(gt_dict([("v1", "A", 0, 10)]), [("v9", "A", 0, 10, 0.1), ("v1", "A", 0, 10, 0.8)])["mAP"] == [1.0] * 5


def test_unknown_label_warns_and_is_ignored() -> None:
    m = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "Zebra", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8)])
    assert m["mAP"] == [1.0] * 5 and any("Zebra" in w for w in m["warnings"])


def test_integer_labels_are_label_ids() -> None:
    m = run(gt_dict([("v1", "A", 0, 10), ("v1", "B", 20, 30)]), [("v1", 7, 0, 10, 0.9), ("v1", 3, 20, 30, 0.8)])
    assert m["per_class_AP"] == {"A": [1.0] * 5, "B": [1.0] * 5}


def test_zero_length_predictions() -> None:
    gt = gt_dict([("v1", "A", 0, 10)])
    assert segment_iou(np.array(5.0), np.array(5.0), np.array(0.0), np.array(10.0)) == 0.0
    m = run(gt, [("v1", "A", 5, 5, 0.9), ("v1", "A", 0, 10, 0.8)])
    assert m["mAP"] == pytest.approx([0.5] * 5)


def test_zero_length_and_duplicate_ground_truth_by_policy() -> None:
    # official: a zero-length detection on a zero-length event has tIoU 0/0 = NaN, which the official
    # matching accepts; actionformer drops the zero-length event instead
    gt = gt_dict([("v1", "A", 0, 10), ("v1", "A", 3, 3)])
    dets = [("v1", "A", 3, 3, 0.9), ("v1", "A", 0, 10, 0.8)]
    assert run(gt, dets, gt_policy="official")["mAP"] == [1.0] * 5
    assert run(gt, dets, gt_policy="actionformer")["mAP"] == pytest.approx([0.5] * 5)
    # duplicated event: the official code needs two detections for it, actionformer keeps one copy
    gt = gt_dict([("v1", "A", 0, 10), ("v1", "A", 0.0005, 10.0005)])
    dets = [("v1", "A", 0, 10, 0.9)]
    assert run(gt, dets, gt_policy="official")["mAP"] == pytest.approx([0.5] * 5)
    assert run(gt, dets, gt_policy="actionformer")["mAP"] == [1.0] * 5


def test_empty_results_all_zero_with_warning() -> None:
    m = evaluate({"results": {}}, gt_dict([("v1", "A", 0, 10)]), subset="test")
    assert m["mAP"] == [0.0] * 5 and m["average_mAP"] == 0.0 and m["num_predictions"] == 0
    assert m["recall"]["AUC"] == 0.0 and m["warnings"]
    assert "Avg" in format_table(m) and "0.00" in format_table(m)


def test_subset_is_case_insensitive_and_must_exist() -> None:
    gt = gt_dict([("v1", "A", 0, 10)], subset="Test")
    assert evaluate(pred_dict([("v1", "A", 0, 10, 1.0)]), gt, subset="TEST")["mAP"][0] == 1.0
    with pytest.raises(DataError, match="subset"):
        evaluate(pred_dict([]), gt, subset="training")


# ---- recall and error breakdown -----------------------------------------------------------------------------

def test_recall_ignores_labels() -> None:
    gt = gt_dict([("v1", "A", 0, 10), ("v1", "B", 20, 30)])
    m = run(gt, [("v1", "A", 20, 30, 0.9), ("v1", "B", 0, 10, 0.5)])
    rec = m["recall"]
    assert rec["AR@AN"][0] == 0.5 and rec["AR@AN"][1:] == [1.0] * 99
    assert rec["AUC"] == pytest.approx((0.75 + 98) / 100)
    assert (rec["AN@1x"], rec["AN@5x"], rec["R@1x"], rec["R@5x"]) == (2, 10, 1.0, 1.0)


def test_recall_depends_on_threshold() -> None:
    # tIoU 0.65 with the only event: recalled at 4 of the 5 THUMOS thresholds
    rec = run(gt_dict([("v1", "A", 0, 10)]), [("v1", "A", 0, 6.5, 0.9)])["recall"]
    assert rec["AR@AN"] == pytest.approx([0.8] * 100) and rec["R@1x"] == pytest.approx(0.8)


def test_false_positive_breakdown() -> None:
    events = [("v1", "A", s, s + 10) for s in (0, 40, 60, 80, 100)] + [("v1", "B", 20, 30)]
    dets = [
        ("v1", "A", 0, 10, 0.99),     # true positive
        ("v1", "A", 0, 10, 0.98),     # double detection
        ("v1", "A", 20, 30, 0.97),    # wrong label (B)
        ("v1", "A", 40, 44, 0.96),    # localization: tIoU 0.4 with A
        ("v1", "A", 120, 130, 0.95),  # background
        ("v1", "A", 60, 70, 0.5),     # a true positive, but not in A's top-5
        ("v1", "B", 100, 104, 0.9),   # confusion: tIoU 0.4 with an A event only
    ]
    err = run(gt_dict(events), dets)["errors"]
    assert err["counts"] == {"double_detection": 1, "wrong_label": 1, "localization": 1, "confusion": 1,
                             "background": 1}
    assert err["fractions"] == {k: 0.2 for k in err["counts"]}
    assert (err["num_considered"], err["num_true_positives"], err["num_false_positives"]) == (6, 1, 5)
    assert "5 false positives" in err["summary"] and "background 20.0%" in err["summary"]


# ---- input errors -------------------------------------------------------------------------------------------

def test_malformed_inputs_raise_data_error(tmp_path: Path) -> None:
    gt = gt_dict([("v1", "A", 0, 10)])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json.*not valid JSON"):
        evaluate(bad, gt)
    with pytest.raises(DataError, match="not found"):
        evaluate(tmp_path / "missing.json", gt)
    with pytest.raises(DataError, match="'results'"):
        evaluate({"version": 1}, gt)
    with pytest.raises(DataError, match=r"video 'v1', detection 0, field 'segment'\[1\]"):
        evaluate({"results": {"v1": [{"segment": [0, "ten"], "label": "A", "score": 1}]}}, gt)
    with pytest.raises(DataError, match=r"video 'v1', detection 1: missing field 'score'"):
        evaluate({"results": {"v1": [{"segment": [0, 1], "label": "A", "score": 1},
                                     {"segment": [0, 1], "label": "A"}]}}, gt)
    with pytest.raises(DataError, match=r"field 'score': expected a finite number"):
        evaluate({"results": {"v1": [{"segment": [0, 1], "label": "A", "score": float("nan")}]}}, gt)
    with pytest.raises(DataError, match=r"field 'label'"):
        evaluate({"results": {"v1": [{"segment": [0, 1], "label": [1], "score": 1}]}}, gt)
    with pytest.raises(DataError, match=r"video 'v1', annotations\[0\], field 'segment'"):
        evaluate({"results": {}}, {"database": {"v1": {"subset": "test", "annotations": [{"label": "A"}]}}})
    with pytest.raises(UserError, match="tIoU"):
        evaluate({"results": {}}, gt, tiou_thresholds=[0.5, 1.5])
    with pytest.raises(UserError, match="gt_policy"):
        evaluate({"results": {}}, gt, gt_policy="lenient")


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(gt_dict([("v1", "A", 0, 10)])))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"results": {"v1": [{"segment": [0, 10], "label": "A", "score": "high"}]}}))
    assert cli.main(["evaluate", "--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "score" in err
    assert cli.main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--tiou", "0.3:oops"]) == 2
    pred.write_text(json.dumps(pred_dict([("v1", "A", 0, 10, 0.5)])))
    out = tmp_path / "m.json"
    assert cli.main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--tiou", "0.5,0.7", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mAP"] == [1.0, 1.0]


# ---- parser fuzzing -----------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_like = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)
detection = st.dictionaries(st.sampled_from(["segment", "label", "score", "extra"]),
                            json_like | st.lists(json_scalars, min_size=2, max_size=2), max_size=4)
results_doc = st.fixed_dictionaries(
    {"results": st.dictionaries(st.text(max_size=6), st.lists(detection | json_like, max_size=3), max_size=3)
     | json_like})


@settings(max_examples=300, deadline=None)
@given(doc=results_doc | json_like)
def test_parser_raises_only_data_error_on_json_like_input(doc: object) -> None:
    try:
        preds = load_predictions(doc) if isinstance(doc, dict) else load_predictions({"results": doc})
    except DataError:
        return
    assert len(preds) == preds.start.shape[0] == preds.score.shape[0] == len(preds.labels)
    assert np.isfinite(preds.start).all() and np.isfinite(preds.score).all()


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60) | st.builds(json.dumps, results_doc))
def test_parser_raises_only_data_error_on_file_text(text: str) -> None:
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as fobj:
            fobj.write(text)
        try:
            load_predictions(path)
        except DataError:
            pass
    finally:
        os.unlink(path)
