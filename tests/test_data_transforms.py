"""Coordinates (docs/model.md §2.4), crops (§2.6), resizing (§2.5), padding and masks (§2.7).
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rdfa_s6.data.coords import seconds_to_steps, steps_to_seconds
from rdfa_s6.data.transforms import pad_batch, padded_length, random_crop, resize_to_length, resized_stride


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
