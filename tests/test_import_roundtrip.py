"""Properties of ``rdfa-s6 import``: ``import(export(x)) == x`` for every format both commands speak (Label Studio,
ELAN, CSV, ActivityNet JSON: labels identical, times within one frame, 1 ms for ELAN, exactly for CSV and JSON),
and the split by video (every class in training, every video in one subset, the sizes, the same split again)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from rdfa_s6.export import Options, export_results
from rdfa_s6.ingest import ReadOptions
from rdfa_s6.ingest.build import import_labels
from rdfa_s6.ingest.media import MediaSources
from rdfa_s6.ingest.rules import OVERLAP
from rdfa_s6.ingest.split import split_videos, subset_sizes

FPS = 25.0
#: labels that XML, CSV (formula-like starts included) and JSON must carry unchanged
LABELS = ["Pole Vault", "Café, \"au lait\"", "a<b & c>d", "-minus", "=SUM(A1)", "Diving", "跳"]
Seg = Tuple[str, float, float]

segment = st.tuples(st.sampled_from(LABELS), st.integers(0, 9000), st.integers(10, 2000)).map(
    lambda t: (t[0], t[1] / 100.0, (t[1] + t[2]) / 100.0))  # on a 10 ms grid, at least 0.1 s long
dataset = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
                          st.lists(segment, min_size=1, max_size=8, unique=True), min_size=1, max_size=4)


def export_then_import(x: Dict[str, List[Seg]], fmt: str, source_fmt: str, options: Options,
                       folder: Path, **read) -> Dict[str, List[Seg]]:
    results = {"results": {vid: [{"segment": [s, e], "label": lab, "score": 1.0} for lab, s, e in segs]
                           for vid, segs in x.items()}}
    out = folder / ("eaf" if fmt == "eaf" else f"out.{'csv' if fmt == 'csv' else 'json'}")
    export_results(results, fmt, out, options=options)
    doc, report = import_labels([out], source_fmt, MediaSources(fps=read.pop("fps", None)), ReadOptions(**read))
    assert report.videos == len(x)
    return {vid: [(a["label"], a["segment"][0], a["segment"][1]) for a in v["annotations"]]
            for vid, v in doc["database"].items()}


def assert_same(got: Dict[str, List[Seg]], want: Dict[str, List[Seg]], tol: float) -> None:
    """The same videos; each video's segments sorted by start, end, class; every segment read back is within
    ``tol`` seconds (start and end) of a segment of ``want`` of the same class, and the other way round; with
    ``tol == 0`` the lists are equal."""
    assert set(got) == set(want)
    for vid, segs in want.items():
        back = got[vid]
        assert back == sorted(back, key=lambda s: (s[1], s[2], s[0]))
        if tol == 0.0:
            assert back == sorted(segs, key=lambda s: (s[1], s[2], s[0]))
            continue
        for one, other in ((back, segs), (segs, back)):  # segments closer than a frame may become one
            for lab, a, b in one:
                assert any(lab == o[0] and abs(a - o[1]) <= tol and abs(b - o[2]) <= tol for o in other), \
                    ((lab, a, b), other, tol)


@settings(max_examples=25, deadline=None)
@given(dataset)
def test_label_studio_round_trip_is_exact_and_within_a_frame_once_edited(x):
    with tempfile.TemporaryDirectory() as tmp:
        back = export_then_import(x, "labelstudio", "labelstudio", Options(fps=FPS), Path(tmp), fps=FPS)
        assert_same(back, x, 0.0)  # meta.text holds the seconds and the frames agree with them
        tasks = json.loads((Path(tmp) / "out.json").read_text())
        for task in tasks:  # as if every region had been touched in Label Studio: only the frames are left
            for region in task["predictions"][0]["result"]:
                del region["meta"]
        (Path(tmp) / "out.json").write_text(json.dumps(tasks))
        doc, _ = import_labels([Path(tmp) / "out.json"], "labelstudio", MediaSources(fps=FPS), ReadOptions())
        edited = {vid: [(a["label"], a["segment"][0], a["segment"][1]) for a in v["annotations"]]
                  for vid, v in doc["database"].items()}
        assert_same(edited, x, 1.0 / FPS)


@settings(max_examples=25, deadline=None)
@given(dataset)
def test_elan_round_trip_is_exact_on_whole_milliseconds(x):
    with tempfile.TemporaryDirectory() as tmp:
        # the media URL carries the id (a folder of .eaf files names them by filenames.file_stems, which adds a
        # hash to an id that is not a plain file name, such as 'a_')
        back = export_then_import(x, "eaf", "elan", Options(video_url="/videos/{video_id}.mp4"), Path(tmp))
        assert_same(back, x, 0.0)  # times on a 10 ms grid: whole milliseconds


@settings(max_examples=25, deadline=None)
@given(dataset)
def test_csv_and_activitynet_round_trips_are_exact(x):
    with tempfile.TemporaryDirectory() as tmp:
        assert_same(export_then_import(x, "csv", "csv", Options(), Path(tmp)), x, 0.0)
        assert_same(export_then_import(x, "activitynet", "activitynet", Options(), Path(tmp)), x, 0.0)


@settings(max_examples=25, deadline=None)
@given(dataset, st.sampled_from(["training", "validation", "test"]))
def test_an_annotation_file_imports_as_itself(x, subset):
    doc = {"version": "v", "database": {vid: {"subset": subset, "duration": 200.0, "fps": 30.0, "annotations": [
        {"segment": [s, e], "label": lab, "label_id": sorted(LABELS).index(lab)} for lab, s, e in
        sorted(segs, key=lambda t: (t[1], t[2], t[0]))]} for vid, segs in x.items()}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.json"
        path.write_text(json.dumps(doc))
        back, report = import_labels([path], "activitynet", MediaSources())
    assert back["database"] == doc["database"]
    assert all(set(counts) == {OVERLAP} for counts in report.changes.values())  # overlaps are kept, and counted


classes_of = st.dictionaries(st.from_regex(r"v[0-9]{1,3}", fullmatch=True),
                             st.sets(st.sampled_from("ABCDEFGH"), max_size=3), min_size=1, max_size=40)
fractions = st.lists(st.integers(1, 10), min_size=1, max_size=4).map(
    lambda w: [(f"s{i}", x / sum(w)) for i, x in enumerate(w)])


@settings(max_examples=100, deadline=None)
@given(classes_of, fractions, st.integers(0, 2**32 - 1))
def test_split_puts_every_class_in_training_and_every_video_in_one_subset(videos, fracs, seed):
    split = split_videos(videos, fracs, seed)
    assert set(split) == set(videos) and set(split.values()) <= {name for name, _ in fracs}
    train = fracs[0][0]
    in_training = set().union(*(videos[v] for v in videos if split[v] == train))
    assert in_training == set().union(*videos.values())
    sizes = subset_sizes(len(videos), fracs)
    assert sum(sizes) == len(videos) and all(abs(n - f * len(videos)) < 1 for n, (_, f) in zip(sizes, fracs))
    for (name, _), size in zip(fracs[1:], sizes[1:]):
        assert list(split.values()).count(name) <= size
    # training grows beyond its size only by the videos it needs for its classes (at most one per class)
    forced = len(set().union(*videos.values()))
    assert list(split.values()).count(train) <= max(sizes[0], forced) + sum(sizes[1:])
    if forced == 0:  # no class to place: the sizes are exact
        assert [list(split.values()).count(name) for name, _ in fracs] == sizes
    assert split_videos(dict(reversed(list(videos.items()))), fracs, seed) == split  # order of the input is no input
