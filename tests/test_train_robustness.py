"""Robustness of training: kills at random points, SIGINT/SIGTERM, non-finite losses, untrusted resume files.

The quick tests train a tiny model in-process for a few iterations; the slow ones run ``rdfa-s6 train`` in
subprocesses (see ``_train_helpers``) and compare against an uninterrupted run bit for bit.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import _tiny_training
import pytest
import torch
from _tiny_training import TINY_OVERRIDES, train_tiny
from _train_helpers import (
    PY,
    SMALL_STEPS,
    CodePayload,
    assert_same_run,
    child_env,
    kill,
    poison_losses,
    records,
    reference_run,
    run_train,
    small_data,
    start_train,
    wait_until,
    weights,
)

from rdfa_s6.checkpoint import latest_checkpoint
from rdfa_s6.cli import main as cli_main
from rdfa_s6.config import load_config
from rdfa_s6.errors import DataError
from rdfa_s6.train.loop import NonFiniteError
from rdfa_s6.train.state import TRAIN_STATE, read_train_state

#: fixtures shared with the other in-process training tests
tiny_data = _tiny_training.tiny_data
_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train_tiny(tiny_data, out, checkpoint_every=1, log_every=1)
    return out


# ---- quick -----------------------------------------------------------------------------------------------
def test_resume_state_loads_with_weights_only(tiny_run):
    folder = latest_checkpoint(tiny_run)
    state = torch.load(folder / TRAIN_STATE, map_location="cpu", weights_only=True)
    assert state["step"] == 4 and state["epoch"] == 3 and state["iter_in_epoch"] == 0
    assert {"optimizer", "scaler", "normaliser", "torch_rng", "epoch_losses"} <= set(state)
    assert [r["step"] for r in records(tiny_run)] == [1, 2, 3, 4]


def test_a_pickle_that_runs_code_is_refused(tiny_data, tiny_run, tmp_path, capsys):
    # the payload is live: an unsafe load creates the file
    probe, live = tmp_path / "probe.pt", tmp_path / "ran_unsafe"
    torch.save({"optimizer": CodePayload(live)}, probe)
    torch.load(probe, weights_only=False)
    assert live.exists()
    # placed as train_state.pt of a run, it is refused, by the reader and by `train --resume`, and never runs
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(tiny_run), str(run)], check=True)
    marker = tmp_path / "pwned"
    torch.save({"optimizer": CodePayload(marker)}, latest_checkpoint(run) / TRAIN_STATE)
    with pytest.raises(DataError, match="refused to load"):
        read_train_state(latest_checkpoint(run))
    status = cli_main(["train", "demo", "--data-root", str(tiny_data), "--out",
                       str(run), "--resume", "--no-progress", *TINY_OVERRIDES])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "train_state.pt" in err and "refused to load" in err
    assert not marker.exists()


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, monkeypatch,
                                                                                capsys):
    poison_losses(monkeypatch, {2})
    run = tmp_path / "run"
    status = cli_main(["train", "demo", "--data-root", str(tiny_data), "--out", str(run), "--checkpoint-every", "1",
                       "--no-progress", *TINY_OVERRIDES])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "non-finite loss" in err and "at step 3 " in err and "--on-nonfinite skip" in err
    last = latest_checkpoint(run)
    assert read_train_state(last)["step"] == 2 and str(last) in err
    assert all(torch.isfinite(t).all() for t in weights(last / "raw.safetensors").values())
    assert not (run / "final").exists()


def test_nonfinite_loss_is_skipped_with_on_nonfinite_skip(tiny_data, tmp_path, monkeypatch):
    poison_losses(monkeypatch, {1})
    run = tmp_path / "run"
    trainer = train_tiny(tiny_data, run, nonfinite="skip", log_every=1)
    logged = records(run)
    assert [r["step"] for r in logged] == [1, 2, 3, 4]
    assert [bool(r.get("skipped")) for r in logged] == [False, True, False, False]
    assert logged[1]["loss"] is None and all(r["loss"] is not None for r in logged[2:])
    adam_steps = {int(s["step"]) for s in trainer.optimizer.state_dict()["state"].values()}
    assert adam_steps == {3}  # 4 iterations, 1 skipped
    assert records(run, "epoch")[0]["skipped_steps"] == 1
    assert all(torch.isfinite(t).all() for t in weights(run / "final" / "model.safetensors").values())


def test_a_kill_while_a_checkpoint_is_written_leaves_the_previous_one_published(tmp_path):
    run = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rdfa_s6.train.state import commit_checkpoint
        def write(slow):
            def fill(folder):
                (folder / "meta.json").write_text("{{}}")
                (folder / "model.safetensors").write_bytes(b"x" * 1000)
                if slow:
                    print("writing", flush=True)
                    time.sleep(60)
                (folder / "train_state.pt").write_bytes(b"y")
            return fill
        run = Path({str(run)!r})
        commit_checkpoint(run, "epoch001_step0000001", write(False))
        commit_checkpoint(run, "epoch001_step0000002", write(True))
    """)
    proc = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True, env=child_env())
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "epoch001_step0000001"
    assert latest_checkpoint(run).name == "epoch001_step0000001"
    assert (latest_checkpoint(run) / "train_state.pt").is_file()
    assert not (run / "checkpoints" / "epoch001_step0000002").exists()


def test_resume_discards_checkpoints_never_published_and_leftovers(tiny_run, tmp_path):
    from rdfa_s6.train.state import discard_after

    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(tiny_run), str(run)], check=True)
    ckpts = run / "checkpoints"
    (ckpts / "epoch003_step0000009").mkdir()  # written by a process killed before it published it
    (ckpts / ".partial-epoch003_step0000010").mkdir()
    (ckpts / ".LATEST.abc.tmp").write_text("x")
    assert discard_after(run, latest_checkpoint(run).name) == ["epoch003_step0000009"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["LATEST", "epoch002_step0000004", "epoch003_step0000004"]


def test_metrics_log_drops_records_after_the_resume_point(tmp_path):
    from rdfa_s6.train.runlog import truncate_metrics

    path = tmp_path / "metrics.jsonl"
    lines = ['{"kind": "train", "epoch": 1, "step": 1}', '{"kind": "train", "epoch": 1, "step": 2}',
             '{"kind": "epoch", "epoch": 1, "step": 2}', '{"kind": "train", "epoch": 2, "step": 3}',
             '{"kind": "train", "epoch": 2, "step": 4}', '{"kind": "epoch", "epoch": 2, "step": 4}', '{"kind": "tr']
    path.write_text("\n".join(lines))
    assert truncate_metrics(path, epoch=2, step=3) == 3
    assert path.read_text().splitlines() == lines[:4]
    assert truncate_metrics(path, epoch=1, step=2) == 2  # resumed before the end-of-epoch record of epoch 1
    assert path.read_text().splitlines() == lines[:2]


def test_drop_path_decisions_do_not_depend_on_how_the_batch_is_split():
    """What makes 2 processes x 2 videos train like 1 process x 4 videos (and resumption exact)."""
    from rdfa_s6.models import build_detector
    from rdfa_s6.models.blocks import DropPathKey, key_drop_path

    cfg = load_config("demo", overrides=TINY_OVERRIDES + ["model.stem.drop_path=0.5", "model.branch.drop_path=0.5",
                                           "model.stem.layerscale_init=1.0"])  # branches that matter
    torch.manual_seed(0)
    model = build_detector(cfg, input_dim=32, num_classes=3).train()
    x, mask = torch.randn(4, 32, 64), torch.ones(4, 1, 64, dtype=torch.bool)

    def logits(step, parts):
        outs = []
        for lo, hi in parts:
            drop.begin(step, range(lo, hi))
            outs.append(torch.cat(model(x[lo:hi], mask[lo:hi]).cls_logits, dim=1))
        return torch.cat(outs)

    # the model's own drop path draws from the global generator: splitting the batch changes the decisions
    torch.manual_seed(1)
    whole = torch.cat(model(x, mask).cls_logits, dim=1)
    torch.manual_seed(1)
    split = torch.cat([torch.cat(model(x[i:i + 2], mask[i:i + 2]).cls_logits, dim=1) for i in (0, 2)])
    assert not torch.allclose(whole, split, atol=1e-4)
    drop = DropPathKey(seed=7)
    assert key_drop_path(model, drop) > 0
    whole = logits(5, [(0, 4)])
    assert torch.allclose(whole, logits(5, [(0, 2), (2, 4)]), atol=1e-5)
    assert torch.allclose(whole, logits(5, [(0, 1), (1, 2), (2, 3), (3, 4)]), atol=1e-5)
    assert not torch.allclose(whole, logits(6, [(0, 4)]), atol=1e-4)  # still random from step to step
    model.eval()
    assert torch.equal(torch.cat(model(x, mask).cls_logits, dim=1), torch.cat(model(x, mask).cls_logits, dim=1))
    key_drop_path(model, None)  # back to the global generator: random again
    model.train()
    assert not torch.equal(torch.cat(model(x, mask).cls_logits, dim=1), torch.cat(model(x, mask).cls_logits, dim=1))
    assert all(m.drop_prob == 0.5 for m in model.modules() if hasattr(m, "drop_prob"))


def test_keyed_drop_path_keeps_samples_with_probability_one_minus_p():
    from rdfa_s6.models.blocks import keyed_uniform

    draws = [keyed_uniform(1234567891, step, call, pos) for step in range(50) for call in range(5) for pos in range(4)]
    assert len(set(draws)) == len(draws) and all(0.0 <= u < 1.0 for u in draws)
    kept = sum(u >= 0.3 for u in draws) / len(draws)
    assert abs(kept - 0.7) < 0.05  # 1000 draws: 5 standard deviations is 0.072


# ---- slow ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches_the_uninterrupted_run(tmp_path, tmp_path_factory):
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    seed = int(os.environ.get("RDFA_S6_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    run, options = tmp_path / "run", ("--checkpoint-every", "1", "--log-every", "1")
    history = []
    for attempt in range(5):
        done = max((r["step"] for r in records(run)), default=0)
        lines, delay = rng.randint(1, 3), rng.choice([0.0, rng.uniform(0, 0.03), rng.uniform(0, 0.3)])
        proc = start_train(data, run, *options, *(("--resume",) if attempt else ()), log=tmp_path / f"{attempt}.log")
        if not wait_until(proc, lambda: len([r for r in records(run) if r["step"] > done]) >= lines):
            break  # finished before the kill point
        time.sleep(delay)  # 0 to 300 ms after a step is logged: often inside the checkpoint written next
        status = kill(proc)
        mid_write = any(p.name.startswith(".partial-") for p in (run / "checkpoints").glob(".*"))
        history.append((attempt, lines, round(delay, 3), status, "mid-write" if mid_write else ""))
        latest = latest_checkpoint(run)
        if latest is not None:  # whatever was killed, the published resume point is complete and readable
            read_train_state(latest)
            for name in ("model", "raw"):
                weights(latest / f"{name}.safetensors")
    kills = [h for h in history if h[3] == -9]
    assert len(kills) >= 3, f"seed {seed}: only {len(kills)} kills landed: {history}"
    print(f"kill seed {seed}: (attempt, lines, delay, status, where) {history}")
    run_train(data, run, *options, "--resume")
    assert [r["step"] for r in records(run)] == list(range(1, SMALL_STEPS + 1)), f"seed {seed}, kills {history}"
    assert_same_run(run, ref)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_save_a_resume_point_and_exit_cleanly(sig, tmp_path, tmp_path_factory):
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    run = tmp_path / "run"
    proc = start_train(data, run, "--log-every", "1")
    assert wait_until(proc, lambda: len(records(run)) >= 2)
    status = kill(proc, sig)
    output = proc.log_path.read_text()
    assert status == 128 + sig, output
    assert "Traceback" not in output
    message = [ln for ln in output.splitlines() if ln.startswith("rdfa-s6 train:")]
    assert len(message) == 1 and f"{sig.name}: stopped at epoch" in message[0], output
    latest = latest_checkpoint(run)
    assert latest is not None and f"resume point saved in {latest}" in message[0]
    assert read_train_state(latest)["step"] >= 2
    run_train(data, run, "--resume", "--log-every", "1")
    assert_same_run(run, ref)


@pytest.mark.slow
def test_diverging_run_stops_with_one_line_and_exit_status_2(tmp_path, tmp_path_factory):
    """lr=1e30: the weights blow up after the first real update and the next loss is NaN."""
    data, run = small_data(tmp_path_factory), tmp_path / "run"
    proc = run_train(data, run, "--checkpoint-every", "1", "--log-every", "1",
                     overrides=["train.epochs=2", "train.warmup_epochs=1", "data.val_split=null", "train.lr=1e30"],
                     check=False)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rdfa-s6 train: error: non-finite loss or gradients at step "), err
    bad_step = int(err[0].split(" at step ")[1].split()[0])
    last = latest_checkpoint(run)
    assert read_train_state(last)["step"] == bad_step - 1 and str(last) in err[0]
    assert all(torch.isfinite(t).all() for t in weights(last / "raw.safetensors").values())


def test_skipping_stops_once_too_many_steps_in_a_row_are_non_finite(tiny_data, tmp_path, monkeypatch):
    """A diverged run under --on-nonfinite skip does not skip to the end: it stops after --max-skipped in a row."""
    poison_losses(monkeypatch, {1, 2, 3})
    with pytest.raises(NonFiniteError, match=r"in 3 steps in a row, the last at step 4 "):
        train_tiny(tiny_data, tmp_path / "run", nonfinite="skip", max_skipped=2)
    train_tiny(tiny_data, tmp_path / "run2", nonfinite="skip", max_skipped=3)  # 3 in a row are tolerated
