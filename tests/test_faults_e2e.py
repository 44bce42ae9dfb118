"""Run folders under faults, end to end (slow): ``rdfa-s6 train`` processes on a tmpfs that fills up, two
processes on one run folder, a SIGKILLed holder, torchrun against a held folder. Each resumed run must equal
the uninterrupted one bit for bit (``_train_helpers.assert_same_run``)."""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from _fault_helpers import assert_one_line_error, fill, holding, remount, small_tmpfs
from _train_helpers import (
    PY,
    TIMEOUT,
    assert_same_run,
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
from rdfa_s6.train.state import read_train_state

pytestmark = pytest.mark.slow
LOG = ("--log-every", "1")


def _check_kept(run, line: str) -> None:
    """The published resume point is complete and named in the message; nothing partial is left."""
    latest = latest_checkpoint(run)
    assert latest is not None, line
    read_train_state(latest)
    assert str(latest) in line
    assert not list((run / "checkpoints").glob(".partial-*")), "a partial checkpoint was left on the full disk"


def test_a_checkpoint_that_fills_the_disk_stops_in_one_line_and_resume_matches(tmp_path, tmp_path_factory):
    """A 10 MiB tmpfs holds two checkpoints (4 MB each) and the logs: the third fills it."""
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    with small_tmpfs(tmp_path / "disk", 10 * 1024) as disk:
        run = disk / "run"
        proc = run_train(data, run, "--checkpoint-every", "1", *LOG, check=False)
        assert proc.returncode == 2, proc.stderr[-3000:]
        line = assert_one_line_error(proc.stderr, "train",
                                     f"cannot save checkpoint {run / 'checkpoints' / 'epoch001_step0000003'}: ",
                                     "the disk is full (ENOSPC)", "stays the resume point", "--resume")
        _check_kept(run, line)
        assert read_train_state(latest_checkpoint(run))["step"] == 2
        remount(disk, "size=64m")  # space freed
        run_train(data, run, "--checkpoint-every", "1", *LOG, "--resume")
        assert_same_run(run, ref)


def test_a_disk_filled_during_training_stops_in_one_line_and_resume_matches(tmp_path, tmp_path_factory):
    """Another writer fills the disk after the first checkpoint; whichever write of the run fails first
    (a checkpoint, metrics.jsonl or TensorBoard), the run stops in one line and resumes exactly."""
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    with small_tmpfs(tmp_path / "disk", 48 * 1024) as disk:
        run = disk / "run"
        proc = start_train(data, run, *LOG, "--checkpoint-every", "2", log=tmp_path / "train.log")
        assert wait_until(proc, lambda: latest_checkpoint(run) is not None), proc.log_path.read_text()[-2000:]
        filler = fill(disk)
        status = proc.wait(timeout=TIMEOUT)
        output = proc.log_path.read_text()
        assert status == 2, output[-3000:]
        line = assert_one_line_error(output, "train", "the disk is full (ENOSPC)", str(run), "--resume")
        print(f"failed write: {line}")
        _check_kept(run, line)
        filler.unlink()  # space freed
        run_train(data, run, *LOG, "--checkpoint-every", "2", "--resume")
        assert_same_run(run, ref)


def test_a_second_training_on_a_run_folder_is_refused_and_a_killed_holder_releases_it(tmp_path, tmp_path_factory):
    """With and without --resume, the second process exits with 2 naming the first one's PID and writes
    nothing (the first run still ends bit-identical to the uninterrupted one); after SIGKILL of the first (whose
    DataLoader worker, a forked child, may outlive it) --resume gets the folder at once."""
    data, ref = small_data(tmp_path_factory), reference_run(tmp_path_factory)
    run = tmp_path / "run"
    overrides = ["train.epochs=3", "train.warmup_epochs=1", "data.val_split=null", "train.deterministic=true",
                 "train.num_workers=1"]
    first = start_train(data, run, *LOG, overrides=overrides, log=tmp_path / "first.log")
    assert wait_until(first, lambda: len(records(run)) >= 1), first.log_path.read_text()[-2000:]
    # paused (still holding the folder) so that it cannot finish while the second one is tried: on an idle
    # machine this tiny run ends within the few seconds a second process takes to start
    os.kill(first.pid, signal.SIGSTOP)
    for extra in ((), ("--resume",)):
        second = run_train(data, run, *LOG, *extra, overrides=overrides, check=False)
        assert second.returncode == 2, second.stderr[-2000:]
        assert_one_line_error(second.stderr, "train", f"{run} is in use by another process",
                              f"(PID {first.pid}: rdfa-s6 train demo --data-root {data} --out {run} ")
    assert first.poll() is None, "the first run ended before the second one was tried; use a longer run"
    assert kill(first) == -9
    run_train(data, run, *LOG, "--resume", overrides=overrides)
    assert_same_run(run, ref)


def test_torchrun_ranks_follow_rank_0_on_a_held_folder(tmp_path, tmp_path_factory):
    data, run = small_data(tmp_path_factory), tmp_path / "run"
    argv = train_argv(data, run, *LOG)
    with holding(run, "rdfa-s6 train (first)") as holder:
        proc = subprocess.run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                               *argv[2:]], capture_output=True, text=True, env=child_env(), timeout=TIMEOUT)
        assert proc.returncode != 0
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rdfa-s6 train: ")]
        assert len(lines) == 2, proc.stderr[-3000:]  # one per rank, the same line
        for line in lines:
            assert line == lines[0] and f"PID {holder.pid}: rdfa-s6 train (first)" in line
        assert "exitcode  : 2" in proc.stderr, proc.stderr[-3000:]
        assert sorted(p.name for p in run.iterdir()) == [".rdfa-s6.lock"]


def test_torchrun_ranks_stop_together_when_rank_0_fills_the_disk(tmp_path, tmp_path_factory):
    """Rank 0 writes the checkpoints: when one fills the disk, both ranks print its one line and exit with 2
    (instead of rank 1 waiting for a rank 0 that is gone)."""
    data = small_data(tmp_path_factory)
    with small_tmpfs(tmp_path / "disk", 10 * 1024) as disk:
        run = disk / "run"
        argv = train_argv(data, run, "--checkpoint-every", "1", *LOG)
        proc = subprocess.run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                               *argv[2:]], capture_output=True, text=True, env=child_env(), timeout=TIMEOUT)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rdfa-s6 train: ")]
        assert len(lines) == 2 and lines[0] == lines[1], proc.stderr[-3000:]
        assert (f"cannot save checkpoint {run / 'checkpoints' / 'epoch001_step0000003'}: the disk is full (ENOSPC)"
                in lines[0]), lines[0]
        # torchrun's agent SIGTERMs the other rank once one has exited: either may be the one that exits with 2
        codes = re.findall(r"exitcode  : (-?\d+)", proc.stderr)
        assert "2" in codes and set(codes) <= {"2", "-15"}, proc.stderr[-3000:]
        _check_kept(run, lines[0])


_DIST_SCRIPT = """
import contextlib, errno, json, os, sys
from pathlib import Path
import torch
from rdfa_s6.errors import DiskFullError, UserError
from rdfa_s6.train.dist import hold_run_folder, on_main, process_group, raise_together

group = contextlib.ExitStack()  # the process group, for the whole script
info = group.enter_context(process_group(torch.device("cpu")))
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except UserError as err:  # a DiskFullError keeps its path and reason on every rank
        out[name] = "error: " + str(err) + (f" [{err.path} | {err.reason}]" if isinstance(err, DiskFullError) else "")

def held():
    with hold_run_folder(Path(sys.argv[1]), info):
        pass

def rank0_disk_full():
    def write():
        raise DiskFullError("cannot write run/x: the disk is full (ENOSPC)", "run/x", "the disk is full (ENOSPC)")
    on_main(write, info)

attempt("held", held)
attempt("free", lambda: on_main(lambda: None, info))
attempt("rank0", rank0_disk_full)
attempt("rank1", lambda: raise_together(UserError("shard 1 failed: the disk is fine") if info.rank == 1 else None,
                                        info))
attempt("none", lambda: raise_together(None, info))
print(json.dumps(out), flush=True)
group.close()  # leave the group before exiting: a gloo group left to interpreter shutdown can abort (SIGABRT)
"""


def test_distributed_helpers_give_every_rank_the_same_verdict(tmp_path):
    """Two gloo processes: a folder held elsewhere, a rank-0 write on a full disk and a rank-1 error each make
    both processes raise the same one-line error; no error, no raise."""
    import json
    import socket

    script = tmp_path / "dist_check.py"
    script.write_text(_DIST_SCRIPT)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "run"
    with holding(folder, "rdfa-s6 first") as holder:
        procs = [subprocess.Popen([PY, str(script), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=child_env(WORLD_SIZE="2", RANK=str(r), LOCAL_RANK=str(r),
                                                           MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)))
                 for r in range(2)]
        results = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert results[0] == results[1], results
    got = results[0]
    assert got["held"] == (f"error: {folder} is in use by another process (PID {holder.pid}: rdfa-s6 first); wait "
                           f"for it to finish or stop it, or choose another folder")
    assert got["free"] == "ok" and got["none"] == "ok"
    assert got["rank0"] == "error: cannot write run/x: the disk is full (ENOSPC) [run/x | the disk is full (ENOSPC)]"
    assert got["rank1"] == "error: shard 1 failed: the disk is fine"  # a UserError, whatever its text says
