"""Hostile inputs for the writers (issue 21): one deterministic case per class of defect the security review
found in ``export``, ``infer --csv``'s writer, ``view`` and ``visualize``. Each case runs the command in
process (``tests/_hostile.run_cli``), checks the exit status, a single-line refusal where one is due, no
traceback, that every file that existed before is byte-identical after, and reads each output back with that
format's own parser (csv, srt, webvtt-py, pympi-ling, xml.etree, json)."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List

import pytest
from _hostile import assert_refused, assert_unchanged, run_cli, snapshot

from rdfa_s6.api import Detection
from rdfa_s6.csvtable import detections_csv
from rdfa_s6.export import export_results
from rdfa_s6.filenames import file_stems
from rdfa_s6.infer.results import write_results_csv

INJECTIONS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "'quoted"]


def write_results(path: Path, results: Dict[str, List[Dict[str, Any]]]) -> Path:
    path.write_text(json.dumps({"results": results}), encoding="utf-8")
    return path


def det(start: float, end: float, label: str, score: float = 0.9) -> Dict[str, Any]:
    return {"segment": [start, end], "label": label, "score": score}


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def simple(tmp_path: Path) -> Path:
    return write_results(tmp_path / "r.json", {"v1": [det(1.0, 2.0, "Jump"), det(3.0, 4.5, "Throw", 0.5)]})


# ---- CSV formula injection ------------------------------------------------------------------------------------

def test_csv_cells_that_start_like_a_formula_are_neutralised_and_raw_keeps_them(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.json", {vid: [det(-1.5, 2.0, lab, -0.25)] for vid, lab in
                                              zip(INJECTIONS, reversed(INJECTIONS))})
    before = snapshot(tmp_path)
    out = run_cli(["export", res, "--format", "csv", "--min-score", "-1", "--out", tmp_path / "safe.csv"])
    assert out.rc == 0, out.err
    rows = read_csv(tmp_path / "safe.csv")
    assert len(rows) == len(INJECTIONS)
    for row, vid, lab in zip(rows, INJECTIONS, reversed(INJECTIONS)):
        for got, raw in ((row["video_id"], vid), (row["label"], lab)):
            if raw[0] in "=+-@\t\r":
                assert got == "'" + raw
            else:
                assert got == raw
        # numbers are ours: written as numbers, never prefixed (a negative number stays a number)
        assert (float(row["start_s"]), float(row["end_s"]), float(row["score"])) == (-1.5, 2.0, -0.25)
        assert row["start_s"] == "-1.5" and row["score"] == "-0.25"
    out = run_cli(["export", res, "--format", "csv", "--raw-csv", "--min-score", "-1", "--out", tmp_path / "raw.csv"])
    assert out.rc == 0, out.err
    rows = read_csv(tmp_path / "raw.csv")
    assert [(r["video_id"], r["label"]) for r in rows] == list(zip(INJECTIONS, reversed(INJECTIONS)))
    assert_unchanged(before, tmp_path)


def test_infer_csv_and_export_csv_are_one_writer(tmp_path: Path) -> None:
    dets = {"=v": [Detection(0.5, 1.25, "@x", 0.875, 0)], "w": [Detection(2.0, 3.0, "ok", 0.5, 1)]}
    write_results_csv(tmp_path / "infer.csv", dets)
    write_results_csv(tmp_path / "infer_raw.csv", dets, raw=True)
    res = {"results": {vid: [d.to_dict() for d in ds] for vid, ds in dets.items()}}
    (exp,) = export_results(res, "csv", tmp_path / "export.csv")
    assert (tmp_path / "infer.csv").read_bytes() == exp.read_bytes()
    assert [r["video_id"] for r in read_csv(tmp_path / "infer.csv")] == ["'=v", "w"]
    assert [r["label"] for r in read_csv(tmp_path / "infer_raw.csv")] == ["@x", "ok"]


def test_csv_cells_with_newlines_quotes_and_surrogates_read_back() -> None:
    rows = [("a\r\nb", 0.0, 1.0, "x,\"y\"\n", 0.5), ("\ud800v", 0.0, 1.0, "\x00", 0.5)]
    back = list(csv.reader(io.StringIO(detections_csv(rows, raw=True).decode("utf-8"), newline="")))
    assert back[1][0] == "a\r\nb" and back[1][3] == "x,\"y\"\n"
    assert back[2][0] == "\ufffdv" and back[2][3] == "\x00"  # a lone surrogate cannot be UTF-8: U+FFFD


# ---- per-video files that overwrite each other ---------------------------------------------------------------

def test_per_video_ids_that_sanitise_alike_get_distinct_files(tmp_path: Path) -> None:
    import srt

    ids = ["a b", "a_b", "a_b_2", "A_B"]
    res = write_results(tmp_path / "r.json", {vid: [det(1.0, 2.0, f"label of {vid}")] for vid in ids})
    out = run_cli(["export", res, "--format", "srt", "--out", tmp_path / "subs"])
    assert out.rc == 0, out.err
    stems = file_stems(ids)
    files = sorted(p.name for p in (tmp_path / "subs").iterdir())
    assert len(files) == len(ids) and files == sorted(f"{stems[v]}.srt" for v in ids)
    for vid in ids:
        (cue,) = srt.parse((tmp_path / "subs" / f"{stems[vid]}.srt").read_text(encoding="utf-8"))
        assert cue.content.split("\n")[0] == f"label of {vid}"


def test_visualize_timelines_of_ids_that_sanitise_alike_are_distinct(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ids = ["a b", "a_b", "a_b_2"]
    res = write_results(tmp_path / "r.json", {vid: [det(1.0, 2.0, "x")] for vid in ids})
    out = run_cli(["visualize", "--pred", res, "--out", tmp_path / "plots"])
    assert out.rc == 0, out.err
    stems = file_stems(ids)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"timeline_{stems[v]}.png" for v in ids)


# ---- an output that is an input ------------------------------------------------------------------------------

def _links(tmp_path: Path, target: Path) -> Dict[str, Path]:
    sym = tmp_path / "sym.json"
    sym.symlink_to(target)
    hard = tmp_path / "hard.json"
    os.link(target, hard)
    return {"same": target, "symlink": sym, "hardlink": hard, "dotdot": tmp_path / "sub" / ".." / target.name}


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "dotdot"])
def test_export_never_overwrites_its_results(tmp_path: Path, simple: Path, how: str) -> None:
    (tmp_path / "sub").mkdir()
    out_path = _links(tmp_path, simple)[how]
    before = snapshot(tmp_path)
    line = assert_refused(run_cli(["export", simple, "--format", "activitynet", "--out", out_path]),
                          "--out", "RESULTS.json", command="export")
    assert "input" in line
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_view_never_overwrites_its_inputs(tmp_path: Path, simple: Path, how: str) -> None:
    out_path = _links(tmp_path, simple)[how]
    before = snapshot(tmp_path)
    assert_refused(run_cli(["view", "--pred", simple, "--out", out_path]), "--out", "--pred", command="view")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"v1": {"subset": "test", "annotations": [
        {"label": "Jump", "segment": [1.0, 2.0]}]}}}))
    before = snapshot(tmp_path)
    assert_refused(run_cli(["view", "--pred", simple, "--gt", gt, "--out", gt]), "--gt", command="view")
    assert_unchanged(before, tmp_path)


def test_export_companion_and_per_video_files_are_guarded(tmp_path: Path) -> None:
    # the Label Studio configuration next to --out would be the results file itself
    res = write_results(tmp_path / "t.label_config.xml", {"v1": [det(1.0, 2.0, "Jump")]})
    before = snapshot(tmp_path)
    assert_refused(run_cli(["export", res, "--format", "labelstudio", "--fps", "25", "--out", tmp_path / "t.json"]),
                   "t.label_config.xml", "RESULTS.json", command="export")
    assert not (tmp_path / "t.json").exists()  # nothing written: every file is checked first
    # a per-video file in the --out folder would be the results file
    folder = tmp_path / "subs"
    folder.mkdir()
    res = write_results(folder / "v1.srt", {"v0": [det(1.0, 2.0, "x")], "v1": [det(1.0, 2.0, "y")]})
    before = snapshot(tmp_path)
    assert_refused(run_cli(["export", res, "--format", "srt", "--out", folder]), "v1.srt", command="export")
    assert sorted(p.name for p in folder.iterdir()) == ["v1.srt"]
    assert_unchanged(before, tmp_path)


def test_visualize_never_overwrites_its_inputs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    plots.mkdir()
    res = write_results(plots / "timeline_v1.png", {"v1": [det(1.0, 2.0, "x")]})
    link = tmp_path / "r.json"
    link.symlink_to(res)
    hard = write_results(tmp_path / "h.json", {"v2": [det(1.0, 2.0, "x")]})
    os.link(hard, plots / "timeline_v2.png")
    before = snapshot(tmp_path)
    for pred, name in ((res, "timeline_v1.png"), (link, "timeline_v1.png"), (hard, "timeline_v2.png")):
        assert_refused(run_cli(["visualize", "--pred", pred, "--out", plots]), name, "--pred", command="visualize")
    assert_refused(run_cli(["visualize", "--pred", res, "--out", res]), "--out", command="visualize")
    assert_unchanged(before, tmp_path)


# ---- forged or broken text formats ---------------------------------------------------------------------------

ARROWS = ["--->", "a-->b", "---->>", "x\n\ny", "1\n00:00:01,000 --> 00:00:09,000\nforged", "", " \r\n "]


def test_subtitle_cues_never_hold_an_arrow_or_a_blank_line(tmp_path: Path) -> None:
    import srt
    import webvtt

    res = write_results(tmp_path / "r.json", {"v": [det(float(i), i + 0.5, lab) for i, lab in enumerate(ARROWS)]})
    for fmt in ("srt", "vtt"):
        out = run_cli(["export", res, "--format", fmt, "--out", tmp_path / f"v.{fmt}"])
        assert out.rc == 0, out.err
    subs = list(srt.parse((tmp_path / "v.srt").read_text(encoding="utf-8")))
    captions = webvtt.read(str(tmp_path / "v.vtt"))
    assert len(subs) == len(captions) == len(ARROWS)
    for i, (sub, cap) in enumerate(zip(subs, captions)):
        assert sub.start.total_seconds() == i and cap.start == f"00:00:{i:02d}.000"  # no cue moved
        for text in (sub.content, cap.raw_text):
            lines = text.split("\n")
            assert len(lines) == 2 and lines[1] == "score 0.9000" and "-->" not in text and lines[0].strip()


def test_xml_writers_replace_characters_xml_cannot_hold(tmp_path: Path) -> None:
    import pympi

    bad = "a\x00b\x01c\x1b\ufffe\uffff\ud800z"
    text = json.dumps({"results": {"v\x07id": [det(1.0, 2.0, bad), det(1.5, 3.0, "ok & <fine>")]}})
    res = tmp_path / "r.json"
    res.write_text(text, encoding="ascii")  # json.dumps escapes the lone surrogate: valid JSON, invalid Unicode
    out = run_cli(["export", res, "--format", "eaf", "--video-url", "media/{video_id}.mp4",
                   "--out", tmp_path / "a.eaf"])
    assert out.rc == 0, out.err
    eaf = pympi.Elan.Eaf(str(tmp_path / "a.eaf"))
    clean = "a\ufffdb\ufffdc\ufffd\ufffd\ufffd\ufffdz"
    assert sorted(eaf.get_tier_names()) == sorted([clean, "ok & <fine>"])
    assert [a[2] for a in eaf.get_annotation_data_for_tier(clean)] == [clean]
    assert eaf.media_descriptors[0]["MEDIA_URL"] == "media/v\ufffdid.mp4"
    out = run_cli(["export", res, "--format", "labelstudio", "--fps", "25", "--out", tmp_path / "t.json"])
    assert out.rc == 0, out.err
    config = ET.parse(tmp_path / "t.label_config.xml").getroot()
    labels = {lab.get("value") for lab in config.iter("Label")}
    assert labels == {clean, "ok & <fine>"}
    (task,) = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert {r["value"]["timelinelabels"][0] for r in task["predictions"][0]["result"]} == labels
    assert task["data"]["video_id"] == "v\x07id"


def test_elan_keeps_line_breaks_of_a_label(tmp_path: Path) -> None:
    import pympi

    label = "two\r\nlines\rand\ttab "
    res = write_results(tmp_path / "r.json", {"v": [det(1.0, 2.0, label)]})
    assert run_cli(["export", res, "--format", "eaf", "--out", tmp_path / "a.eaf"]).rc == 0
    eaf = pympi.Elan.Eaf(str(tmp_path / "a.eaf"))
    assert list(eaf.get_tier_names()) == [label]
    assert [a[2] for a in eaf.get_annotation_data_for_tier(label)] == [label]


def test_elan_tier_ids_are_unique_whatever_the_class_names(tmp_path: Path) -> None:
    import pympi

    # class "A" has three overlapping detections (three tiers); classes named "A 2" and "A 3" exist too
    res = write_results(tmp_path / "r.json", {"v": [det(0.0, 5.0, "A"), det(1.0, 6.0, "A"), det(2.0, 7.0, "A"),
                                                    det(0.0, 1.0, "A 2"), det(3.0, 4.0, "A 3")]})
    out = run_cli(["export", res, "--format", "eaf", "--out", tmp_path / "a.eaf"])
    assert out.rc == 0, out.err
    eaf = pympi.Elan.Eaf(str(tmp_path / "a.eaf"))
    tiers = list(eaf.get_tier_names())
    assert sorted(tiers) == ["A", "A 2", "A 3", "A 4", "A 5"]
    values = {t: {a[2] for a in eaf.get_annotation_data_for_tier(t)} for t in tiers}
    assert values["A 2"] == {"A 2"} and values["A 3"] == {"A 3"}
    assert values["A"] == values["A 4"] == values["A 5"] == {"A"}
    root = ET.parse(tmp_path / "a.eaf").getroot()
    ids = [t.get("TIER_ID") for t in root.iter("TIER")]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("template", ["{video_id", "{0}", "{foo}", "{video_id!r}", "{video_id.__class__}",
                                      "{video_id[0]}", "}", "no field.mp4"])
@pytest.mark.parametrize("fmt", ["eaf", "labelstudio"])
def test_bad_video_url_templates_are_one_line(tmp_path: Path, simple: Path, template: str, fmt: str) -> None:
    before = snapshot(tmp_path)
    out = run_cli(["export", simple, "--format", fmt, "--fps", "25", "--video-url", template,
                   "--out", tmp_path / f"o.{'eaf' if fmt == 'eaf' else 'json'}"])
    assert_refused(out, "--video-url", command="export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert_unchanged(before, tmp_path)


def test_export_refuses_times_it_cannot_write_as_integers(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.json", {"far\nvideo": [det(1e18, 1e300, "x")]})
    for fmt, out_name in (("srt", "a.srt"), ("vtt", "a.vtt"), ("eaf", "a.eaf"), ("labelstudio", "t.json")):
        line = assert_refused(run_cli(["export", res, "--format", fmt, "--fps", "30", "--out", tmp_path / out_name]),
                              "far\\nvideo", "1e+18", command="export")
        assert "\n" not in line
    for fmt in ("csv", "activitynet"):  # numbers written as numbers: nothing to refuse
        assert run_cli(["export", res, "--format", fmt, "--out", tmp_path / f"o.{fmt}"]).rc == 0
    assert float(read_csv(tmp_path / "o.csv")[0]["end_s"]) == 1e300


# ---- the viewer and plots with extreme numbers and strings --------------------------------------------------

def page_data(path: Path) -> Dict[str, Any]:
    m = re.search(r'<script type="application/json" id="rdfa-data">(.*?)</script>', path.read_text("utf-8"), re.S)
    assert m
    return json.loads(m.group(1))


def test_view_keeps_a_huge_score_on_top_and_every_number_exact(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.json", {"v\nrdfa-s6 view: error: forged": [
        det(1.0, 2.0, "x", 0.5), det(3.0, 4.0, "x", 1e300), det(5.0, 6.0, "y", -1e300), det(7.0, 7.0, "y", 0.7)]})
    out = run_cli(["view", "--pred", res, "--out", tmp_path / "p.html"])
    assert out.rc == 0, out.err
    assert not any(ln.startswith("rdfa-s6 view: error") for ln in out.err.splitlines())
    data = page_data(tmp_path / "p.html")
    (video,) = data["videos"]
    dets = [video["det"][i:i + 4] for i in range(0, len(video["det"]), 4)]
    assert dets[0][:2] == [3000, 4000] and dets[0][3] == 1e9 * data["scoreScale"]  # the top detection stays first
    assert dets[-1][3] == -1e9 * data["scoreScale"]
    assert all(isinstance(v, int) and abs(v) < 2 ** 53 for v in video["det"])


@pytest.mark.parametrize("segment", [[1e18, 1e18 + 1], [-1e18, 1.0], [0.0, 1e300]])
def test_view_refuses_times_beyond_what_it_can_draw(tmp_path: Path, segment: List[float]) -> None:
    res = write_results(tmp_path / "r.json", {"ok": [det(1.0, 2.0, "x")],
                                              "far away": [{"segment": segment, "label": "x", "score": 0.9}]})
    before = snapshot(tmp_path)
    assert_refused(run_cli(["view", "--pred", res, "--out", tmp_path / "p.html"]), "far away", "1e+12",
                   command="view")
    assert not (tmp_path / "p.html").exists()
    assert_unchanged(before, tmp_path)


def test_view_page_encodes_lone_surrogates_and_control_characters(tmp_path: Path) -> None:
    res = tmp_path / "r.json"
    res.write_text(json.dumps({"results": {"v\ud800": [det(1.0, 2.0, "l\udfff</script>\x00")]}}), encoding="ascii")
    out = run_cli(["view", "--pred", res, "--out", tmp_path / "p.html"])
    assert out.rc == 0, out.err
    data = page_data(tmp_path / "p.html")
    assert data["videos"][0]["id"] == "v\ud800" and data["classes"] == ["l\udfff</script>\x00"]


def test_visualize_draws_mathtext_and_long_labels_literally(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    labels = ["$\\frac{1}{$", "$x^{$", "a$b$c\\$", "L" * 5000, "nl\nlabel\x00\ud800"]
    res = write_results(tmp_path / "r.json", {"$\\sqrt{$ video": [det(float(i), i + 1.0, lab, 0.9 - i / 10)
                                                                  for i, lab in enumerate(labels)]})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"$\\sqrt{$ video": {"subset": "test", "duration": 10.0, "annotations": [
        {"label": lab, "segment": [float(i), i + 1.0]} for i, lab in enumerate(labels[:3])]}}}))
    for extra in ([], ["--gt", gt]):
        out = run_cli(["visualize", "--pred", res, "--out", tmp_path / f"plots{len(extra)}"] + extra)
        assert out.rc == 0, out.err
        pngs = list((tmp_path / f"plots{len(extra)}").glob("*.png"))
        assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_visualize_draws_extreme_numbers(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    res = write_results(tmp_path / "r.json", {"v": [det(1e300, 1e300, "a", 1e300), det(-1e18, 5.0, "b", -1e300),
                                                    det(2.0, 2.0, "a", 0.0)]})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"v": {"subset": "test", "duration": 1e300, "annotations": [
        {"label": "a", "segment": [0.0, 1e300]}]}}}))
    for extra in ([], ["--gt", gt]):
        out = run_cli(["visualize", "--pred", res, "--out", tmp_path / f"plots{len(extra)}"] + extra)
        assert out.rc == 0, out.err
        assert all(p.read_bytes()[:4] == b"\x89PNG" for p in (tmp_path / f"plots{len(extra)}").iterdir())
