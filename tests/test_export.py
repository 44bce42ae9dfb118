"""``rdfa-s6 export``: every format read back with its own reader gives the same segments (times within 1 ms,
half a frame for Label Studio's frame ranges) and labels."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdfa_s6.cli import main
from rdfa_s6.export import collect, export_results
from rdfa_s6.export.elan import pack_tiers
from rdfa_s6.export.labelstudio import frames
from rdfa_s6.filenames import file_stems

Row = Tuple[float, float, str]

#: labels with spaces, accents and characters that XML, CSV and subtitles must escape
LABELS = ["Pole Vault", "Café, \"au lait\"", "a<b & c>d", "Diving"]


def results() -> Dict:
    """Two videos with overlapping detections of one class, long times (> 1 h) and a sub-millisecond time."""
    return {"results": {
        "vid A": [
            {"segment": [1.2345, 5.5], "label": LABELS[0], "score": 0.9},
            {"segment": [2.0, 4.0], "label": LABELS[0], "score": 0.5},   # overlaps the first
            {"segment": [3.0, 9.25], "label": LABELS[0], "score": 0.05},  # overlaps both
            {"segment": [0.0004, 0.75], "label": LABELS[1], "score": 0.7},
            {"segment": [3725.125, 3726.5], "label": LABELS[2], "score": 0.3},
        ],
        "vid/B": [
            {"segment": [10.0, 12.3456], "label": LABELS[3], "score": 0.8},
            {"segment": [11.0, 11.5], "label": LABELS[1], "score": 0.01},
        ],
    }}


def expected(video: str, min_score: float = 0.0) -> List[Row]:
    return sorted((d["segment"][0], d["segment"][1], d["label"]) for d in results()["results"][video]
                  if d["score"] >= min_score)


def close(got: List[Row], want: List[Row], tol: float = 1e-3) -> None:
    def key(r: Row) -> tuple:  # millisecond keys: equal times within the formats' resolution sort by label
        return (round(r[0] * 1000), round(r[1] * 1000), r[2])

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [g[2] for g in got] == [w[2] for w in want]
    for g, w in zip(got, want):
        assert abs(g[0] - w[0]) <= tol and abs(g[1] - w[1]) <= tol, (g, w)


@pytest.fixture()
def pred_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results()))
    return path


def test_csv_round_trip(pred_file: Path, tmp_path: Path) -> None:
    (out,) = export_results(pred_file, "csv", tmp_path / "d.csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for vid in ("vid A", "vid/B"):
        close([(float(r["start_s"]), float(r["end_s"]), r["label"]) for r in rows if r["video_id"] == vid],
              expected(vid), tol=1e-9)
    assert float(rows[0]["score"]) == 0.9


def test_activitynet_round_trip_keeps_the_accepted_subset(pred_file: Path, tmp_path: Path) -> None:
    from rdfa_s6.eval import load_predictions

    (out,) = export_results(pred_file, "activitynet", tmp_path / "a.json", min_score=0.3)
    back = load_predictions(out)
    assert back.videos == ["vid A", "vid/B"]
    for v, vid in enumerate(back.videos):
        rows = [(back.start[k], back.end[k], back.labels[k]) for k in range(len(back)) if back.video[k] == v]
        close(rows, expected(vid, 0.3), tol=0)
    assert back.score.min() >= 0.3


def test_srt_round_trip(pred_file: Path, tmp_path: Path) -> None:
    import srt

    files = export_results(pred_file, "srt", tmp_path / "srt")
    stems = file_stems(["vid A", "vid/B"])  # ids that are not plain file names: sanitised name + hash
    assert sorted(p.name for p in files) == sorted(f"{stems[v]}.srt" for v in stems)
    subs = list(srt.parse((tmp_path / "srt" / f"{stems['vid A']}.srt").read_text(encoding="utf-8")))
    close([(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n")[0]) for s in subs],
          expected("vid A"))
    assert [s.start for s in subs] == sorted(s.start for s in subs)
    assert subs[0].content.split("\n")[1].startswith("score ")


def test_webvtt_round_trip(pred_file: Path, tmp_path: Path) -> None:
    import webvtt

    (out,) = export_results(pred_file, "vtt", tmp_path / "one.vtt", videos=["vid A"])
    captions = webvtt.read(str(out))
    # webvtt-py's *_in_seconds are whole seconds: its timestamp strings carry the milliseconds
    back = [(_vtt_seconds(c.start), _vtt_seconds(c.end), _unescape(c.raw_text.split("\n")[0])) for c in captions]
    close(back, expected("vid A"))


def _vtt_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_elan_round_trip_one_tier_per_class(pred_file: Path, tmp_path: Path) -> None:
    import pympi

    (out,) = export_results(pred_file, "eaf", tmp_path / "a.eaf", videos=["vid A"])
    eaf = pympi.Elan.Eaf(str(out))
    tiers = sorted(eaf.get_tier_names())
    # the three overlapping detections of LABELS[0] need three tiers, named after the class
    assert tiers == sorted([LABELS[0], f"{LABELS[0]} 2", f"{LABELS[0]} 3", LABELS[1], LABELS[2]])
    back = []
    for tier in tiers:
        anns = eaf.get_annotation_data_for_tier(tier)
        spans = sorted((a[0], a[1]) for a in anns)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:])), f"overlap in tier {tier}"
        back += [(a[0] / 1000.0, a[1] / 1000.0, a[2]) for a in anns]
    close(back, expected("vid A"))


def test_pack_tiers_has_no_overlap_and_reuses_tiers() -> None:
    spans = [(0, 10), (5, 15), (10, 20), (16, 30), (1, 2)]
    tiers = pack_tiers(spans)
    for t in set(tiers):
        mine = sorted(s for s, k in zip(spans, tiers) if k == t)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:]))
    assert max(tiers) + 1 == 2  # at most two spans overlap at any time


def test_labelstudio_round_trip(pred_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tasks.json"
    assert main(["export", str(pred_file), "--format", "labelstudio", "--out", str(out), "--fps", "25",
                 "--video-url", "/data/local-files/?d=videos/{video_id}.mp4"]) == 0
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["data"]["video_id"] for t in tasks] == ["vid A", "vid/B"]
    assert tasks[0]["data"]["video"] == "/data/local-files/?d=videos/vid A.mp4"
    for task in tasks:
        vid = task["data"]["video_id"]
        results_ = task["predictions"][0]["result"]
        assert all(r["type"] == "timelinelabels" and r["to_name"] == "video" for r in results_)
        # frames: frame k (1-based) spans [(k-1)/fps, k/fps): within half a frame
        by_frames = [((r["value"]["ranges"][0]["start"] - 1) / 25, r["value"]["ranges"][0]["end"] / 25,
                      r["value"]["timelinelabels"][0]) for r in results_]
        close(by_frames, expected(vid), tol=0.5 / 25 + 1e-9)
        exact = []
        for r in results_:
            m = re.fullmatch(r"start_s=(\S+) end_s=(\S+) score=(\S+)", r["meta"]["text"][0])
            exact.append((float(m.group(1)), float(m.group(2)), r["value"]["timelinelabels"][0]))
        close(exact, expected(vid), tol=1e-9)
    config = (tmp_path / "tasks.label_config.xml").read_text(encoding="utf-8")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(config)
    assert root.find("Video").get("frameRate") == "25"
    assert sorted(lab.get("value") for lab in root.iter("Label")) == sorted(LABELS)


def test_frames_convention() -> None:
    assert frames(0.0, 1.0, 10) == (1, 10)
    assert frames(0.04, 0.06, 10) == (1, 1)  # shorter than a frame: one frame
    assert frames(2.5, 2.5, 4) == (11, 11)


def test_min_score_and_video_selection(pred_file: Path) -> None:
    data = collect(pred_file, min_score=0.5, videos=["vid/B"])
    assert list(data) == ["vid/B"] and [s.label for s in data["vid/B"]] == [LABELS[3]]


@pytest.mark.parametrize("argv, message", [
    (["--format", "labelstudio", "--out", "{tmp}/t.json"], "needs --fps"),
    (["--format", "srt", "--out", "{tmp}/one.srt"], "one .srt file holds one video"),
    (["--format", "csv", "--out", "{tmp}/x.csv", "--video-ids", "nope"], "--video-ids nope: not in"),
    (["--format", "csv", "--out", "{tmp}/x.csv", "--min-score", "nan"], "--min-score"),
    (["--format", "eaf", "--out", "{tmp}/a.eaf", "--video-ids", "vid A", "--video-url", "x.mp4"], "{video_id}"),
])
def test_export_errors_are_one_line(pred_file: Path, tmp_path: Path, capsys, argv, message) -> None:
    code = main(["export", str(pred_file)] + [a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_export_command_writes_a_folder(pred_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "subs"
    assert main(["export", str(pred_file), "--format", "vtt", "--out", str(out), "--min-score", "0.5"]) == 0
    stems = file_stems(["vid A", "vid/B"])
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == sorted(f"{stems[v]}.vtt" for v in stems)
    assert "vtt:" in capsys.readouterr().out


_label = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters=" -_&<>'\""),
                 min_size=1, max_size=12).map(str.strip).filter(bool)
_det = st.tuples(st.floats(0, 5000, allow_nan=False), st.floats(0, 600, allow_nan=False), _label,
                 st.floats(0, 1, allow_nan=False))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dets=st.lists(_det, min_size=1, max_size=12))
def test_round_trip_property(tmp_path: Path, dets) -> None:
    """Random segments and labels: SRT, WebVTT and ELAN give them back within 1 ms, labels unchanged."""
    import pympi
    import srt
    import webvtt

    res = {"results": {"v": [{"segment": [s, s + d], "label": lab, "score": p} for s, d, lab, p in dets]}}
    want = sorted((s, s + d, lab) for s, d, lab, _ in dets)
    (out_srt,) = export_results(res, "srt", tmp_path / "p.srt")
    got = [(c.start.total_seconds(), c.end.total_seconds(), c.content.split("\n")[0])
           for c in srt.parse(out_srt.read_text(encoding="utf-8"))]
    close(got, [(s, e, " ".join(lab.split())) for s, e, lab in want])
    (out_vtt,) = export_results(res, "vtt", tmp_path / "p.vtt")
    got = [(_vtt_seconds(c.start), _vtt_seconds(c.end), _unescape(c.raw_text.split("\n")[0]))
           for c in webvtt.read(str(out_vtt))]
    close(got, [(s, e, " ".join(lab.split())) for s, e, lab in want])
    (out_eaf,) = export_results(res, "eaf", tmp_path / "p.eaf")
    eaf = pympi.Elan.Eaf(str(out_eaf))
    got = [(a[0] / 1000, a[1] / 1000, a[2]) for t in eaf.get_tier_names() for a in eaf.get_annotation_data_for_tier(t)]
    # ELAN needs end > start: a zero-length detection ends 1 ms after its start
    close(got, [(s, max(e, round(s, 3) + 0.001) if e - s < 0.0005 else e, lab) for s, e, lab in want])
