"""``infer`` under torchrun: rank r takes inputs r, r + W, ... and the last rank to finish writes the files a
one-process run writes (the rule of :mod:`rdfa_s6.shards`, shared with ``extract``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _tiny_training import tiny_data, train_tiny  # noqa: F401  (tiny_data is a fixture)
from _train_helpers import child_env

from rdfa_s6 import shards
from rdfa_s6.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_share_takes_every_world_th_item_and_markers_of_another_job_are_not_merged(tmp_path):
    items = [f"v{i}" for i in range(7)]
    parts = [shards.share(items, r, 3) for r in range(3)]
    assert parts == [["v0", "v3", "v6"], ["v1", "v4"], ["v2", "v5"]]
    assert sorted(sum(parts, [])) == items
    shards.write_marker(tmp_path, 0, 2, {"x": 1}, job="a")
    assert not shards.all_done(tmp_path, 2, "a")
    shards.write_marker(tmp_path, 1, 2, {"x": 2}, job="old")  # left by an earlier launch
    assert not shards.all_done(tmp_path, 2, "a")
    shards.write_marker(tmp_path, 1, 2, {"x": 2}, job="a")
    assert shards.read_markers(tmp_path, 2, "a") == [{"x": 1, "job": "a"}, {"x": 2, "job": "a"}]


def test_two_processes_write_the_detections_of_one(tiny_data, tmp_path):  # noqa: F811
    train_tiny(tiny_data, tmp_path / "run")
    feats = tiny_data / "features"
    # one video per forward pass: a batch pads its videos to a common length, which changes scores in the last
    # float bits; with the same batches, the same detections bit for bit
    base = ["infer", str(tmp_path / "run"), str(feats), "--fps", "30", "--no-progress", "--batch-size", "1"]
    assert main([*base, "--out", str(tmp_path / "one.json"), "--csv", str(tmp_path / "one.csv")]) == 0
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "rdfa_s6", *base, "--out", str(tmp_path / "two.json"), "--csv",
                           str(tmp_path / "two.csv")], capture_output=True, text=True, timeout=300,
                          env=child_env(PYTHONPATH=str(REPO / "src")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert len(one["results"]) == len(list(feats.glob("*.npy"))) >= 4 and sum(map(len, one["results"].values()))
    assert two == one
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    parts = tmp_path / ".two.json.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["rank-0-of-2.json", "rank-1-of-2.json"]
    assert "(rank " in proc.stdout  # the rank that did not merge says who writes the result
