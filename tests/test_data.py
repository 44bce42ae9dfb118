"""Data pipeline (docs/model.md §2.1-2.7): coordinates, crops, resizing, padding, feature and annotation readers,
the synthetic generator, the dataset and ``prepare_data``; plus fuzzing of the two readers.
"""
from __future__ import annotations

import io
import json
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rdfa_s6.config.schema import DataConfig
from rdfa_s6.data.annotations import load_annotations, parse_annotations
from rdfa_s6.data.coords import seconds_to_steps, steps_to_seconds
from rdfa_s6.data.dataset import Collate, TALDataset, split_records
from rdfa_s6.data.features import feature_reader
from rdfa_s6.data.features import FeatureReader
from rdfa_s6.data.prepare import prepare_data
from rdfa_s6.data.synth import FEAT_STRIDE, FPS, NUM_FRAMES, SynthSpec, generate
from rdfa_s6.data.transforms import padded_length, pad_batch, random_crop, resize_to_length, resized_stride
from rdfa_s6.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------------------------
# Coordinates (docs/model.md §2.4)
# --------------------------------------------------------------------------------------------------------------
def test_thumos_example_and_round_trip_float():
    # (10 * 30 - 0.5 * 16) / 4 = (300 - 8) / 4 = 73.0 ; back: (73 * 4 + 8) / 30 = 300 / 30 = 10.0
    assert seconds_to_steps(10.0, 30.0, 4, 16) == pytest.approx(73.0)
    assert steps_to_seconds(73.0, 30.0, 4, 16) == pytest.approx(10.0)
    for sec in (0.0, 0.2, 1.0, 33.3, 1673.0):
        assert steps_to_seconds(seconds_to_steps(sec, 29.97, 8, 16), 29.97, 8, 16) == pytest.approx(sec)
    # the start of the video (t = 0) is half a clip before the first clip centre: -8 / 4 = -2 steps, kept
    assert seconds_to_steps(0.0, 30.0, 4, 16) == pytest.approx(-2.0)


def test_round_trip_numpy_and_tensor():
    sec = np.array([[0.5, 2.25], [10.0, 100.0]])
    steps = seconds_to_steps(sec, 30.0, 4, 16)
    assert isinstance(steps, np.ndarray)
    np.testing.assert_allclose(steps, (sec * 30 - 8) / 4)
    np.testing.assert_allclose(steps_to_seconds(steps, 30.0, 4, 16), sec)
    t = torch.tensor([73.0, 0.0])
    back = steps_to_seconds(t, 30.0, 4, 16)
    assert isinstance(back, torch.Tensor)
    torch.testing.assert_close(back, torch.tensor([10.0, 8 / 30]))


def test_steps_to_seconds_clamps_to_duration():
    # step -10 -> (-40 + 8) / 30 < 0 -> 0; step 1000 -> 4008 / 30 = 133.6 > 50 -> 50
    assert steps_to_seconds(-10.0, 30.0, 4, 16, duration=50.0) == 0.0
    assert steps_to_seconds(1000.0, 30.0, 4, 16, duration=50.0) == 50.0
    assert steps_to_seconds(73.0, 30.0, 4, 16, duration=50.0) == pytest.approx(10.0)
    arr = steps_to_seconds(np.array([-10.0, 73.0, 1000.0]), 30.0, 4, 16, duration=50.0)
    np.testing.assert_allclose(arr, [0.0, 10.0, 50.0])
    ten = steps_to_seconds(torch.tensor([-10.0, 73.0, 1000.0]), 30.0, 4, 16, duration=50.0)
    torch.testing.assert_close(ten, torch.tensor([0.0, 10.0, 50.0]))
    with pytest.raises(ValueError):
        seconds_to_steps(1.0, 0.0, 4, 16)
    with pytest.raises(ValueError):
        steps_to_seconds(1.0, 30.0, 0, 16)


# --------------------------------------------------------------------------------------------------------------
# random_crop (docs/model.md §2.6)
# --------------------------------------------------------------------------------------------------------------
class FixedStart(random.Random):
    """A random source whose every randint returns ``value`` (the window start)."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def randint(self, a: int, b: int) -> int:
        assert a <= self.value <= b
        return self.value


def _feats(t: int, c: int = 2) -> torch.Tensor:
    return torch.arange(c * t, dtype=torch.float32).reshape(c, t)


def test_crop_short_video_without_crop_ratio_is_unchanged():
    feats = _feats(30)
    segs = np.array([[1.0, 5.0]], dtype=np.float32)
    labels = np.array([3])
    out_f, out_s, out_l = random_crop(feats, segs, labels, 100, 0.5, None, random.Random(0))
    assert out_f is feats and out_s is segs and out_l is labels


def test_crop_short_video_with_crop_ratio_length_range():
    # T = 100 <= 200: target ~ U_int[round(0.9 * 100), round(1.0 * 100)] = [90, 100]
    feats = _feats(100)
    segs = np.array([[40.0, 60.0]], dtype=np.float32)
    lengths = set()
    for seed in range(60):
        out_f, out_s, _ = random_crop(feats, segs, np.array([0]), 200, 0.5, [0.9, 1.0], random.Random(seed))
        lengths.add(out_f.shape[1])
        assert len(out_s) == 1  # a 20-step action in the middle always keeps >= 50 % in a >= 90-step window
    assert lengths <= set(range(90, 101)) and len(lengths) > 3


def test_crop_long_video_gives_exactly_max_seq_len():
    feats = _feats(500)
    segs = np.array([[10.0, 20.0], [300.0, 340.0]], dtype=np.float32)
    for seed in range(10):
        out_f, out_s, out_l = random_crop(feats, segs, np.array([1, 2]), 128, 0.5, [0.9, 1.0], random.Random(seed))
        assert out_f.shape == (2, 128)
        start = int(out_f[0, 0].item())  # feats[0, t] == t: the first value is the window start
        torch.testing.assert_close(out_f, feats[:, start:start + 128])
        assert len(out_s) >= 1  # a window keeping a GT exists, so one is found within 200 attempts
        assert (out_s >= 0).all() and (out_s <= 128).all()


def test_crop_window_boundary_keep_clip_shift():
    # T = 20 > max_seq_len = 10, window start fixed at 5 -> window [5, 15).
    segs = np.array([
        [3.0, 7.0],    # length 4, inside [5, 7] = 2 -> 0.5 >= 0.5 kept, clipped [5, 7] -> shifted [0, 2]
        [13.0, 18.0],  # length 5, inside [13, 15] = 2 -> 0.4 < 0.5 dropped
        [14.0, 16.0],  # length 2, inside [14, 15] = 1 -> 0.5 kept, clipped [14, 15] -> [9, 10]
        [8.0, 10.0],   # fully inside -> [3, 5]
        [0.0, 4.0],    # fully outside -> dropped
        [2.0, 7.9],    # length 5.9, inside 2.9 -> 0.4915 < 0.5 dropped
    ], dtype=np.float64)
    labels = np.array([0, 1, 2, 3, 4, 5])
    feats = _feats(20)
    out_f, out_s, out_l = random_crop(feats, segs, labels, 10, 0.5, None, FixedStart(5))
    torch.testing.assert_close(out_f, feats[:, 5:15])
    np.testing.assert_allclose(out_s, [[0.0, 2.0], [9.0, 10.0], [3.0, 5.0]])
    assert out_l.tolist() == [0, 2, 3]


def test_crop_video_without_segments():
    feats = _feats(50)
    segs = np.zeros((0, 2), dtype=np.float32)
    out_f, out_s, out_l = random_crop(feats, segs, np.zeros(0, dtype=np.int64), 16, 0.5, [0.9, 1.0], FixedStart(7))
    torch.testing.assert_close(out_f, feats[:, 7:23])
    assert out_s.shape == (0, 2) and out_l.shape == (0,)


def test_crop_zero_length_segment_never_counts():
    feats = _feats(20)
    # window [5, 15): the zero-length GT at 7 lies inside but has no length: 0/0 is not >= 0.5
    segs = np.array([[7.0, 7.0], [8.0, 12.0]], dtype=np.float32)
    out_f, out_s, out_l = random_crop(feats, segs, np.array([1, 2]), 10, 0.5, None, FixedStart(5))
    np.testing.assert_allclose(out_s, [[3.0, 7.0]])
    assert out_l.tolist() == [2]
    # only zero-length GTs: no window is accepted; after 200 attempts the last window is used, empty
    out_f, out_s, out_l = random_crop(feats, segs[:1], np.array([1]), 10, 0.5, None, random.Random(3))
    assert out_f.shape == (2, 10) and out_s.shape == (0, 2) and len(out_l) == 0


def test_crop_deterministic_for_fixed_seed():
    feats = _feats(300)
    segs = np.array([[10.0, 40.0], [100.0, 130.0], [250.0, 280.0]], dtype=np.float32)
    labels = np.array([0, 1, 2])
    runs = [random_crop(feats, segs, labels, 64, 0.5, [0.9, 1.0], random.Random(1234)) for _ in range(2)]
    torch.testing.assert_close(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    starts = {int(random_crop(feats, segs, labels, 64, 0.5, None, random.Random(s))[0][0, 0]) for s in range(10)}
    assert len(starts) > 1


# --------------------------------------------------------------------------------------------------------------
# resize (docs/model.md §2.5), padding and masks (docs/model.md §2.7)
# --------------------------------------------------------------------------------------------------------------
def test_resize_to_length_linear_align_corners_false():
    feats = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    # output i samples source position (i + 0.5) * 4 / 8 - 0.5 = 0.5 i - 0.25, clamped to [0, 3];
    # the features equal their index, so the output equals that position
    expected = torch.tensor([[0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]])
    torch.testing.assert_close(resize_to_length(feats, 8), expected)
    assert resize_to_length(feats, 4) is feats
    down = resize_to_length(torch.randn(3, 500), 192)
    assert down.shape == (3, 192) and down.dtype == torch.float32


def test_resized_stride_formula():
    # ((T_raw - 1) * 8 + 16) / 192 = (99 * 8 + 16) / 192 = 808 / 192 = 4.2083333
    stride, frames = resized_stride(100, 8, 16, 192)
    assert stride == pytest.approx(808 / 192) and stride == pytest.approx(4.2083333)
    assert frames == stride
    # 192 raw steps resized to 192: ((191 * 8) + 16) / 192 = 1544 / 192 = 8.0416667
    assert resized_stride(192, 8, 16, 192)[0] == pytest.approx(1544 / 192)


def test_padded_length_rules():
    assert padded_length([100, 50], 2304, 32, training=True) == 2304
    assert padded_length([2304], 2304, 32, training=True) == 2304
    with pytest.raises(ValueError):
        padded_length([2305, 10], 2304, 32, training=True)
    assert padded_length([100], 2304, 32, training=False) == 2304
    assert padded_length([2304], 2304, 32, training=False) == 2304
    assert padded_length([2305], 2304, 32, training=False) == 2336  # ceil(2305 / 32) = 73 -> 73 * 32
    assert padded_length([3000], 2304, 32, training=False) == 3008  # ceil(93.75) = 94 -> 3008
    assert padded_length([2336], 2304, 32, training=False) == 2336  # already a multiple


def test_pad_batch_values_and_mask():
    a, b = torch.randn(3, 5), torch.randn(3, 2)
    feats, mask = pad_batch([a, b], 8, 4, training=True)
    assert feats.shape == (2, 3, 8) and mask.shape == (2, 1, 8) and mask.dtype == torch.bool
    assert mask[0, 0].tolist() == [True] * 5 + [False] * 3
    assert mask[1, 0].tolist() == [True] * 2 + [False] * 6
    torch.testing.assert_close(feats[0, :, :5], a)
    torch.testing.assert_close(feats[1, :, :2], b)
    assert feats[0, :, 5:].abs().sum() == 0 and feats[1, :, 2:].abs().sum() == 0
    with pytest.raises(ValueError):
        pad_batch([torch.randn(3, 9)], 8, 4, training=True)
    feats, mask = pad_batch([torch.randn(3, 9)], 8, 4, training=False)
    assert feats.shape == (1, 3, 12) and mask[0, 0].sum() == 9 and not mask[0, 0, 9:].any()


# --------------------------------------------------------------------------------------------------------------
# FeatureReader (docs/model.md §2.2)
# --------------------------------------------------------------------------------------------------------------
def _tc(t: int = 6, c: int = 3, dtype=np.float16) -> np.ndarray:
    return (np.arange(t * c).reshape(t, c) / 4).astype(dtype)


def test_reader_npy_float16_transposed_and_downsampled(tmp_path):
    arr = _tc()
    np.save(tmp_path / "pre_vid_suf.npy", arr)
    reader = FeatureReader(tmp_path, prefix="pre_", suffix="_suf", ext=".npy")
    feats = reader.load("vid")
    assert feats.dtype == torch.float32 and feats.shape == (3, 6) and feats.is_contiguous()
    torch.testing.assert_close(feats, torch.from_numpy(arr.astype(np.float32).T))
    feats2 = FeatureReader(tmp_path, prefix="pre_", suffix="_suf", ext=".npy", downsample_rate=2).load("vid")
    # steps 0, 2, 4 kept
    torch.testing.assert_close(feats2, torch.from_numpy(arr.astype(np.float32)[[0, 2, 4]].T))


def test_reader_npz(tmp_path):
    arr = _tc(dtype=np.float64)
    np.savez(tmp_path / "a.npz", other=np.zeros((2, 2), np.float32), feats=arr)
    np.savez(tmp_path / "b.npz", x=arr)
    for vid in ("a", "b"):
        feats = FeatureReader(tmp_path, ext=".npz").load(vid)
        assert feats.dtype == torch.float32
        torch.testing.assert_close(feats, torch.from_numpy(arr.astype(np.float32).T))


def test_reader_pt_float16_and_dict(tmp_path):
    arr = torch.from_numpy(_tc())
    torch.save(arr, tmp_path / "a.pt")
    torch.save({"feats": arr}, tmp_path / "b.pt")
    torch.save(arr.to(torch.bfloat16), tmp_path / "c.pt")
    for vid in ("a", "b", "c"):
        feats = FeatureReader(tmp_path, ext=".pt", downsample_rate=3, input_dim=3).load(vid)
        assert feats.dtype == torch.float32 and feats.shape == (3, 2)
        torch.testing.assert_close(feats, arr.float()[::3].t())  # values exact in float16 and bfloat16


def _data_error(reader: FeatureReader, vid: str, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        reader.load(vid)
    msg = str(info.value)
    assert vid in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_reader_errors(tmp_path):
    np.save(tmp_path / "rank3.npy", np.zeros((2, 3, 4), np.float32))
    np.save(tmp_path / "chan.npy", np.zeros((5, 4), np.float32))
    np.save(tmp_path / "int.npy", np.zeros((5, 3), np.int32))
    bad = np.zeros((5, 3), np.float32)
    bad[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    inf = np.zeros((5, 3), np.float32)
    inf[2, 0] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    reader = FeatureReader(tmp_path, ext=".npy", input_dim=3)
    _data_error(reader, "missing", "not found")
    _data_error(reader, "rank3", "[T, C]", "(2, 3, 4)")
    _data_error(reader, "chan", "4 channels", "expected 3")
    _data_error(reader, "int", "int32")
    _data_error(reader, "nan", "NaN", "step 3")
    _data_error(reader, "inf", "step 2")
    _data_error(reader, "empty", "zero time steps")
    torch.save(torch.zeros(5, 3, dtype=torch.int64), tmp_path / "int.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({"a": torch.zeros(2, 3), "b": torch.zeros(2, 3)}, tmp_path / "two.pt")
    pt = FeatureReader(tmp_path, ext=".pt")
    _data_error(pt, "int", "int64")
    _data_error(pt, "list", "expected a tensor")
    _data_error(pt, "two", "one tensor")
    with pytest.raises(DataError):
        FeatureReader(tmp_path, ext=".h5")
    with pytest.raises(DataError):
        FeatureReader(tmp_path, downsample_rate=0)


class _Exploit:
    """Unpickling this object would create ``marker`` (i.e. run arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_reader_never_unpickles_arbitrary_objects(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save(_Exploit(marker), tmp_path / "zip.pt")                 # torch's zip format
    with open(tmp_path / "legacy.pt", "wb") as fh:                    # a plain pickle
        pickle.dump(_Exploit(marker), fh)
    torch.save({"feats": torch.zeros(2, 3), "evil": _Exploit(marker)}, tmp_path / "mixed.pt")
    np.save(tmp_path / "obj.npy", np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    assert not marker.exists()
    for vid in ("zip", "legacy", "mixed"):
        _data_error(FeatureReader(tmp_path, ext=".pt"), vid)
        assert not marker.exists(), vid
    _data_error(FeatureReader(tmp_path, ext=".npy"), "obj")
    assert not marker.exists()
    # sanity: the payload does work when unpickled without protection
    pickle.loads(pickle.dumps(_Exploit(marker))).close()
    assert marker.exists()


def test_reader_big_endian_npy(tmp_path):
    arr = np.arange(6, dtype=">f4").reshape(3, 2)
    np.save(tmp_path / "be.npy", arr)
    feats = FeatureReader(tmp_path).load("be")
    torch.testing.assert_close(feats, torch.tensor(arr.astype(np.float32).T))


@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_reader_wrong_container_for_extension(tmp_path, ext):
    buf = io.BytesIO()
    if ext == ".npy":
        np.savez(buf, feats=np.zeros((3, 2), np.float32))
    else:
        np.save(buf, np.zeros((3, 2), np.float32))
    (tmp_path / f"v{ext}").write_bytes(buf.getvalue())
    try:
        FeatureReader(tmp_path, ext=ext).load("v")  # loading it is acceptable too
    except DataError:
        pass


@pytest.mark.parametrize("kind", ["sparse", "float8"])
def test_reader_exotic_pt_tensors(tmp_path, kind):
    t = torch.zeros(3, 2)
    t = t.to_sparse() if kind == "sparse" else t.to(torch.float8_e4m3fn)
    torch.save(t, tmp_path / "v.pt")
    try:
        feats = FeatureReader(tmp_path, ext=".pt").load("v")
        assert feats.dtype == torch.float32 and feats.shape == (2, 3)
    except DataError:
        pass


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
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                        max_leaves=12)


def _mostly_valid(good, keys, values):
    """``good`` dicts, one time in four with up to two fields replaced by ``values`` and/or one removed."""
    def mutate(d):
        edits = st.tuples(st.dictionaries(st.sampled_from(keys), values, max_size=2), st.sets(st.sampled_from(keys), max_size=1))
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


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _valid_bytes(kind):
    buf = io.BytesIO()
    if kind == "npy":
        np.save(buf, np.zeros((3, 2), np.float32))
    elif kind == "npz":
        np.savez(buf, feats=np.zeros((3, 2), np.float32))
    else:
        torch.save(torch.zeros(3, 2), buf)
    return buf.getvalue()


def _mutated(kind):
    base = _valid_bytes(kind)
    return st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(base)).map(lambda n: base[:n]),
        st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), min_size=1, max_size=6).map(
            lambda edits: bytes(_apply(base, edits))),
    )


def _apply(base, edits):
    out = bytearray(base)
    for pos, value in edits:
        out[pos] = value
    return out


def _load_only_data_errors(directory: Path, ext: str, data: bytes):
    (directory / f"fuzz{ext}").write_bytes(data)
    try:
        feats = FeatureReader(directory, ext=ext).load("fuzz")
    except DataError:
        return
    assert feats.dtype == torch.float32 and feats.dim() == 2 and torch.isfinite(feats).all()


@FUZZ
@given(data=_mutated("npz"))
def test_fuzz_reader_npz_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".npz", data)


@FUZZ
@given(data=st.binary(max_size=200).filter(lambda b: not b.startswith(b"\x93NUMPY") and not b.startswith(b"PK")))
def test_fuzz_reader_npy_random_bytes_raises_only_data_error(fuzz_dir, data):
    """Random bytes that are neither an .npy header nor a zip: DataError (or, impossibly, success)."""
    _load_only_data_errors(fuzz_dir, ".npy", data)


@FUZZ
@given(data=_mutated("npy"))
@example(data=b"\x93NUMPY\x01\x00\x06\x00{'a':1")
def test_fuzz_reader_npy_header_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".npy", data)


def test_reader_npz_member_with_garbled_header(tmp_path):
    with zipfile.ZipFile(tmp_path / "v.npz", "w") as zf:
        zf.writestr("feats.npy", b"\x93NUMPY\x01\x00\x06\x00{'a':1")
    with pytest.raises(DataError, match="'v'"):
        FeatureReader(tmp_path, ext=".npz").load("v")


@FUZZ
@given(data=_mutated("pt"))
@example(data=b"h\x93")
@example(data=b".")
@example(data=b"J\x00")
def test_fuzz_reader_pt_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".pt", data)


# --------------------------------------------------------------------------------------------------------------
# Synthetic data, dataset, prepare_data
# --------------------------------------------------------------------------------------------------------------
SMALL = SynthSpec(train_videos=6, val_videos=2, test_videos=3, num_classes=3, dim=16, min_len=40, max_len=70,
                  action_len=(4, 12), seed=3)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert generate(root, SMALL) == {"training": 6, "validation": 2, "test": 3}
    return root


def _cfg(**kw) -> DataConfig:
    base = dict(file_ext=".npy", train_split="training", test_split="test", max_seq_len=48)
    base.update(kw)
    return DataConfig(**base)


def test_synth_dataset_loads_and_segments_fit(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    assert len(ann.videos) == 11 and set(ann.subsets()) == {"training", "validation", "test"}
    reader = FeatureReader(synth_root / "features", ext=".npy", input_dim=SMALL.dim)
    total = 0
    for rec in ann.videos.values():
        feats = reader.load(rec.video_id)
        t = feats.shape[1]
        assert feats.shape[0] == SMALL.dim and SMALL.min_len <= t <= SMALL.max_len
        # the duration covers the T clips: at least up to the last clip's centre, at most T whole clips
        assert rec.fps == FPS
        assert ((t - 1) * FEAT_STRIDE + NUM_FRAMES / 2) / FPS - 1e-3 <= rec.duration
        assert rec.duration <= (t * FEAT_STRIDE + NUM_FRAMES) / FPS + 1e-3
        assert np.all(rec.segments <= rec.duration + 1e-9)
        steps = seconds_to_steps(rec.segments, rec.fps, FEAT_STRIDE, NUM_FRAMES)
        # seconds are rounded to 1 ms: at most 0.0005 * 30 / 4 = 0.00375 steps off the integer grid
        assert np.all(steps >= -0.00375) and np.all(steps <= t)
        np.testing.assert_allclose(steps, np.round(steps), atol=0.00375)
        assert np.all(steps[:, 1] - steps[:, 0] >= SMALL.action_len[0] - 0.01)
        assert np.all(rec.labels < SMALL.num_classes)
        total += len(rec.labels)
    assert total > 0


def test_dataset_training_crops_are_reproducible(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    cfg = _cfg()
    records = split_records(ann, "training")
    reader = feature_reader(cfg, synth_root / "features", SMALL.dim)

    def samples(epoch, seed=5):
        ds = TALDataset(records, reader, cfg, training=True, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i] for i in range(len(ds))]

    first, again, later = samples(1), samples(1), samples(2)
    for a, b in zip(first, again):
        torch.testing.assert_close(a["feats"], b["feats"])
        torch.testing.assert_close(a["segments"], b["segments"])
        assert torch.equal(a["labels"], b["labels"])
    differs = any(a["feats"].shape != b["feats"].shape or not torch.equal(a["feats"], b["feats"])
                  for a, b in zip(first, later))
    assert differs
    for s in first + later:
        t = s["feats"].shape[1]
        assert t <= cfg.max_seq_len and s["feats"].dtype == torch.float32
        assert s["segments"].dtype == torch.float32 and s["labels"].dtype == torch.int64
        assert len(s["segments"]) == len(s["labels"])
        if len(s["segments"]):
            assert (s["segments"] >= -0.01).all() and (s["segments"] <= t).all()
        assert s["feat_stride"] == 4.0 and s["num_frames"] == 16.0 and s["fps"] == 30.0
    batch = Collate(cfg.max_seq_len, 32, training=True)(first[:2])
    assert batch["feats"].shape == (2, SMALL.dim, cfg.max_seq_len)
    assert batch["mask"][0, 0].sum() == first[0]["feats"].shape[1]


def test_dataset_inference_samples_are_whole_videos(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    cfg = _cfg()
    reader = feature_reader(cfg, synth_root / "features")
    ds = TALDataset(split_records(ann, "test"), reader, cfg, training=False)
    for i, rec in enumerate(ds.records):
        s = ds[i]
        assert s["video_id"] == rec.video_id
        torch.testing.assert_close(s["feats"], reader.load(rec.video_id))
        expected = seconds_to_steps(rec.segments, 30.0, 4.0, 16.0).astype(np.float32)
        np.testing.assert_allclose(s["segments"].numpy(), expected.reshape(-1, 2))


def test_prepare_data_infers_dim_and_classes(synth_root):
    prepared = prepare_data(_cfg(), synth_root, ["training", "test"])
    data = json.loads((synth_root / "annotations.json").read_text())
    ids = {a["label_id"] for v in data["database"].values() for a in v["annotations"]}
    assert prepared.input_dim == SMALL.dim
    assert prepared.num_classes == max(ids) + 1
    assert prepared.reader.input_dim == SMALL.dim
    assert set(prepared.label_names) == set(range(prepared.num_classes))
    agnostic = prepare_data(_cfg(class_agnostic=True), synth_root, ["training"])
    assert agnostic.num_classes == 1 and agnostic.label_names == {0: "action"}


def test_prepare_data_missing_feature_file_names_the_video(tmp_path):
    generate(tmp_path, SMALL)
    (tmp_path / "features" / "synth_test_0001.npy").unlink()
    with pytest.raises(DataError, match="synth_test_0001"):
        prepare_data(_cfg(), tmp_path, ["training", "test"])
    # a split that does not need the missing file is fine
    prepare_data(_cfg(), tmp_path, ["training"])


def test_prepare_data_empty_split_lists_subsets(synth_root):
    with pytest.raises(DataError) as info:
        prepare_data(_cfg(), synth_root, ["training", "Validation_set"])
    msg = str(info.value)
    assert "'Validation_set'" in msg
    for subset in ("training (6)", "validation (2)", "test (3)"):
        assert subset in msg, msg
    with pytest.raises(DataError, match="data-root"):
        prepare_data(_cfg(), None, ["training"])
    with pytest.raises(DataError, match="not found"):
        prepare_data(_cfg(), synth_root / "nowhere", ["training"])
