"""Run folders under faults (quick tests): a second process on a folder, a full or read-only disk, the order of
fsync and rename that makes a published checkpoint survive a power cut.

Full disks are real where the test may mount a small tmpfs (root here; skipped with the reason elsewhere);
the run-log and checkpoint failures inside training are injected as the ``OSError(ENOSPC)`` the write would
raise, at a chosen step, and the resumed run is compared with an uninterrupted one. The end-to-end versions
(``rdfa-s6 train`` processes, a tmpfs filled during training, torchrun) are in ``test_faults_e2e.py``.
"""
from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import _tiny_training
import pytest
import torch
from _fault_helpers import (
    assert_one_line_error,
    assert_refuses_a_held_folder,
    assert_stops_on_a_full_disk,
    fill,
    holding,
    remount,
    run_cli,
    small_tmpfs,
    snapshot,
)
from _tiny_training import TINY_OVERRIDES, train_tiny
from _train_helpers import assert_same_run, records

from rdfa_s6 import atomic
from rdfa_s6.checkpoint import LATEST, latest_checkpoint
from rdfa_s6.config import load_config
from rdfa_s6.errors import DiskFullError, UserError
from rdfa_s6.runlock import LOCK_FILE, FolderBusy, hold_folder, is_held
from rdfa_s6.train import loop, runlog
from rdfa_s6.train.loop import Trainer
from rdfa_s6.train.state import commit_checkpoint, read_train_state

#: fixtures shared with the other in-process training tests
tiny_data = _tiny_training.tiny_data
_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---- exclusive folders -----------------------------------------------------------------------------------
def test_a_second_process_is_refused_naming_the_holder_and_nothing_is_touched(tmp_path):
    folder = tmp_path / "run"
    with holding(folder, "rdfa-s6 train demo --out run") as holder:
        (folder / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n')
        before = snapshot(folder)
        with pytest.raises(FolderBusy) as caught:
            with hold_folder(folder, "second"):
                raise AssertionError("the folder was given to a second process")
        message = str(caught.value)
        assert caught.value.pid == holder.pid
        assert str(folder) in message and f"PID {holder.pid}: rdfa-s6 train demo --out run" in message
        assert snapshot(folder) == before
        assert not is_held(folder)


def test_killing_the_holder_releases_the_folder(tmp_path):
    folder = tmp_path / "run"
    with holding(folder) as holder:
        with pytest.raises(FolderBusy):
            with hold_folder(folder):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        assert (folder / LOCK_FILE).read_text().split("\n")[0] == str(holder.pid)  # left behind by the kill
        with hold_folder(folder, "next") as held:  # the kernel dropped the lock: no stale PID to guess about
            assert held == folder
            lines = (folder / LOCK_FILE).read_text().splitlines()
            assert lines[0] == str(os.getpid()) and lines[2] == "next"


def test_a_killed_holder_releases_the_folder_while_its_forked_children_live(tmp_path):
    """DataLoader workers are forked children of the trainer: they must not keep its lock after it is killed."""
    import subprocess
    import sys

    # the child prints its own PID: by then os.fork() has returned in it, so its at-fork hook has run (the parent
    # printing the PID raced with the child's start on a loaded machine: the child could still hold the lock)
    code = ("import os, sys, time\nfrom rdfa_s6.runlock import hold_folder\nwith hold_folder(sys.argv[1]):\n"
            "    child = os.fork()\n    if child == 0:\n        print(os.getpid(), flush=True)\n"
            "        time.sleep(60)\n        os._exit(0)\n"
            "    time.sleep(600)\n")
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(FolderBusy):
            with hold_folder(folder):
                pass
        holder.kill()
        holder.wait(timeout=60)
        os.kill(child, 0)  # the child still lives
        with hold_folder(folder):
            pass
    finally:
        holder.kill()
        holder.stdout.close()
        os.kill(child, signal.SIGKILL)


def test_holding_is_reentrant_and_leaves_nothing_behind(tmp_path):
    kept, fresh = tmp_path / "kept", tmp_path / "fresh"
    kept.mkdir()
    (kept / "results.json").write_text("{}")
    for folder in (kept, fresh):
        with hold_folder(folder):
            with hold_folder(folder):  # the train command and its Trainer hold the same folder
                assert is_held(folder)
            assert is_held(folder) and (folder / LOCK_FILE).is_file()
        assert not is_held(folder) and not (folder / LOCK_FILE).exists()
    assert sorted(p.name for p in kept.iterdir()) == ["results.json"]
    assert not fresh.exists()  # created by the holder and left empty: removed again


@pytest.mark.parametrize("command", ["train", "train --resume", "demo", "convert"])
def test_commands_refuse_a_folder_held_by_another_process(command, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoints").mkdir()  # looks like a run (and, with the marker, like an earlier demo)
    (out / "checkpoints" / LATEST).write_text("epoch002_step0000008\n")
    (out / ".rdfa-s6-demo").write_text("written by rdfa-s6 demo\n")
    argv = {"train": ["train", "demo", "--data-root", str(tmp_path / "data"), "--out", str(out), "--no-progress"],
            "demo": ["demo", "--out", str(out), "--quick", "--no-progress"],
            "convert": ["convert", str(tmp_path / "official.pth"), str(out), "--preset", "demo"]}
    args = argv[command.split()[0]] + (["--resume"] if "--resume" in command else [])
    assert_refuses_a_held_folder(args, out, capsys)


# ---- full and read-only disks ----------------------------------------------------------------------------
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    with small_tmpfs(tmp_path / "disk", 64) as disk:
        target = disk / "results.json"
        atomic.atomic_write_bytes(target, b"old\n")
        with pytest.raises(DiskFullError, match=rf"cannot write {target}: the disk is full \(ENOSPC\)$"):
            atomic.atomic_write_bytes(target, b"x" * 200_000)
        assert target.read_bytes() == b"old\n"
        assert sorted(p.name for p in disk.iterdir()) == ["results.json"]  # no temporary file left
        remount(disk, "ro")
        with pytest.raises(DiskFullError, match=r"the disk is read-only \(EROFS\)"):
            atomic.atomic_write_bytes(target, b"new\n")
        with pytest.raises(DiskFullError, match=rf"cannot write {disk / 'run'}: the disk is read-only"):
            with hold_folder(disk / "run"):
                pass


def test_any_disk_error_is_one_line_with_exit_status_2(monkeypatch, capsys):
    from rdfa_s6.commands import evaluate

    def full(args):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/out/results.json")

    monkeypatch.setattr(evaluate, "run", full)
    status, err = run_cli(["evaluate", "--gt", "gt.json", "--pred", "pred.json"], capsys)
    assert status == 2
    assert_one_line_error(err, "evaluate", "cannot write /data/out/results.json: the disk quota is exceeded (EDQUOT)")


def test_demo_on_a_full_and_on_a_read_only_disk(tmp_path, capsys):
    # the synthetic dataset, written first, fills it (numpy's short write names no file: the folder is named)
    assert_stops_on_a_full_disk(lambda out: ["demo", "--out", str(out), "--quick", "--no-progress"],
                                tmp_path / "full", capsys)
    with small_tmpfs(tmp_path / "disk", 96) as disk:
        remount(disk, "ro")
        status, err = run_cli(["demo", "--out", str(disk / "demo"), "--quick", "--no-progress"], capsys)
        assert status == 2
        assert_one_line_error(err, "demo", f"cannot write {disk / 'demo'}: the disk is read-only (EROFS)")


def test_convert_on_a_full_disk_publishes_nothing(tmp_path, capsys):
    from rdfa_s6.models import build_detector

    cfg = load_config("demo", overrides=["data.input_dim=32", "data.num_classes=3"])
    official = tmp_path / "official.pth"
    torch.save({"model_ema": build_detector(cfg).state_dict()}, official)
    with small_tmpfs(tmp_path / "disk", 256) as disk:
        out = disk / "converted"
        status, err = run_cli(["convert", str(official), str(out), "--preset", "demo"], capsys)
        assert status == 2
        assert_one_line_error(err, "convert", f"cannot write {out / 'model.safetensors'}: the disk is full (ENOSPC)")
        assert not out.exists()  # no half-written file, no lock file, no empty folder


# ---- a power cut: fsync before every rename and of the folder after it ------------------------------------
@pytest.fixture
def fs_events(monkeypatch):
    """Records ``("fsync", path)``, ``("rename", src, dst)`` and ``("replace", src, dst)`` in call order."""
    events = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def move(kind, real):
        def wrapped(a, b):
            events.append((kind, str(a), str(b)))
            real(a, b)
        return wrapped

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", move("rename", real_rename))
    monkeypatch.setattr(os, "replace", move("replace", real_replace))
    return events


def test_an_atomic_write_fsyncs_the_file_before_and_its_folder_after_the_rename(tmp_path, fs_events):
    target = tmp_path / "results.json"
    atomic.atomic_write_json(target, {"a": 1})
    assert [e[0] for e in fs_events] == ["fsync", "replace", "fsync"]
    tmp = fs_events[1][1]
    assert fs_events == [("fsync", tmp), ("replace", tmp, str(target)), ("fsync", str(tmp_path))]


def test_an_atomic_output_path_is_published_only_when_its_writer_succeeds(tmp_path, fs_events):
    """``atomic_output`` hands a writer (an encoder, a compiler) a temporary name: fsync, rename, folder fsync
    on success; on an error the old file stays and no temporary file is left."""
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic.atomic_output(target, suffix=".mp4") as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(".mp4")
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert fs_events == []
    with atomic.atomic_output(target, suffix=".mp4") as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert fs_events == [("fsync", str(tmp)), ("replace", str(tmp), str(target)), ("fsync", str(tmp_path))]


def test_checkpoint_files_and_folders_are_fsynced_before_they_are_published(tmp_path, fs_events):
    """Records the order of fsync/rename/replace while a checkpoint is committed: each file's content is
    fsynced before it is renamed into place, each folder after an entry is renamed into it, the checkpoint
    folder before its rename and its parent after it, all before LATEST names it."""
    from rdfa_s6.checkpoint import save_checkpoint

    events = fs_events
    run = tmp_path / "run"
    state = {"w": torch.arange(6.0)}
    commit_checkpoint(run, "epoch001_step0000001",
                      lambda folder: save_checkpoint(folder, state, load_config("demo"), {"step": 1}))

    def index(event):
        return events.index(event)

    def fsynced(path, before):
        return any(e == ("fsync", str(path)) for e in events[:before])

    replaces = [e for e in events if e[0] == "replace"]
    assert len(replaces) == 4  # model.safetensors, config.json, meta.json, LATEST
    for event in replaces:
        i = index(event)
        assert fsynced(event[1], i), f"{event[1]} renamed into place before its content was fsynced"
        after = [e for e in events[i + 1:] if e == ("fsync", str(Path(event[2]).parent))]
        assert after, f"the folder of {event[2]} was not fsynced after the rename"
    ckpt = run / "checkpoints"
    partial, final = ckpt / ".partial-epoch001_step0000001", ckpt / "epoch001_step0000001"
    move = index(("rename", str(partial), str(final)))
    for name in ("model.safetensors", "config.json", "meta.json"):
        assert index(("replace", *[e[1:] for e in replaces if e[2] == str(partial / name)][0])) < move
    assert fsynced(partial, move), "the checkpoint folder was not fsynced before its rename"
    publish = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(ckpt / LATEST)][0]
    assert fsynced(ckpt, publish) and index(("fsync", str(ckpt))) > move, \
        "checkpoints/ was not fsynced between the rename and LATEST"
    assert ("fsync", str(ckpt)) in events[publish + 1:], "checkpoints/ was not fsynced after LATEST was replaced"


# ---- training on a full disk (injected at a chosen step) --------------------------------------------------
def _train_tiny(data: Path, out: Path, **options) -> Trainer:
    return train_tiny(data, out, log_every=1, **options)


@pytest.fixture(scope="module")
def tiny_reference(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_reference") / "run"
    _train_tiny(tiny_data, out)
    return out


def _tb_scalars(run: Path, tag: str = "train/loss"):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def _fail_at(monkeypatch, module, name: str, call: int) -> None:
    """``module.name`` raises ENOSPC at its ``call``-th call (1-based), as a full disk would."""
    real, calls = getattr(module, name), {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


@pytest.mark.parametrize("where", ["metrics", "tensorboard", "checkpoint"])
def test_a_full_disk_during_training_stops_in_one_line_and_resume_matches(where, tiny_data, tiny_reference,
                                                                          tmp_path, monkeypatch):
    """metrics: the line of step 2 (the last of epoch 1) fails: the epoch-end checkpoint that was due is still
    saved, carrying that record and the epoch record. tensorboard: step 3 fails (mid-epoch 2): training stops
    after step 4 with a resume point carrying both. checkpoint (saved every step): the one of step 3 fails: the
    one of step 2 stays the resume point."""
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    options = {"checkpoint_every": 1} if where == "checkpoint" else {}
    with monkeypatch.context() as patch:
        if where == "metrics":
            _fail_at(patch, runlog, "append_whole", 2)
        elif where == "tensorboard":
            _fail_at(patch, SummaryWriter, "add_scalar", 6 * 2 + 3 + 1)  # 6 per train record, 3 per epoch
        else:
            _fail_at(patch, loop, "write_train_state", 4)  # steps 1, 2, 2 (epoch end), 3
        with pytest.raises(DiskFullError) as caught:
            _train_tiny(tiny_data, run, **options)
    message = str(caught.value)
    assert "\n" not in message and "the disk is full (ENOSPC)" in message
    latest = latest_checkpoint(run)
    state = read_train_state(latest)
    if where == "checkpoint":
        assert message.startswith(f"cannot save checkpoint {run / 'checkpoints' / 'epoch002_step0000003'}: ")
        assert f"the last complete checkpoint {latest} stays the resume point" in message
        assert state["step"] == 2 and state["unlogged"] == []
        assert not list((run / "checkpoints").glob(".partial-*"))
    else:
        assert message.startswith(f"cannot write {run / ('metrics.jsonl' if where == 'metrics' else 'tb')}: ")
        assert f"resume point saved in {latest}" in message
        unlogged = [(u["record"]["kind"], u["record"]["step"], u["metrics"]) for u in state["unlogged"]]
        if where == "metrics":
            assert state["step"] == 2 and unlogged == [("train", 2, True), ("epoch", 2, True)]
            assert [r["step"] for r in records(run)] == [1]  # nothing half-written after it
        else:
            assert state["step"] == 4 and unlogged == [("train", 3, False), ("train", 4, True)]
    assert not is_held(run) and not (run / LOCK_FILE).exists()
    _train_tiny(tiny_data, run, resume=True, **options)
    assert_same_run(run, tiny_reference)
    assert _tb_scalars(run) == _tb_scalars(tiny_reference)


@pytest.mark.slow
def test_the_command_line_reports_a_run_log_failure_in_one_line(tiny_data, tmp_path):
    """``rdfa-s6 train`` in a process whose metrics.jsonl write fails at step 3 (mid-epoch 2): one line on
    stderr, exit status 2, and the resume point of step 4 carries steps 3 and 4."""
    import subprocess
    import sys

    from _train_helpers import child_env

    code = ("import errno, os, sys\nfrom rdfa_s6.train import runlog\nreal, calls = runlog.append_whole, [0]\n"
            "def failing(fd, data):\n    calls[0] += 1\n    if calls[0] == 4:\n"
            "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n    return real(fd, data)\n"
            "runlog.append_whole = failing\nfrom rdfa_s6.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", code, "train", "demo", "--data-root", str(tiny_data), "--out",
                           str(run), "--no-progress", "--log-every", "1", *TINY_OVERRIDES],
                          capture_output=True, text=True, env=child_env(), timeout=600)
    assert proc.returncode == 2, proc.stderr
    latest = latest_checkpoint(run)
    assert_one_line_error(proc.stderr, "train", f"cannot write {run / 'metrics.jsonl'}: the disk is full (ENOSPC); "
                          f"stopped at epoch 2, iteration 2 of 2 (step 4); resume point saved in {latest} (with the "
                          f"2 record(s) not logged); free space and continue with the same command and --resume")
    assert [u["record"]["step"] for u in read_train_state(latest)["unlogged"]] == [3, 4]


def test_a_run_log_on_a_really_full_disk_cuts_the_torn_line_and_carries_the_records(tmp_path):
    with small_tmpfs(tmp_path / "disk", 32) as disk:
        log = runlog.RunLog(disk / "run")
        log.open(load_config("demo"))
        log.writer = None  # metrics.jsonl only: TensorBoard's own file grows at its own pace
        fill(disk)
        padding = "x" * 700
        for step in range(1, 30):
            log.write({"kind": "train", "epoch": 1, "step": step, "note": padding}, step)
        assert log.failure is not None and "the disk is full (ENOSPC)" in str(log.failure)
        text = (disk / "run" / "metrics.jsonl").read_text()
        assert text == "" or text.endswith("\n")
        written = [json.loads(line)["step"] for line in text.splitlines()]
        carried = [u["record"]["step"] for u in log.unlogged]
        assert written + carried == list(range(1, 30)) and carried
        assert all(u["metrics"] for u in log.unlogged)
        log.close()


def test_the_disk_full_message_of_a_held_folder_names_the_folder(tmp_path):
    with pytest.raises(DiskFullError, match=rf"cannot write {tmp_path / 'out'}: the disk is full"):
        with hold_folder(tmp_path / "out"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(UserError, match=rf"cannot write {tmp_path / 'out' / 'a.npy'}: the disk is read-only"):
        with hold_folder(tmp_path / "out"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "out" / "a.npy"))
