"""The viewer's data and page, without a browser: per-video AP against the evaluator run on one video, the
compact encoding, a self-contained page, the `view` command and its errors (browser tests:
test_viewer_browser.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _viewer_helpers import synthetic_results

from rdfa_s6.cli import main
from rdfa_s6.eval import (
    align_predictions,
    evaluate,
    load_ground_truth,
    load_predictions,
)
from rdfa_s6.report import build_view_data, per_video_ap, render, write_report
from rdfa_s6.report.data import SCORE_SCALE, find_videos, relative_url
from rdfa_s6.report.html import data_json

THR = [0.3, 0.5, 0.7]


def page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="rdfa-data">(.*?)</script>', html, re.S)
    assert m, "no inlined data"
    return json.loads(m.group(1))


def test_per_video_ap_equals_the_evaluator_on_each_video_alone() -> None:
    gt_dict, res = synthetic_results(num_videos=5, dets_per_video=25, num_classes=4, seed=3)
    gt = load_ground_truth(gt_dict)
    aligned, _ = align_predictions(load_predictions(res), gt)
    got = per_video_ap(aligned, gt, THR)
    for v, vid in enumerate(gt.videos):
        one_gt = {"database": {vid: gt_dict["database"][vid]}}
        one_res = {"results": {vid: res["results"][vid]}}
        assert got[v] == pytest.approx(evaluate(one_res, one_gt, tiou_thresholds=THR)["average_mAP"], abs=1e-12)


def test_per_video_ap_by_hand() -> None:
    gt_dict = {"database": {
        "a": {"subset": "test", "annotations": [{"label": "x", "segment": [0, 10]}]},
        "b": {"subset": "test", "annotations": []},
    }}
    res = {"results": {"a": [{"segment": [50, 60], "label": "x", "score": 0.9},   # false positive first
                             {"segment": [0, 10], "label": "x", "score": 0.8},    # then the hit: precision 1/2
                             {"segment": [0, 10], "label": "y", "score": 0.99}]}}  # a class without GT: ignored
    gt = load_ground_truth(gt_dict)
    aligned, _ = align_predictions(load_predictions(res), gt)
    assert per_video_ap(aligned, gt, [0.5]) == [pytest.approx(0.5), None]


def test_view_data_is_compact_and_sorted_by_score() -> None:
    gt_dict, res = synthetic_results(num_videos=3, dets_per_video=10, num_classes=3, seed=1)
    res["results"]["extra"] = [{"segment": [1.0004, 2.0], "label": 1, "score": 0.123456}]  # label_id, no GT video
    preds, gt = load_predictions(res), load_ground_truth(gt_dict)
    metrics = evaluate(res, gt_dict, tiou_thresholds=THR)
    data = build_view_data(preds, gt, metrics, {"extra": 5.0}, {"extra": "v/extra.mp4"})
    assert [v["id"] for v in data["videos"]] == gt.videos + ["extra"]
    extra = data["videos"][-1]
    assert extra["ingt"] is False and extra["ap"] is None and extra["dur"] == 5.0 and extra["src"] == "v/extra.mp4"
    assert extra["det"] == [1000, 2000, data["classes"].index("Class01"), 1235]  # ms, class index, score * 1e4
    for entry in data["videos"][:-1]:
        det = np.array(entry["det"]).reshape(-1, 4)
        assert len(det) == 10 and (np.diff(det[:, 3]) <= 0).all()
        want = sorted(round(d["score"] * SCORE_SCALE) for d in res["results"][entry["id"]])
        assert sorted(det[:, 3].tolist()) == want
        events = gt_dict["database"][entry["id"]]["annotations"]
        ms = [[round(e["segment"][0] * 1000), round(e["segment"][1] * 1000)] for e in events]
        assert np.array(entry["gt"]).reshape(-1, 3)[:, :2].tolist() == ms
    assert data["metrics"]["mAP"] == metrics["mAP"]


def test_page_is_self_contained_and_escapes_the_data(tmp_path: Path) -> None:
    nasty = "</script><script>alert(1)</script> & <!--"
    res = {"results": {nasty: [{"segment": [0, 1], "label": nasty, "score": 0.5}]}}
    info = write_report(res, tmp_path / "r.html")
    html = info.path.read_text(encoding="utf-8")
    assert page_data(html)["videos"][0]["id"] == nasty
    assert html.count("</script>") == 2 and "alert(1)</script>" not in html
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', html), "an external resource"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html), "a network address"
    assert "default-src 'none'" in html  # the page's content security policy forbids fetching anything


def test_data_json_escapes_markup() -> None:
    text = data_json({"a": "<&>"})
    assert "<" not in text and ">" not in text and "&" not in text and json.loads(text) == {"a": "<&>"}


@pytest.mark.slow
def test_thumos_sized_page_is_small() -> None:
    """212 videos x 200 detections, 20 classes: the page stays under 1 MB (measured: ~0.9 MB, 0.4 MB gzipped)."""
    gt_dict, res = synthetic_results(num_videos=212, dets_per_video=200, num_classes=20, seed=0, duration=220.0)
    html = render(build_view_data(load_predictions(res), load_ground_truth(gt_dict), None))
    assert len(html.encode("utf-8")) < 1_000_000


def test_find_videos_and_relative_urls(tmp_path: Path) -> None:
    (tmp_path / "vids" / "test").mkdir(parents=True)
    for name in ["a.webm", "a.mp4", "test/b c.mov", "notes.txt"]:
        (tmp_path / "vids" / name).write_bytes(b"")
    found = find_videos(["a", "b c", "notes", "missing"], tmp_path / "vids")
    assert {k: v.name for k, v in found.items()} == {"a": "a.mp4", "b c": "b c.mov"}
    assert relative_url(found["b c"], tmp_path / "out" / "r.html") == "../vids/test/b%20c.mov"


def test_view_command_with_and_without_ground_truth(tmp_path: Path, capsys) -> None:
    gt_dict, res = synthetic_results(num_videos=3, dets_per_video=8, num_classes=2, seed=5)
    (tmp_path / "gt.json").write_text(json.dumps(gt_dict))
    (tmp_path / "res.json").write_text(json.dumps(res))
    out = tmp_path / "report.html"
    assert main(["view", "--pred", str(tmp_path / "res.json"), "--gt", str(tmp_path / "gt.json"), "--out", str(out),
                 "--tiou", "0.3,0.5"]) == 0
    printed = capsys.readouterr().out
    assert "24 detections of 3 videos" in printed and "mAP(%)" in printed
    metrics = page_data(out.read_text(encoding="utf-8"))["metrics"]
    assert metrics["mAP"] == evaluate(res, gt_dict, tiou_thresholds=[0.3, 0.5])["mAP"]
    assert main(["view", "--pred", str(tmp_path / "res.json"), "--out", str(out)]) == 0
    data = page_data(out.read_text(encoding="utf-8"))
    assert data["metrics"] is None and all(v["gt"] == [] and v["ap"] is None for v in data["videos"])


@pytest.mark.parametrize("extra, message", [
    (["--videos", "{tmp}/nope"], "not a folder"),
    (["--threshold", "nan"], "--threshold"),
    (["--gt", "{tmp}/gt.json", "--subset", "validation"], "no video of subset 'validation'"),
    (["--out", "{tmp}"], "is a folder"),
])
def test_view_errors_are_one_line(tmp_path: Path, capsys, extra, message) -> None:
    gt_dict, res = synthetic_results(num_videos=1, dets_per_video=2, num_classes=1)
    (tmp_path / "gt.json").write_text(json.dumps(gt_dict))
    (tmp_path / "res.json").write_text(json.dumps(res))
    argv = ["view", "--pred", str(tmp_path / "res.json"), "--out", str(tmp_path / "r.html")]
    code = main(argv + [a.replace("{tmp}", str(tmp_path)) for a in extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_demo_writes_the_viewer_with_the_metrics_of_its_evaluation(tmp_path: Path) -> None:
    """`rdfa-s6 demo` ends with demo.write_viewer: OUT/report.html from OUT/results.json and OUT/data."""
    from rdfa_s6.commands import demo

    gt_dict, res = synthetic_results(num_videos=2, dets_per_video=6, num_classes=2, seed=4)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "annotations.json").write_text(json.dumps(gt_dict))
    (tmp_path / "results.json").write_text(json.dumps(res))
    metrics = evaluate(res, gt_dict, tiou_thresholds=[0.5, 0.7], gt_policy="actionformer")  # as the demo scores
    path = demo.write_viewer(tmp_path, "test", metrics)
    assert path == tmp_path / "report.html"
    data = page_data(path.read_text(encoding="utf-8"))
    assert data["metrics"]["average_mAP"] == metrics["average_mAP"]
    assert data["metrics"]["gt_policy"] == "actionformer"


def test_plural() -> None:
    from rdfa_s6.messages import plural

    assert [plural(n, "video") for n in (0, 1, 2)] == ["0 videos", "1 video", "2 videos"]
    assert plural(1, "class", "classes") == "1 class" and plural(3, "class", "classes") == "3 classes"
    assert plural(1, "ground-truth event") == "1 ground-truth event"


def test_view_summary_of_one_video_and_one_event(tmp_path: Path, capsys) -> None:
    gt = {"database": {"v1": {"subset": "test", "duration": 10.0,
                              "annotations": [{"label": "Blink", "segment": [1.0, 2.0]}]}}}
    res = {"results": {"v1": [{"segment": [1.0, 2.0], "label": "Blink", "score": 0.9}]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    (tmp_path / "videos").mkdir()
    assert main(["view", "--pred", str(tmp_path / "res.json"), "--gt", str(tmp_path / "gt.json"),
                 "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "r.html")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("1 detection of 1 video, 0 video files linked: "), first


def test_page_colours_are_a_function_of_the_class_name() -> None:
    """The page data carries each class's colour: the figures' colour of that name, whatever the other classes."""
    from rdfa_s6.viz.mpl import class_colors

    def colours(labels):
        res = {"results": {"v": [{"segment": [1.0, 2.0], "label": lab, "score": 0.5} for lab in labels]}}
        data = build_view_data(load_predictions(res))
        return dict(zip(data["classes"], data["colors"]))

    one, other = colours(["Blink", "Run"]), colours(["Abseil", "Zebra", "Ünïcødé 跳水", "Blink"])
    assert one["Blink"] == other["Blink"] == class_colors(["Blink"])["Blink"]
    assert other == class_colors(other)


def test_the_page_says_how_the_detections_were_computed(tmp_path: Path) -> None:
    """A results file that records its precision and device (test, demo, infer write it): the page's evaluation
    box says it under the mAP table, as the console and report.md do."""
    from rdfa_s6.report import write_report

    gt_dict, res = synthetic_results(num_videos=2, dets_per_video=4, num_classes=2, seed=5)
    res["computed_with"] = {"precision": "bf16", "device": "cpu"}
    (tmp_path / "gt.json").write_text(json.dumps(gt_dict))
    (tmp_path / "r.json").write_text(json.dumps(res))
    html = write_report(tmp_path / "r.json", tmp_path / "v.html", gt=tmp_path / "gt.json").path.read_text()
    assert page_data(html)["metrics"]["computed_with"] == {"precision": "bf16", "device": "cpu"}
    assert "detections computed in " in html  # the page's script writes the line from it
