"""End to end training on synthetic data (slow): accuracy, reproducibility, resumption, data parallelism.

Every test trains the ``demo`` preset with ``rdfa-s6 train`` in subprocesses (see ``_train_helpers``).
"""
from __future__ import annotations

import json
import subprocess

import pytest
from _train_helpers import (
    PY,
    SMALL_OVERRIDES,
    SMALL_STEPS,
    TIMEOUT,
    assert_same_run,
    assert_same_weights,
    child_env,
    kill,
    records,
    reference_run,
    run_train,
    small_data,
    start_train,
    train_argv,
    wait_until,
)

from rdfa_s6.checkpoint import latest_checkpoint
from rdfa_s6.data.synth import SynthSpec, generate
from rdfa_s6.train.state import read_train_state

pytestmark = pytest.mark.slow

#: the accuracy run: the demo preset as is (30 epochs, batch 4, default seed, validation every 6 epochs) on the
#: default synthetic dataset (80 training, 16 validation, 24 test videos of 96-256 steps, data seed 0)
MAP_SPEC = SynthSpec()
#: Average mAP (tIoU 0.3:0.7) of the final EMA model on the synthetic test split, which training never sees.
#: Measured 2026-12-07 (1 thread, without validation, which does not change the weights; AMD EPYC, AVX2): 0.913
#: with these settings; 0.811 on data seed 2; 0.880 and 0.891 with train.seed=1 and 2. Chance is ~0.01. Before
#: the regression output bias started at 1.0 (docs/model.md §3.9), some seeds trained with the left offset
#: channel at 0 for the whole run (0.37 here once crops and batch order were keyed, 0.37 on data seed 2 before):
#: the threshold is far below every run that trains normally and far above that failure.
MIN_TEST_AVG_MAP = 0.5


def test_demo_preset_reaches_map_on_the_test_split(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    generate(data, MAP_SPEC)
    run_train(data, run, overrides=[])
    assert all("val_average_mAP" in r for r in records(run, "epoch") if r["epoch"] % 6 == 0)
    out = tmp_path / "metrics.json"
    proc = subprocess.run([PY, "-m", "rdfa_s6", "test", str(run), "--data-root", str(data), "--json", str(out),
                           "--no-progress"], capture_output=True, text=True, env=child_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(out.read_text())
    print(f"demo preset, synthetic test split: average mAP {metrics['average_mAP']:.4f}")
    assert metrics["average_mAP"] >= MIN_TEST_AVG_MAP, f"test-split average mAP {metrics['average_mAP']:.4f}"


def test_same_seed_gives_bit_identical_weights(tmp_path, tmp_path_factory):
    """The preset's default mode (train.deterministic=false): CPU training is reproducible all the same."""
    data = small_data(tmp_path_factory)
    overrides = [o for o in SMALL_OVERRIDES if not o.startswith("train.deterministic")]
    for name in ("a", "b"):
        run_train(data, tmp_path / name, overrides=overrides)
    assert_same_weights(tmp_path / "a" / "final" / "model.safetensors", tmp_path / "b" / "final" / "model.safetensors")
    raw = [latest_checkpoint(tmp_path / n) / "raw.safetensors" for n in ("a", "b")]
    assert_same_weights(*raw)


def test_resume_in_the_middle_of_an_epoch_matches_the_uninterrupted_run(tmp_path, tmp_path_factory):
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    run = tmp_path / "run"
    proc = start_train(data, run, "--checkpoint-every", "3", "--log-every", "1")
    # resume points at steps 3, 6, 9 are in the middle of an epoch (4 iterations each): kill at the first one seen
    middle = {"epoch001_step0000003", "epoch002_step0000006", "epoch003_step0000009"}
    seen = wait_until(proc, lambda: (latest_checkpoint(run) is not None and latest_checkpoint(run).name in middle))
    assert seen, f"no mid-epoch resume point was published:\n{proc.log_path.read_text()[-2000:]}"
    assert kill(proc) == -9
    resumed_from = read_train_state(latest_checkpoint(run))
    assert 0 < resumed_from["iter_in_epoch"] < 4
    run_train(data, run, "--resume", "--checkpoint-every", "3", "--log-every", "1")
    assert_same_run(run, ref)


def test_two_processes_give_the_losses_of_one_process(tmp_path, tmp_path_factory):
    """torchrun with 2 CPU processes (gloo, 2 videos each) against 1 process with the same global batch of 4."""
    data = small_data(tmp_path_factory)
    one, two = tmp_path / "one", tmp_path / "two"
    run_train(data, one, "--log-every", "1")
    argv = train_argv(data, two, "--log-every", "1")
    dist = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", *argv[2:]]
    proc = subprocess.run(dist, capture_output=True, text=True, env=child_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stderr[-3000:]}"
    got, want = records(two), records(one)
    assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, SMALL_STEPS + 1))
    for g, w in zip(got, want):
        assert g["num_pos"] == w["num_pos"], f"step {w['step']}: positives {g['num_pos']} != {w['num_pos']}"
        for key in ("loss", "cls_loss", "reg_loss"):
            assert abs(g[key] - w[key]) <= 1e-5, f"step {w['step']}: {key} {g[key]} (2 processes) != {w[key]}"
