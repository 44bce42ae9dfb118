"""``rdfa-s6 extract`` under the faults of docs/robustness.md: a second process on its output folder is refused
(one line with the holder's PID, nothing touched), and a full disk stops it with one line and nothing
half-written; after space is freed, a rerun finishes the job with the same files as an uninterrupted run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _fault_helpers import assert_refuses_a_held_folder, assert_stops_on_a_full_disk, remount, run_cli, small_tmpfs
from _video_helpers import write_video

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for i in range(3):
        write_video(folder / f"v{i}.mp4", num_frames=48 + 8 * i)
    return folder


def _argv(videos: Path, out: Path):
    return ["extract", str(videos), "--out", str(out), "--backbone", "colour-motion", "--workers", "0",
            "--no-progress"]


def test_extract_refuses_a_folder_another_process_holds(videos, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "features").mkdir()
    (out / "features" / "earlier.npy").write_bytes(b"kept as it is")
    assert_refuses_a_held_folder(_argv(videos, out), out, capsys)


def test_extract_on_a_full_disk_is_one_line_and_a_rerun_completes_it(videos, tmp_path, capsys):
    assert_stops_on_a_full_disk(lambda out: _argv(videos, out), tmp_path / "small", capsys, size_kb=16)
    # the same on a disk that fills midway, then grows: the rerun skips finished videos and completes the folder
    status, _ = run_cli(_argv(videos, tmp_path / "reference"), capsys)
    assert status == 0
    reference = {p.name: np.load(p) for p in (tmp_path / "reference" / "features").glob("*.npy")}
    sizes = sorted(p.stat().st_size for p in (tmp_path / "reference" / "features").glob("*.npy"))
    with small_tmpfs(tmp_path / "disk", size_kb=max(8, (sizes[0] + sizes[1]) // 1024 + 4)) as disk:
        out = disk / "out"
        status, err = run_cli(_argv(videos, out), capsys)
        if status == 0:  # the filesystem's block rounding let everything fit: nothing to resume
            pytest.skip("the tmpfs did not fill at this size")
        assert status == 2 and "the disk is full (ENOSPC)" in err and len(err.strip().splitlines()) == 1, err
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
        remount(disk, "remount,size=4m")
        status, err = run_cli(_argv(videos, out), capsys)
        assert status == 0, err
        got = {p.name: np.load(p) for p in (out / "features").glob("*.npy")}
        assert sorted(got) == sorted(reference)
        for name, feats in reference.items():
            np.testing.assert_array_equal(got[name], feats)
        assert (out / "extraction.json").is_file()
