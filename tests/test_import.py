"""``rdfa-s6 import``: realistic files of every format in, the annotation JSON training reads out; the segment
rules, class ids, the split by video, ``--into``; malformed files give one line, exit 2 and write nothing.

The Label Studio files follow the layouts of Label Studio's export converter (``label_studio_sdk/converter``:
``converter.py`` ``annotation_result_from_task``/``convert_to_json_min``, ``exports/csv2.py``, ``utils.py``
``prettify_result``) and the ``TimelineLabels`` tag's documented result (``{"ranges": [{"start", "end"}],
"timelinelabels": [...]}``, frames counted from 1); uploads are stored as ``upload/<project>/<8 hex>-<name>``
(``data_import/models.py``, ``upload_name_generator``).
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from _hostile import assert_refused, run_cli

from rdfa_s6.data.annotations import parse_annotations
from rdfa_s6.ingest.labelstudio import video_id_from_url
from rdfa_s6.ingest.rules import CLIPPED, DUPLICATE, OUTSIDE, OVERLAP, SWAPPED, ZERO, apply_rules

FPS = 25.0
#: one annotated task, as Label Studio's JSON export writes it: regions in frames (1-based, inclusive)
REGIONS = [("Jump", 26, 75), ("Run", 101, 150), ("Jump", 201, 225)]
#: the same in seconds: start (k - 1) / fps, end k / fps
SECONDS = [("Jump", 1.0, 3.0), ("Run", 4.0, 6.0), ("Jump", 8.0, 9.0)]


def ls_task(task_id, url, regions, cancelled_extra=False):
    result = [{"value": {"ranges": [{"start": a, "end": b}], "timelinelabels": [label]}, "id": f"r{i}",
               "from_name": "videoLabels", "to_name": "video", "type": "timelinelabels", "origin": "manual"}
              for i, (label, a, b) in enumerate(regions)]
    annotations = [{"id": 100 + task_id, "completed_by": 1, "result": result, "was_cancelled": False,
                    "ground_truth": False, "created_at": "2024-05-02T10:00:00.000000Z",
                    "updated_at": "2024-05-02T10:05:00.000000Z", "lead_time": 42.5, "task": task_id}]
    if cancelled_extra:  # a later annotation that was cancelled (skipped): not the labels
        annotations.append({"id": 900 + task_id, "completed_by": 2, "result": [], "was_cancelled": True,
                            "created_at": "2024-05-03T10:00:00.000000Z", "updated_at": "2024-05-03T10:00:00.000000Z"})
    return {"id": task_id, "data": {"video": url}, "annotations": annotations, "predictions": [],
            "meta": {}, "created_at": "2024-05-01T09:00:00.000000Z", "project": 3}


def ls_min_record(task_id, url, regions):
    """A JSON-MIN record: the task's data fields, the control's values (``type`` removed), annotation fields."""
    return {"video": url, "id": task_id,
            "videoLabels": [{"ranges": [{"start": a, "end": b}], "timelinelabels": [label]} for label, a, b in regions],
            "annotator": 1, "annotation_id": 100 + task_id, "created_at": "2024-05-02T10:00:00.000000Z",
            "updated_at": "2024-05-02T10:05:00.000000Z", "lead_time": 42.5}


def ls_csv(records):
    """The CSV export: the JSON-MIN records as rows, columns in name order, non-numbers quoted, lists as JSON."""
    keys = sorted({k for r in records for k in r})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    for r in records:
        writer.writerow({k: json.dumps(v, separators=(",", ":")) if isinstance(v, list) else v for k, v in r.items()})
    return buf.getvalue()


def cli(argv):
    """``rdfa-s6 *argv`` in process (numbers and paths given as they are)."""
    return run_cli([str(a) for a in argv])


def segments(doc, vid):
    return [(a["label"], a["segment"][0], a["segment"][1]) for a in doc["database"][vid]["annotations"]]


def assert_close(got, want, tol=1e-9):
    assert [g[0] for g in got] == [w[0] for w in want], (got, want)
    for g, w in zip(got, want):
        assert abs(g[1] - w[1]) <= tol and abs(g[2] - w[2]) <= tol, (got, want)


def imported(tmp_path, *args):
    out = tmp_path / "annotations.json"
    outcome = cli(["import", *map(str, args), "--out", out])
    assert outcome.rc == 0, outcome.err
    doc = json.loads(out.read_text())
    parse_annotations(doc, str(out))  # training reads it
    return doc, outcome.out


URL = "/data/upload/3/3f2a9c1d-clip_01.mp4"


@pytest.mark.parametrize("layout", ["json", "json-min", "csv"])
def test_label_studio_exports_give_the_same_labels(tmp_path, layout):
    if layout == "json":
        src = tmp_path / "project-3-at-2024.json"
        src.write_text(json.dumps([ls_task(7, URL, REGIONS, cancelled_extra=True)]))
    elif layout == "json-min":
        src = tmp_path / "project-3-min.json"
        src.write_text(json.dumps([ls_min_record(7, URL, REGIONS)]))
    else:
        src = tmp_path / "project-3.csv"
        src.write_text(ls_csv([ls_min_record(7, URL, REGIONS)]))
    doc, out = imported(tmp_path, src, "--from", "labelstudio", "--fps", FPS)
    assert list(doc["database"]) == ["clip_01"]
    assert_close(segments(doc, "clip_01"), sorted(SECONDS, key=lambda s: (s[1], s[2], s[0])))
    assert {a["label"]: a["label_id"] for a in doc["database"]["clip_01"]["annotations"]} == {"Jump": 0, "Run": 1}
    assert "class ids: 0 Jump, 1 Run" in out


def test_label_studio_latest_annotation_wins_and_unannotated_tasks_are_left_out_and_reported(tmp_path):
    old = ls_task(1, "/data/local-files/?d=videos/game%201.mp4", [("Run", 1, 25)])
    newer = json.loads(json.dumps(old["annotations"][0]))
    newer.update(id=999, updated_at="2024-06-01T00:00:00.000000Z")
    newer["result"][0]["value"]["timelinelabels"] = ["Walk"]
    old["annotations"].append(newer)
    empty = {"id": 2, "data": {"video": "/data/upload/3/0badf00d-clip_02.mp4"}, "annotations": [], "predictions": []}
    src = tmp_path / "export.json"
    src.write_text(json.dumps([old, empty]))
    doc, out = imported(tmp_path, src, "--from", "labelstudio", "--fps", FPS)
    assert list(doc["database"]) == ["game 1"]  # the d= path of a local-files URL, percent-decoded
    assert segments(doc, "game 1") == [("Walk", 0.0, 1.0)]
    assert "older annotations of the task, not read: 1" in out
    assert "clip_02 (the task has no annotation)" in out


@pytest.mark.parametrize("url, vid", [
    ("/data/upload/3/3f2a9c1d-clip_01.mp4", "clip_01"),                # Label Studio's upload name
    ("/data/upload/12/deadbeef-a-b.mkv", "a-b"),
    ("/data/local-files/?d=media/deadbeef-x.mp4", "deadbeef-x"),       # not an upload: the name is kept
    ("https://example.org/videos/My%20Video.webm?sig=1", "My Video"),
    ("s3://bucket/path/v.2024.mp4", "v.2024"),
    ("/data/upload/3/ABCDEF12-up.mp4", "ABCDEF12-up"),                 # uploads use lower-case hex only
])
def test_video_ids_from_label_studio_urls(url, vid):
    assert video_id_from_url(url) == vid


def test_the_file_export_writes_imports_back_exactly(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"results": {"v1": [{"segment": [1.234, 5.6789], "label": "Jump", "score": 0.9},
                                                      {"segment": [6.0, 7.5], "label": "Run", "score": 0.4}]}}))
    tasks = tmp_path / "tasks.json"
    assert cli(["export", results, "--format", "labelstudio", "--fps", FPS, "--out", tasks]).rc == 0
    doc, out = imported(tmp_path, tasks, "--from", "labelstudio", "--fps", FPS)
    assert segments(doc, "v1") == [("Jump", 1.234, 5.6789), ("Run", 6.0, 7.5)]  # exact: meta.text, frames agree
    assert "from predictions: 1 video" in out
    # moved in Label Studio: the frames no longer agree with meta.text, so the frames are read
    data = json.loads(tasks.read_text())
    data[0]["predictions"][0]["result"][0]["value"]["ranges"][0]["end"] = 200
    tasks.write_text(json.dumps(data))
    doc, _ = imported(tmp_path, tasks, "--from", "labelstudio", "--fps", FPS)
    assert segments(doc, "v1")[0] == ("Jump", 31 / FPS, 200 / FPS)  # start frame round(1.234 * 25) + 1 = 32


def test_export_as_annotations_and_model_version(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"results": {"v1": [{"segment": [1.0, 2.0], "label": "Jump", "score": 0.9}]}}))
    pred, ann = tmp_path / "pred.json", tmp_path / "ann.json"
    assert cli(["export", results, "--format", "labelstudio", "--fps", 30, "--model-version", "m-2",
                    "--out", pred]).rc == 0
    task = json.loads(pred.read_text())[0]
    assert task["predictions"][0]["model_version"] == "m-2" and task["predictions"][0]["score"] == 0.9
    assert task["predictions"][0]["result"][0]["score"] == 0.9
    assert cli(["export", results, "--format", "labelstudio", "--fps", 30, "--as", "annotations",
                    "--out", ann]).rc == 0
    task = json.loads(ann.read_text())[0]
    assert "predictions" not in task and "score" not in task["annotations"][0]["result"][0]
    doc, out = imported(tmp_path, ann, "--from", "labelstudio", "--fps", 30)
    assert segments(doc, "v1") == [("Jump", 1.0, 2.0)] and "from predictions" not in out
    assert_refused(cli(["export", results, "--format", "csv", "--as", "annotations", "--out", tmp_path / "x.csv"]),
                   "--as", command="export")


EAF = """<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-05-02T12:00:00+01:00" FORMAT="3.0" VERSION="3.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">
  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">
    <MEDIA_DESCRIPTOR MEDIA_URL="file:///home/ann/videos/match%2007.mp4" MIME_TYPE="video/mp4"
        RELATIVE_MEDIA_URL="../videos/match%2007.mp4"/>
    <PROPERTY NAME="lastUsedAnnotationId">4</PROPERTY>
  </HEADER>
  <TIME_ORDER>
    <TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="1200"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="3450"/>
    <TIME_SLOT TIME_SLOT_ID="ts3" TIME_VALUE="5000"/><TIME_SLOT TIME_SLOT_ID="ts4" TIME_VALUE="7125"/>
    <TIME_SLOT TIME_SLOT_ID="ts5" TIME_VALUE="8000"/><TIME_SLOT TIME_SLOT_ID="ts6" TIME_VALUE="9000"/>
  </TIME_ORDER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="Serve">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
      <ANNOTATION_VALUE>first serve</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts5" TIME_SLOT_REF2="ts6">
      <ANNOTATION_VALUE></ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="Rally">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts3" TIME_SLOT_REF2="ts4">
      <ANNOTATION_VALUE>Serve</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="default-lt" TIME_ALIGNABLE="true"/>
</ANNOTATION_DOCUMENT>
"""


def test_elan_tiers_are_classes_or_one_tier_holds_them(tmp_path):
    folder = tmp_path / "eaf"
    folder.mkdir()
    (folder / "session.eaf").write_text(EAF)
    doc, _ = imported(tmp_path, folder, "--from", "elan")
    assert list(doc["database"]) == ["match 07"]  # the media file's name, not the .eaf's
    assert segments(doc, "match 07") == [("Serve", 1.2, 3.45), ("Rally", 5.0, 7.125), ("Serve", 8.0, 9.0)]
    doc, out = imported(tmp_path, folder / "session.eaf", "--from", "elan", "--tier", "Serve")
    assert segments(doc, "match 07") == [("first serve", 1.2, 3.45)]
    assert "annotations without a value, left out: 1" in out
    no_media = tmp_path / "clip 9.eaf"
    no_media.write_text(EAF.replace('MEDIA_URL="file:///home/ann/videos/match%2007.mp4"', 'MEDIA_URL=""'))
    doc, _ = imported(tmp_path, no_media, "--from", "elan")
    assert list(doc["database"]) == ["clip 9"]


def test_csv_in_seconds_or_frames(tmp_path):
    src = tmp_path / "labels.csv"
    src.write_text("video_id,start,end,label\nv1,1.5,3.25,Jump\nv2,10,20,Run\nv1,4,6,Run\n")
    doc, _ = imported(tmp_path, src, "--from", "csv")
    assert segments(doc, "v1") == [("Jump", 1.5, 3.25), ("Run", 4.0, 6.0)]
    assert segments(doc, "v2") == [("Run", 10.0, 20.0)]
    doc, _ = imported(tmp_path, src, "--from", "csv", "--fps", 10)
    assert segments(doc, "v2") == [("Run", 1.0, 2.0)]  # frame k starts at k / fps
    assert doc["database"]["v2"]["fps"] == 10.0


def test_segment_rules_one_of_each():
    segs = [("A", 5.0, 2.0),      # reversed: swapped
            ("A", 3.0, 3.0),      # zero-length: dropped
            ("B", -4.0, -1.0),    # before the video: dropped
            ("B", 12.0, 15.0),    # after it: dropped
            ("B", -1.0, 1.0),     # clipped to [0, 1]
            ("C", 8.0, 11.0),     # clipped to [8, 10]
            ("C", 8.0, 10.0),     # an exact duplicate of the clipped one
            ("A", 4.0, 6.0)]      # overlaps A [2, 5]: kept
    kept, counts = apply_rules(segs, duration=10.0)
    assert kept == [("B", 0.0, 1.0), ("A", 2.0, 5.0), ("A", 4.0, 6.0), ("C", 8.0, 10.0)]
    assert counts == {SWAPPED: 1, ZERO: 1, OUTSIDE: 2, CLIPPED: 2, DUPLICATE: 1, OVERLAP: 1}
    kept, counts = apply_rules([("A", 1.0, 10.0000001), ("A", 9.0, 12.0)], duration=10.0)  # within 1 us: kept
    assert kept == [("A", 1.0, 10.0000001), ("A", 9.0, 10.0)] and counts == {CLIPPED: 1, OVERLAP: 1}
    kept, counts = apply_rules([("A", -1.0, 1e6)], duration=None)  # no duration: only the start is clipped
    assert kept == [("A", 0.0, 1e6)] and counts == {CLIPPED: 1}


def test_durations_from_extraction_json_and_feature_files_and_the_summary(tmp_path):
    root = tmp_path / "data"
    (root / "features").mkdir(parents=True)
    (root / "extraction.json").write_text(json.dumps({
        "stride": 4, "window": 16, "fps": 25.0,
        "videos": {"a": {"duration": 10.0, "fps": 30.0, "native_fps": 30.0, "T": 72}}}))
    np.save(root / "features" / "b.npy", np.zeros((50, 8), np.float32))
    src = tmp_path / "labels.csv"
    src.write_text("video_id,start,end,label\na,9,12,X\nb,1,2,X\nb,1,2,X\nc,3,1,Y\n")
    doc, out = imported(tmp_path, src, "--from", "csv", "--data-root", root)
    db = doc["database"]
    assert db["a"]["duration"] == 10.0 and db["a"]["fps"] == 30.0 and segments(doc, "a") == [("X", 9.0, 10.0)]
    assert db["b"]["duration"] == pytest.approx((49 * 4 + 16) / 25.0)  # T rows of stride 4, window 16 at 25 fps
    assert db["c"]["duration"] is None and segments(doc, "c") == [("Y", 1.0, 3.0)]
    assert "  video a: partly outside the video, clipped: 1" in out
    assert "  video b: exact duplicates, kept once: 1" in out
    assert "  video c: reversed, swapped: 1" in out
    assert "no duration: 1 video" in out and "c" in out.split("no duration")[1]


def test_durations_from_the_videos(tmp_path):
    pytest.importorskip("av")
    from _video_helpers import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "v1.mp4", num_frames=20, fps=10)
    src = tmp_path / "labels.json"
    src.write_text(json.dumps([ls_min_record(1, "/data/upload/1/abcdef01-v1.mp4", [("X", 11, 40)])]))
    doc, out = imported(tmp_path, src, "--from", "labelstudio", "--videos", videos)
    assert doc["database"]["v1"]["fps"] == pytest.approx(10.0)
    assert doc["database"]["v1"]["duration"] == pytest.approx(2.0, abs=0.11)
    assert_close(segments(doc, "v1"), [("X", 1.0, doc["database"]["v1"]["duration"])])
    assert "partly outside the video, clipped: 1" in out  # frame 40 at 10 fps is beyond the 2 s video


def test_class_ids_sorted_fixed_by_labels_file_and_kept_from_into(tmp_path):
    src = tmp_path / "l.csv"
    src.write_text("video_id,start,end,label\nv1,0,1,b\nv1,1,2,a\nv2,0,1,c\n")
    doc, _ = imported(tmp_path, src, "--from", "csv")
    ids = {a["label"]: a["label_id"] for v in doc["database"].values() for a in v["annotations"]}
    assert ids == {"a": 0, "b": 1, "c": 2}
    names = tmp_path / "classes.txt"
    names.write_text("c\nb\n\na\nunused\n")
    doc, out = imported(tmp_path, src, "--from", "csv", "--labels", names)
    assert {a["label"]: a["label_id"] for v in doc["database"].values() for a in v["annotations"]} == \
        {"c": 0, "b": 1, "a": 2}
    assert "3 unused" in out
    names.write_text(json.dumps({"a": 5, "b": 7, "c": 0}))
    doc, _ = imported(tmp_path, src, "--from", "csv", "--labels", names)
    assert doc["database"]["v2"]["annotations"][0]["label_id"] == 0
    names.write_text("a\nb\n")
    outcome = cli(["import", src, "--from", "csv", "--labels", names, "--out", tmp_path / "x.json"])
    assert_refused(outcome, "--labels", "'c'", command="import")
    # --into keeps its ids and numbers new classes after them
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"database": {"old": {"subset": "training", "duration": 5.0, "annotations": [
        {"segment": [0, 1], "label": "z", "label_id": 0}, {"segment": [1, 2], "label": "b", "label_id": 4}]}}}))
    doc, out = imported(tmp_path, src, "--from", "csv", "--into", base, "--subset", "test")
    ids = {a["label"]: a["label_id"] for v in doc["database"].values() for a in v["annotations"]}
    assert ids == {"z": 0, "b": 4, "a": 5, "c": 6}
    assert doc["database"]["old"]["subset"] == "training" and doc["database"]["v1"]["subset"] == "test"
    assert "1 video of --into kept" in out
    again = tmp_path / "again.csv"
    again.write_text("video_id,start,end,label\nold,0,1,b\n")
    outcome = cli(["import", again, "--from", "csv", "--into", base, "--out", tmp_path / "y.json"])
    assert_refused(outcome, "--into", "'old'", command="import")
    assert not (tmp_path / "y.json").exists()


def test_activitynet_merge_keeps_ids_and_subsets_and_reads_results_files(tmp_path):
    a, b, r = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "r.json"
    a.write_text(json.dumps({"database": {"v1": {"subset": "validation", "duration": 9.0, "fps": 30, "annotations": [
        {"segment": [1, 2], "label": "Run", "label_id": 3}]}}}))
    b.write_text(json.dumps({"database": {"v2": {"subset": "test", "duration": 9.0, "annotations": [
        {"segment": [2, 4], "label": "Jump"}]}}}))
    r.write_text(json.dumps({"results": {"v3": [{"segment": [0.5, 1.5], "label": "Run", "score": 0.2}]}}))
    doc, _ = imported(tmp_path, a, b, r, "--from", "activitynet")
    db = doc["database"]
    assert (db["v1"]["subset"], db["v2"]["subset"], db["v3"]["subset"]) == ("validation", "test", "training")
    assert db["v1"]["annotations"][0]["label_id"] == 3 and db["v2"]["annotations"][0]["label_id"] == 4
    assert segments(doc, "v3") == [("Run", 0.5, 1.5)] and db["v3"]["annotations"][0]["label_id"] == 3
    outcome = cli(["import", a, a, "--from", "activitynet", "--out", tmp_path / "x.json"])
    assert_refused(outcome, "'v1'", "two sources", command="import")


def test_split_fractions_through_the_command(tmp_path):
    rows = ["video_id,start,end,label"] + [f"v{i},0,1,{'rare' if i == 7 else 'common'}" for i in range(20)]
    src = tmp_path / "l.csv"
    src.write_text("\n".join(rows) + "\n")
    doc, out = imported(tmp_path, src, "--from", "csv", "--split-fractions", "train=0.6,val=0.2,test=0.2",
                        "--seed", 3)
    subsets = [v["subset"] for v in doc["database"].values()]
    assert (subsets.count("train"), subsets.count("val"), subsets.count("test")) == (12, 4, 4)
    assert doc["database"]["v7"]["subset"] == "train"  # the only video of class 'rare'
    again, _ = imported(tmp_path, src, "--from", "csv", "--split-fractions", "train=0.6,val=0.2,test=0.2",
                        "--seed", 3)
    assert again == doc
    assert "subsets: test 4, train 12, val 4" in out


LS_BAD = [
    ("[{\"id\": 1, \"data\": {\"video\": \"/v.mp4\"}, \"annotations\": [{\"result\": "
     "[{\"type\": \"timelinelabels\", \"value\": {\"ranges\": [{\"start\": \"ten\", \"end\": 5}], "
     "\"timelinelabels\": [\"A\"]}}]}]}]", "ranges'[0].start"),
    ("[{\"id\": 1, \"data\": {\"text\": \"no video\"}, \"annotations\": []}]", "no video"),
    ("[{\"id\": 1, \"data\": {\"video\": \"/v.mp4\"}, \"annotations\": [{\"result\": "
     "[{\"type\": \"timelinelabels\", \"value\": {\"ranges\": 3, \"timelinelabels\": [\"A\"]}}]}]}]", "'ranges'"),
    ("[{\"id\": 1, \"data\": {\"video\": \"/v.mp4\"}, \"annotations\": [{\"result\"", "not valid JSON"),
    ("{\"database\": 1}", "task"),
]


@pytest.mark.parametrize("text, needle", LS_BAD)
def test_malformed_label_studio_files_one_line_exit_2_nothing_written(tmp_path, text, needle):
    src = tmp_path / "bad.json"
    src.write_text(text)
    out = tmp_path / "out.json"
    assert_refused(cli(["import", src, "--from", "labelstudio", "--fps", 25, "--out", out]), needle,
                   command="import")
    assert not out.exists()


@pytest.mark.parametrize("fmt, name, text, needle", [
    ("csv", "l.csv", "video,begin,end,label\nv,0,1,A\n", "no column video_id"),
    ("csv", "l.csv", "video_id,start,end,label\nv,zero,1,A\n", "line 2"),
    ("csv", "l.csv", "video_id,start,end,label\nv,0\n", "line 2"),
    ("elan", "x.eaf", "<ANNOTATION_DOCUMENT><HEADER", "not a readable ELAN document"),
    ("elan", "x.eaf", EAF.replace('TIME_VALUE="1200"', 'TIME_VALUE="soon"'), "not a readable ELAN document"),
    ("activitynet", "a.json", '{"database": {"v": {"subset": "t", "annotations": [{"segment": [1], "label": "A"}]}}}',
     "segment"),
    ("activitynet", "a.json", '{"database": {"v": {"annotations": []}}}', "subset"),
])
def test_malformed_files_of_every_format(tmp_path, fmt, name, text, needle):
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out.json"
    assert_refused(cli(["import", src, "--from", fmt, "--out", out]), needle, command="import")
    assert not out.exists()


def test_refusals_before_any_work(tmp_path):
    src = tmp_path / "l.csv"
    src.write_text("video_id,start,end,label\nv,0,1,A\n")
    before = src.read_bytes()
    assert_refused(cli(["import", src, "--from", "csv", "--out", src]), "--out", command="import")
    assert src.read_bytes() == before
    outcome = cli(["import", src, "--from", "dvd", "--out", tmp_path / "o.json"])
    assert outcome.rc == 2 and "invalid choice" in outcome.err and not (tmp_path / "o.json").exists()
    assert_refused(cli(["import", src, "--from", "csv", "--split-fractions", "a=0.5,b=0.4",
                            "--out", tmp_path / "o.json"]), "sum to 0.9", command="import")
    assert_refused(cli(["import", src, "--from", "csv", "--subset", "x", "--split-fractions", "a=1",
                            "--out", tmp_path / "o.json"]), "--subset", command="import")
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([ls_task(1, URL, REGIONS)]))
    line = assert_refused(cli(["import", ls, "--from", "labelstudio", "--out", tmp_path / "o.json"]),
                          "clip_01", "--fps", command="import")
    assert "frame" in line
    assert not (tmp_path / "o.json").exists()
