"""Several machines: ``extract``, ``train`` and ``infer`` under two torchrun launchers that meet through c10d
rendezvous (``--nnodes=2``, one process each), as two nodes of a cluster would; docs/distributed.md. The two
"nodes" run here and share the file system, as the nodes of a cluster share the data, run and output folders."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest

pytest.importorskip("av")

from _train_helpers import child_env

from rdfa_s6.cli import main
from rdfa_s6.video.synth import VideoSynthSpec, generate_videos

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2", "train.warmup_epochs=0", "data.val_split=null"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_nodes(cwd: Path, *argv: str, timeout: float = 120) -> List[str]:
    """``rdfa-s6 ARGV`` under two torchrun launchers (node 0 and node 1, one process each, c10d rendezvous on a
    free local port); returns each node's output. Both must exit with status 0."""
    port = _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=test{port}", "--max-restarts=0", "-m", "rdfa_s6", *argv]
    env = child_env(PYTHONPATH=str(REPO / "src"))
    nodes = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for _ in range(2)]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=timeout)[0])
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    for node, out in zip(nodes, outputs):
        assert node.returncode == 0, f"{' '.join(argv[:1])} failed on a node:\n{out[-3000:]}"
    return outputs


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")  # the in-process reference runs on one thread, as the nodes (child_env) do
def test_extract_train_and_infer_on_two_nodes(tmp_path):
    """extract, train and infer under two torchrun launchers equal one process. Scores are compared exactly, so
    the one-process reference runs on one thread like the nodes: another thread count sums in another order
    (the results then differ by ~1e-8, as the first CI run of this test found)."""
    generate_videos(tmp_path / "videos", VideoSynthSpec(train_videos=4, val_videos=0, test_videos=2, size=32,
                                                         min_frames=90, max_frames=150, action_frames=(20, 40),
                                                         seed=5))
    # extract: the ranks of both nodes share the videos; the last to finish merges; the same files as 1 process
    outs = _two_nodes(tmp_path, "extract", "videos", "--out", "data", "--backbone", "colour-motion", "--workers",
                      "0", "--no-progress")
    assert sorted(line.split(" (rank ")[1][:6] for out in outs for line in out.splitlines()
                  if line.startswith("extracted")) == ["0 of 2", "1 of 2"]
    assert main(["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "one"), "--backbone", "colour-motion",
                 "--workers", "0", "--no-progress"]) == 0
    for path in sorted((tmp_path / "one" / "features").glob("*.npy")):
        assert np.array_equal(np.load(path), np.load(tmp_path / "data" / "features" / path.name)), path.name
    two = json.loads((tmp_path / "data" / "extraction.json").read_text())
    one = json.loads((tmp_path / "one" / "extraction.json").read_text())
    assert {v: r["sha256"] for v, r in two["videos"].items()} == {v: r["sha256"] for v, r in one["videos"].items()}
    gt = json.loads((tmp_path / "videos" / "ground_truth.json").read_text())["database"]
    ann = json.loads((tmp_path / "data" / "annotations.json").read_text())
    for vid, entry in ann["database"].items():
        entry["subset"], entry["annotations"] = gt[vid]["subset"], gt[vid]["annotations"]
    (tmp_path / "data" / "annotations.json").write_text(json.dumps(ann))
    # train: one process group over both nodes (gloo); rank 0 writes the run, which records the extraction
    _two_nodes(tmp_path, "train", "demo", "--data-root", "data", "--out", "run", "--no-progress", *TINY)
    meta = json.loads((tmp_path / "run" / "final" / "meta.json").read_text())
    assert meta["extraction"]["backbone"] == "colour-motion" and "versions" in meta["extraction"]
    # infer on the videos: each node's rank takes its share; the merged file equals a one-process run's
    outs = _two_nodes(tmp_path, "infer", "run", "videos", "--out", "two.json", "--no-progress")
    assert sum("the last rank to finish writes" in out for out in outs) <= 1
    assert main(["infer", str(tmp_path / "run"), str(tmp_path / "videos"), "--out", str(tmp_path / "one.json"),
                 "--no-progress"]) == 0
    one_doc = json.loads((tmp_path / "one.json").read_text())
    assert len(one_doc["results"]) == 6 and json.loads((tmp_path / "two.json").read_text()) == one_doc
