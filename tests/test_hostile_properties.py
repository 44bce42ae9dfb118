"""Property tests of the writers on hostile results files (issue 21): arbitrary labels and video ids (any
Unicode, lone surrogates, newlines, control characters, ``=``-prefixed, ``-->``, very long) and finite numbers
over the whole range (1e300, -1e18, zero-length segments). ``evaluate`` (against a generated ground truth),
``view`` and ``export`` in every format run through ``tests/_hostile.run_cli``: each exits 0 or refuses in
one line, never with a traceback, and each output parses back with its own parser (csv, json, srt,
webvtt-py, pympi-ling, xml.etree): raw CSV cells are the input strings, neutralised ones start with ``'``."""
from __future__ import annotations

import csv
import json
import math
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Tuple

from _hostile import Outcome, assert_refused, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdfa_s6.csvtable import FORMULA_STARTS, utf8_text
from rdfa_s6.export import MAX_TIME_S
from rdfa_s6.export.text import cue_text, xml_text
from rdfa_s6.filenames import file_stems

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])

_any_char = st.characters(codec=None, categories=None, exclude_categories=[])  # surrogates and controls too
_special = st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "-->", "--->", "\x00", "\ud800", "\udfff",
                            "\ufffe", "\uffff", "$", "$\\frac{1}{$", "{", "<", "&", "'", "\"", ",", " ", "\u2028"])
_text = st.one_of(
    st.lists(st.one_of(_special, st.text(_any_char, max_size=4)), max_size=6).map("".join),
    st.text(_any_char, min_size=1, max_size=12),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "=", "-", "\u00e9"]), st.integers(200, 3000)),
)
_number = st.one_of(
    st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
    st.floats(-100.0, 1000.0, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, 1e18, -1e18, MAX_TIME_S, 5e-324, 0.5]),
)
_start = st.one_of(st.floats(0.0, 500.0, allow_nan=False), _number)
_detection = st.tuples(_start, st.one_of(st.just(0.0), st.floats(0.0, 100.0, allow_nan=False), _number),
                       _text, _number)
_results = st.dictionaries(_text, st.lists(_detection, max_size=5), min_size=1, max_size=4)

Results = Dict[str, List[Tuple[float, float, str, float]]]


def _finite_end(start: float, length: float) -> float:
    end = start + abs(length)
    return end if math.isfinite(end) else start


def _write(folder: Path, results: Results) -> Tuple[Path, Path, Dict[str, List[Dict[str, Any]]]]:
    res = {vid: [{"segment": [s, _finite_end(s, d)], "label": lab, "score": p} for s, d, lab, p in dets]
           for vid, dets in results.items()}
    gt = {vid: {"subset": "test", "annotations": [{"segment": det["segment"], "label": det["label"]}
                                                  for det in dets[:2]]} for vid, dets in res.items()}
    res = json.loads(json.dumps(res))  # as the file reads: "\\ud800\\udfff" is one character, U+103FF
    pred_path, gt_path = folder / "results.json", folder / "gt.json"
    pred_path.write_text(json.dumps({"results": res}), encoding="ascii")  # \\ud800 escapes: valid JSON
    gt_path.write_text(json.dumps({"database": gt}), encoding="ascii")
    return pred_path, gt_path, res


def _ok_or_refused(outcome: Outcome, command: str) -> bool:
    """True on exit 0; else it must be a one-line refusal (no traceback)."""
    assert "Traceback" not in outcome.err, outcome.err[-3000:]
    if outcome.rc == 0:
        return True
    assert_refused(outcome, command=command)
    return False


def _too_far(res: Dict[str, List[Dict[str, Any]]]) -> bool:
    return any(abs(t) > MAX_TIME_S for dets in res.values() for det in dets for t in det["segment"])


@SETTINGS
@given(results=_results)
def test_evaluate_and_view_never_crash(results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pred, gt, res = _write(folder, results)
        _ok_or_refused(run_cli(["evaluate", "--pred", pred, "--gt", gt, "--tiou", "0.5"]), "evaluate")
        for extra in ([], ["--gt", gt, "--tiou", "0.5"]):
            page = folder / "page.html"
            if _ok_or_refused(run_cli(["view", "--pred", pred, "--out", page] + extra), "view"):
                m = re.search(r'<script type="application/json" id="rdfa-data">(.*?)</script>',
                              page.read_text(encoding="utf-8"), re.S)
                assert m is not None
                data = json.loads(m.group(1))
                for video in data["videos"]:
                    assert all(isinstance(v, int) and abs(v) < 2 ** 53 for v in video["det"] + video["gt"])
                assert {v["id"] for v in data["videos"]} >= set(res)
            elif not extra:  # with --gt, the evaluation may refuse too (e.g. a split without events)
                assert _too_far(res)  # the only refusal of a well-formed file: times the page cannot hold


def _csv_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _kept(res: Dict[str, List[Dict[str, Any]]]) -> List[Tuple[str, Dict[str, Any]]]:
    return [(vid, det) for vid, dets in res.items() for det in dets]


@SETTINGS
@given(results=_results)
def test_export_every_format_parses_back(results: Results) -> None:
    import pympi
    import srt
    import webvtt

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pred, _gt, res = _write(folder, results)
        keep = ["--min-score=-1e308"]
        kept = _kept(res)

        # csv: raw cells are the strings (lone surrogates as U+FFFD), neutralised ones carry a leading '
        for raw in (False, True):
            out = folder / f"d{int(raw)}.csv"
            assert run_cli(["export", pred, "--format", "csv", "--out", out] + keep + ["--raw-csv"] * raw).rc == 0
            rows = _csv_rows(out)
            assert len(rows) == len(kept)
            for row, (vid, det) in zip(rows, kept):
                for got, want in ((row["video_id"], utf8_text(vid)), (row["label"], utf8_text(det["label"]))):
                    if not raw and want.startswith(FORMULA_STARTS):
                        want = "'" + want
                    assert got == want
                assert [float(row["start_s"]), float(row["end_s"]), float(row["score"])] == \
                    det["segment"] + [det["score"]]

        out = folder / "a.json"
        assert run_cli(["export", pred, "--format", "activitynet", "--out", out] + keep).rc == 0
        back = json.loads(out.read_text(encoding="utf-8"))["results"]
        assert back == {vid: [{**d, "segment": d["segment"]} for d in dets] for vid, dets in res.items()}

        stems = file_stems(res)
        far = _too_far(res)
        for fmt in ("srt", "vtt", "eaf"):
            target = folder / fmt
            outcome = run_cli(["export", pred, "--format", fmt, "--out", target] + keep)
            if not _ok_or_refused(outcome, "export"):
                assert far
                continue
            for vid, dets in res.items():
                path = target / f"{stems[vid]}.{fmt}"
                if fmt == "srt":
                    cues = list(srt.parse(path.read_text(encoding="utf-8")))
                    texts = [c.content for c in cues]
                elif fmt == "vtt":
                    cues = list(webvtt.read(str(path))) if dets else []
                    texts = [c.raw_text for c in cues]
                else:
                    eaf = pympi.Elan.Eaf(str(path))
                    tiers = list(eaf.get_tier_names())
                    assert len(tiers) == len(set(tiers))
                    texts = [a[2] for t in tiers for a in eaf.get_annotation_data_for_tier(t)]
                assert len(texts) == len(dets)
                if fmt == "eaf":  # the labels themselves, where XML can hold them
                    assert sorted(texts) == sorted(xml_text(d["label"]) for d in dets)
                    continue
                for text in texts:
                    lines = text.split("\n")
                    assert len(lines) == 2 and "-->" not in text and lines[1].startswith("score ")
                firsts = [t.split("\n")[0] for t in texts]
                if fmt == "vtt":
                    firsts = [f.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for f in firsts]
                assert sorted(firsts) == sorted(cue_text(d["label"]) for d in dets)

        out = folder / "tasks.json"
        outcome = run_cli(["export", pred, "--format", "labelstudio", "--fps", "30", "--out", out,
                           "--video-url", "v/{video_id}.mp4"] + keep)
        if _ok_or_refused(outcome, "export"):
            tasks = json.loads(out.read_text(encoding="utf-8"))
            config = ET.parse(folder / "tasks.label_config.xml").getroot()
            labels = {lab.get("value") for lab in config.iter("Label")}
            assert [t["data"]["video_id"] for t in tasks] == list(res)
            for task in tasks:
                for region in task["predictions"][0]["result"]:
                    assert region["value"]["timelinelabels"][0] in labels
        else:
            assert far
