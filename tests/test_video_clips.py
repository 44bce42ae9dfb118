"""Clip arithmetic and decoding of real (PyAV-written) videos: codecs, rates, resampling, VFR, rotation."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")

from _video_helpers import frame_level, write_video

from rdfa_s6.data.coords import covered_seconds, expected_steps, steps_to_seconds
from rdfa_s6.video.clips import (
    clip_frame_indices,
    num_clips,
    pick_source_frames,
    resample_times,
    resampled_count,
    step_centre_seconds,
    used_frames,
)
from rdfa_s6.video.decode import VideoError, read_all


def _brute_force_clips(n, w, s):
    """Every start i*S whose clip [i*S, i*S + W) fits in n frames; one padded clip for 0 < n < W."""
    if n == 0:
        return []
    if n < w:
        return [[min(k, n - 1) for k in range(w)]]
    starts, i = [], 0
    while i * s + w <= n:
        starts.append(i * s)
        i += 1
    return [list(range(st, st + w)) for st in starts]


@pytest.mark.parametrize("w,s", [(16, 4), (16, 16), (8, 3), (1, 1), (5, 7)])
def test_clip_indices_match_brute_force_enumeration(w, s):
    for n in range(0, 60):
        ref = _brute_force_clips(n, w, s)
        assert num_clips(n, w, s) == len(ref)
        assert clip_frame_indices(n, w, s).tolist() == ref
        if n >= w:
            assert num_clips(n, w, s) == (n - w) // s + 1


def test_clip_grid_matches_the_seconds_to_steps_formula():
    fps, w, s = 30.0, 16, 4
    steps = np.arange(50, dtype=np.float64)
    np.testing.assert_allclose(step_centre_seconds(steps, fps, w, s), steps_to_seconds(steps, fps, s, w))
    for n in (16, 17, 20, 100, 147 * 4 + 12):
        t = num_clips(n, w, s)
        assert covered_seconds(t, fps, s, w) * fps == pytest.approx(used_frames(n, w, s))
        assert used_frames(n, w, s) <= n < used_frames(n, w, s) + s  # at most S - 1 tail frames dropped
        assert t == int(np.floor(expected_steps(n / fps, fps, s, w)))
    # the docs' worked example: 20 s at 30 fps -> 147 steps
    assert num_clips(600, 16, 4) == 147


def test_resampled_count_and_source_pick():
    assert resampled_count(3.0, 30) == 90 and resampled_count(3.0, 10) == 30 and resampled_count(1.0, 7.5) == 8
    assert resampled_count(0.0, 30) == 0
    src = np.array([0.0, 0.1, 0.25, 0.3])
    assert pick_source_frames(src, resample_times(0.4, 10)).tolist() == [0, 1, 1, 3]  # 0.25 is after 0.2
    assert pick_source_frames(src, np.array([0.05, 0.2, 0.29999999])).tolist() == [0, 1, 3]


@pytest.mark.parametrize("ext,fps,size", [(".mp4", 30, (64, 48)), (".mkv", 25, (40, 40)), (".webm", 24, (48, 64)),
                                          (".avi", 15, (32, 24))])
def test_decoding_several_codecs_keeps_every_frame_in_order(tmp_path, ext, fps, size):
    n = 37
    path = write_video(tmp_path / f"v{ext}", n, fps=fps, width=size[0], height=size[1])
    frames, info = read_all(path, 32, 32)
    assert frames.shape == (n, 32, 32, 3) and frames.dtype == np.uint8
    assert info.num_frames == n and info.fps == fps and info.native_fps == fps and not info.vfr
    assert info.duration == pytest.approx(n / fps)
    if ext != ".avi":  # mpeg4 at this size may shift a grey level by more than half the spacing
        assert [frame_level(f) for f in frames] == [k % 28 for k in range(n)]


def test_resampling_to_a_lower_rate_picks_the_frame_shown_at_each_grid_time(tmp_path):
    n, fps = 45, 30
    path = write_video(tmp_path / "v.mp4", n, fps=fps)
    frames, info = read_all(path, 32, 32, fps=10)
    ref = pick_source_frames(np.arange(n) / fps, resample_times(n / fps, 10))  # [0, 3, 6, ...]
    assert info.num_frames == len(ref) == 15 and info.resampled and info.fps == 10
    assert [frame_level(f) for f in frames] == [k % 28 for k in ref]
    up, info_up = read_all(path, 32, 32, fps=60)
    assert info_up.num_frames == 90
    assert [frame_level(f) for f in up] == [k % 28 for k in np.repeat(np.arange(n), 2)]


def test_variable_frame_rate_is_resampled_by_timestamps(tmp_path):
    times = [0.0, 0.03, 0.1, 0.12, 0.2, 0.4, 0.42, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
    path = write_video(tmp_path / "vfr.mp4", len(times), times=times)
    frames, info = read_all(path, 32, 32, fps=10)
    assert info.vfr and info.fps == 10
    duration = times[-1] + 1.0 / info.native_fps
    ref = pick_source_frames(np.array(times), resample_times(duration, 10))
    assert [frame_level(f) for f in frames] == ref.tolist()
    frames, info = read_all(path, 32, 32)  # no --fps: the average rate of its frames
    assert info.vfr and info.fps == pytest.approx((len(times) - 1) / times[-1])


def test_rotation_metadata_is_applied_counter_clockwise(tmp_path):
    path = write_video(tmp_path / "rot.mp4", 3, width=64, height=32, rotation=90)
    frames, info = read_all(path, 32, 32)
    assert info.rotation == 90 and (info.width, info.height) == (32, 64)
    plain, _ = read_all(write_video(tmp_path / "plain.mkv", 3, width=48, height=48, rotation=0), 48, 48)
    rotated, _ = read_all(write_video(tmp_path / "rot.mkv", 3, width=48, height=48, rotation=90), 48, 48)
    assert plain[0][:12, :12].mean() > 240  # the white square is top-left as written
    assert rotated[0][-12:, :12].mean() > 240  # shown rotated 90 degrees counter-clockwise: bottom-left
    np.testing.assert_allclose(rotated.astype(float), np.rot90(plain, k=1, axes=(1, 2)).astype(float), atol=12)


@pytest.mark.parametrize("size", [(8, 6), (1920, 1080)])
def test_tiny_and_large_resolutions_decode(tmp_path, size):
    path = write_video(tmp_path / "v.mkv", 3, width=size[0], height=size[1])
    frames, info = read_all(path, 32, 32)
    assert frames.shape == (3, 32, 32, 3) and (info.width, info.height) == size


def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video")
    for name, needle in [("text.mp4", "cannot read"), ("missing.mp4", "not found")]:
        with pytest.raises(VideoError, match=needle) as err:
            read_all(tmp_path / name, 32, 32)
        assert str(tmp_path / name) in str(err.value) and "\n" not in str(err.value)
