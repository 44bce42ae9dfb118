"""Detector.stream (rdfa_s6.stream): a short stream equals predict; the final set does not depend on how the rows
were chunked, nothing is emitted twice, every detection keeps the stated delay bound; the windowing's arithmetic
against hand-computed values; the incremental clip cutter against the clip rule; watch on feature chunks (a folder
and a pipe) through the command line."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdfa_s6.api import Detector
from rdfa_s6.cli import main
from rdfa_s6.config import load_config
from rdfa_s6.data.coords import covered_seconds
from rdfa_s6.errors import DataError, UserError
from rdfa_s6.models import build_detector
from rdfa_s6.stream import DetectionStream, StreamDetection, Windowing
from rdfa_s6.video.clips import ClipCutter, clip_frame_indices

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["model.embed_dim=8", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=8",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=32"]
DIM = 6


def _detector(overrides=(), seed: int = 0) -> Detector:
    """A random-init tiny detector (max_seq_len 32): enough candidates above the thresholds to exercise NMS."""
    cfg = load_config("demo", [*TINY, *overrides])
    torch.manual_seed(seed)
    model = build_detector(cfg, input_dim=DIM, num_classes=3)
    return Detector(model, cfg, {0: "a", 1: "b", 2: "c"}, precision="fp32")


@pytest.fixture(scope="module")
def det() -> Detector:
    return _detector()


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x[n // 3 : n // 3 + 9] += 3.0  # a burst: some confident, overlapping candidates
    return x


def _tuples(dets):
    return [(d.start, d.end, d.label, d.label_id, d.score) for d in dets]


def _run(det: Detector, rows: np.ndarray, cuts, **kwargs):
    """(live detections per push, detections of close()) with pushes cut at ``cuts``."""
    s = det.stream(30.0, **kwargs)
    live, pos = [], 0
    for cut in [*sorted(cuts), rows.shape[0]]:
        got = s.push(rows[pos:cut])
        assert all(d.emitted <= s.stream_time + 1e-4 for d in got)  # nothing reported before its rows arrived
        live.append(got)
        pos = cut
    return live, s.close(), s


@pytest.mark.parametrize("n", [3, 5, 31, 32])
def test_a_stream_no_longer_than_one_window_gives_exactly_predict(det, n):
    rows = _rows(n, seed=n)
    ref = det.predict(rows, fps=30.0)
    live, rest, _ = _run(det, rows, [n // 2])
    assert not any(live)  # one window: nothing is final before the stream ends
    assert _tuples(rest) == _tuples(ref) and ref
    assert all(isinstance(d, StreamDetection) and d.emitted == round(covered_seconds(n, 30.0, 4, 16), 4)
               for d in rest)


def test_exactness_holds_with_downsampling_and_a_longer_window():
    det = _detector(["data.downsample_rate=2"], seed=1)
    rows = _rows(90, seed=2)  # 45 model steps: one window of 64
    ref = det.predict(rows, fps=25.0, stride=8, window=32)
    s = det.stream(25.0, stride=8, window=32, window_steps=64)
    got = s.push(rows[:17]) + s.push(rows[17:]) + s.close()
    assert _tuples(got) == _tuples(ref) and ref


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 150), max_size=10), hop=st.sampled_from([None, 8, 32]))
def test_the_final_set_does_not_depend_on_chunking(det, cuts, hop):
    rows = _rows(150, seed=7)
    ref_live, ref_rest, _ = _run(det, rows, [], hop_steps=hop)
    live, rest, s = _run(det, rows, cuts, hop_steps=hop)
    flat = [d for batch in live for d in batch]
    ref = [d for batch in ref_live for d in batch] + ref_rest
    # the same detections, the same emission times, whatever the chunking
    assert sorted(_tuples(flat + rest)) == sorted(_tuples(ref))
    assert sorted(d.emitted for d in flat + rest) == sorted(d.emitted for d in ref)
    # never duplicated: every detection once (exact twins would be the same detection emitted twice)
    keys = _tuples(flat + rest)
    assert len(keys) == len(set(keys)) == s.emitted
    # the stated bound: reported by max(end + D, the first report) (times rounded to 0.1 ms)
    w = s.windowing
    assert all(d.emitted <= max(d.end + w.delay_bound, w.first_report) + 2e-4 for d in flat)


def test_windows_are_placed_as_stated_and_their_times_are_the_coords_formula(det):
    rows = _rows(100, seed=3)
    s = det.stream(30.0, hop_steps=16)  # L = 32, H = 16
    w = s.windowing
    assert (w.window, w.hop) == (32, 16)
    got = [s.push(rows[i : i + 1]) for i in range(100)]
    # window k runs when step k*16 + 32 arrives (row k*16 + 33): rows 33, 49, 65, 81, 97
    ran = [i + 1 for i, g in enumerate(got) if g]
    assert set(ran) <= {33, 49, 65, 81, 97} and 33 in ran
    assert s.windows_run == 5
    # emitted = seconds covered by those rows: ((rows - 1) * 4 + 16) / 30, by hand
    for i, g in enumerate(got):
        assert all(d.emitted == round(((i + 1 - 1) * 4 + 16) / 30, 4) for d in g)
    # the bound: D = ((32 + 16) / 2 * 4 + 8) / 30 s; the first report after (32 * 4 + 16) / 30 s
    assert w.delay_bound == pytest.approx((24 * 4 + 8) / 30)
    assert w.first_report == pytest.approx((32 * 4 + 16) / 30)
    # zones tile the stream and lie inside their windows
    for k in range(1, 6):
        assert w.zone(k)[0] == w.zone(k - 1)[1]
        assert w.start(k) < w.zone(k)[0] < w.zone(k)[1] < w.start(k) + w.window
    assert w.zone(0)[0] == -math.inf


def test_downsampled_streams_count_model_steps_in_rows():
    w = Windowing(window=10, hop=4, fps=30.0, stride=4.0, clip=16.0, rate=3)
    assert w.step_stride == 12.0
    assert w.raw_rows_at(11) == 31  # step 10 is row 30
    assert w.first_report == pytest.approx((30 * 4 + 16) / 30)
    assert w.delay_bound == pytest.approx((7 * 12 + 8) / 30)


def test_a_long_stream_keeps_its_memory_bounded(det):
    s = det.stream(30.0)
    rows = _rows(64, seed=4)
    for _ in range(12):
        s.push(rows)
    assert s._buf is not None and s._buf.shape[0] == 32 + 16 + 1
    assert len(s._recent) <= 3 * det.config.infer.max_seg_num
    assert s.rows == 64 * 12 and s.windows_run == (64 * 12 - 33) // 16 + 1


def test_min_score_only_filters_what_is_returned(det):
    rows = _rows(120, seed=5)
    every = [d for b in _run(det, rows, [50])[0] for d in b]
    cut = float(np.median([d.score for d in every]))
    some = [d for b in _run(det, rows, [50], min_score=cut)[0] for d in b]
    assert some and len(some) < len(every)
    assert _tuples(some) == [t for t in _tuples(every) if t[4] >= cut]


def test_bad_input_and_settings_are_one_line_errors(det):
    s = det.stream(30.0)
    with pytest.raises(DataError, match="C=5 channels"):
        s.push(np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match="NaN"):
        s.push(np.full((3, DIM), np.nan, np.float32))
    assert s.push(np.zeros((0, DIM), np.float32)) == []
    s.close()
    assert s.close() == []
    with pytest.raises(UserError, match="closed"):
        s.push(np.zeros((1, DIM), np.float32))
    with pytest.raises(UserError, match="hop_steps"):
        det.stream(30.0, hop_steps=40)
    with pytest.raises(UserError, match="window_steps"):
        det.stream(30.0, window_steps=0)
    with pytest.raises(UserError, match="fps is required"):
        det.stream()
    with pytest.raises(UserError, match="force_upsampling"):
        DetectionStream(_detector(["data.force_upsampling=true"]), 30.0)


@pytest.mark.parametrize("w,s", [(16, 4), (4, 4), (3, 5), (1, 1), (8, 3)])
def test_the_clip_cutter_gives_the_clips_of_the_clip_rule(w, s):
    for n in (0, 1, 2, 7, 16, 23, 40):
        cutter = ClipCutter(w, s)
        clips = [c for k in range(n) if (c := cutter.push(np.full((1, 1, 1), k, np.int64))) is not None]
        tail = cutter.finish()
        clips += [tail] if tail is not None else []
        got = np.array([c.reshape(-1) for c in clips]).reshape(-1, w)
        np.testing.assert_array_equal(got, clip_frame_indices(n, w, s))
        assert len(cutter._buf) <= w


def _pipe_bytes(rows: np.ndarray, cuts) -> bytes:
    out = io.BytesIO()
    pos = 0
    for cut in [*cuts, rows.shape[0]]:
        np.save(out, rows[pos:cut])
        pos = cut
    return out.getvalue()


@pytest.fixture(scope="module")
def saved(det, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream_model") / "model"
    from rdfa_s6.checkpoint import save_checkpoint

    save_checkpoint(path, det.model, det.config, meta={"label_names": {str(k): v for k, v in det.label_names.items()}})
    return path


def test_watch_a_folder_and_a_pipe_of_chunks_gives_the_api_detections(det, saved, tmp_path, monkeypatch, capsys):
    rows = _rows(150, seed=9)
    ref = sorted(_tuples([d for b in _run(det, rows, [])[0] for d in b] + _run(det, rows, [])[1]))
    folder = tmp_path / "chunks"
    folder.mkdir()
    for i, (a, b) in enumerate([(0, 40), (40, 41), (41, 150)]):
        np.save(folder / f"c{i:03d}.npy", rows[a:b])
    (folder / "END").touch()
    assert main(["watch", str(folder), "--model", str(saved), "--fps", "30", "--out", str(tmp_path / "d.jsonl"),
                 "--no-progress"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    got = sorted((d["segment"][0], d["segment"][1], d["label"], d["label_id"], d["score"]) for d in lines)
    assert got == ref
    assert "the source ended" in capsys.readouterr().err

    class Stdin:
        buffer = io.BytesIO(_pipe_bytes(rows, [3, 90]))

    monkeypatch.setattr("sys.stdin", Stdin)
    assert main(["watch", "-", "--model", str(saved), "--fps", "30", "--no-progress"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sorted((d["segment"][0], d["segment"][1], d["label"], d["label_id"], d["score"]) for d in out) == ref


def test_watch_refuses_bad_sources_and_options_in_one_line(saved, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.npy").write_bytes(b"not an array")
    assert main(["watch", str(bad), "--model", str(saved), "--fps", "30", "--no-progress"]) == 2
    assert "a.npy: not a .npy array" in capsys.readouterr().err
    assert main(["watch", str(tmp_path / "missing.mp4"), "--model", str(saved), "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["watch", str(bad), "--model", str(saved), "--hop-steps", "0"]) == 2
    assert "--hop-steps: expected" in capsys.readouterr().err
    config = (saved / "config.json").read_bytes()
    assert main(["watch", str(bad), "--model", str(saved), "--out", str(saved / "config.json")]) == 2
    assert "--out" in capsys.readouterr().err and (saved / "config.json").read_bytes() == config  # an input
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    (bad / "a.npy").unlink()
    (bad / "END").touch()
    assert main(["watch", str(bad), "--model", str(saved), "--fps", "30", "--out", str(tmp_path / "link.jsonl")]) == 2
    assert "symbolic link" in capsys.readouterr().err and not (tmp_path / "elsewhere.jsonl").exists()
    (bad / "END").unlink()
    assert main(["watch", str(bad), "--model", str(saved), "--fps", "30", "--timeout", "0.3", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no data for 0.3 s (--timeout)" in err[0]
