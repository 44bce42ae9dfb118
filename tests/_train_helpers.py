"""Helpers of the training tests: tiny synthetic datasets, ``rdfa-s6 train`` subprocesses, weight comparisons.

Training subprocesses run with one intra-op thread (``OMP_NUM_THREADS=1``): the tests start several processes
on a 2-core machine, and oversubscribed OpenMP threads make them many times slower. Runs compared with each
other always use the same settings.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from rdfa_s6.data.synth import SynthSpec, generate

PY = sys.executable
#: a small dataset: 16 training videos = 4 iterations per epoch at the demo preset's batch size 4
SMALL_SPEC = SynthSpec(train_videos=16, val_videos=2, test_videos=4, min_len=64, max_len=128, seed=3)
#: 3 epochs (12 iterations), no validation, deterministic mode
SMALL_OVERRIDES = ["train.epochs=3", "train.warmup_epochs=1", "data.val_split=null", "train.deterministic=true"]
SMALL_STEPS = 12
TIMEOUT = 600

_MEMO: Dict[str, Any] = {}


def memo(key: str, factory: Callable[[], Any]) -> Any:
    """``factory()`` once per test session (shared by the test modules that import this one)."""
    if key not in _MEMO:
        _MEMO[key] = factory()
    return _MEMO[key]


def child_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def small_data(tmp_path_factory) -> Path:
    """The SMALL_SPEC dataset, generated once per session."""
    def make() -> Path:
        root = tmp_path_factory.mktemp("small_data")
        generate(root, SMALL_SPEC)
        return root
    return memo("small_data", make)


def train_argv(data: Path, out: Path, *options: str, overrides: Sequence[str] = SMALL_OVERRIDES) -> List[str]:
    return [PY, "-m", "rdfa_s6", "train", "demo", "--data-root", str(data), "--out", str(out), "--no-progress",
            *options, *overrides]


def run_train(data: Path, out: Path, *options: str, overrides: Sequence[str] = SMALL_OVERRIDES,
              check: bool = True) -> subprocess.CompletedProcess:
    """``rdfa-s6 train demo`` in a subprocess; with ``check``, a failure shows its stderr."""
    proc = subprocess.run(train_argv(data, out, *options, overrides=overrides), capture_output=True, text=True,
                          env=child_env(), timeout=TIMEOUT)
    if check:
        assert proc.returncode == 0, f"training failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def start_train(data: Path, out: Path, *options: str, overrides: Sequence[str] = SMALL_OVERRIDES,
                log: Optional[Path] = None) -> subprocess.Popen:
    """Start ``rdfa-s6 train demo`` in the background; stdout and stderr go to ``log`` (a file)."""
    log = log or out.parent / f"{out.name}.log"
    handle = open(log, "w")
    proc = subprocess.Popen(train_argv(data, out, *options, overrides=overrides), stdout=handle,
                            stderr=subprocess.STDOUT, env=child_env(), text=True)
    proc.log_path = log  # type: ignore[attr-defined]
    handle.close()
    return proc


def wait_until(proc: subprocess.Popen, predicate: Callable[[], bool], timeout: float = TIMEOUT,
               poll: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(poll)
    proc.kill()
    raise AssertionError("timed out waiting for the training process")


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=TIMEOUT)


def records(run: Path, kind: str = "train") -> List[Dict[str, Any]]:
    """The complete records of ``kind`` in a run's metrics.jsonl (a torn last line is skipped)."""
    path = run / "metrics.jsonl"
    out = []
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kind") == kind:
            out.append(rec)
    return out


def weights(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_weights(a: Path, b: Path) -> None:
    """Every tensor of two safetensors files is bit-identical."""
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb), f"{a} and {b} hold different tensors"
    differ = [k for k in wa
              if wa[k].dtype != wb[k].dtype or wa[k].shape != wb[k].shape or not torch.equal(wa[k], wb[k])]
    if differ:
        k = differ[0]
        diff = (wa[k].double() - wb[k].double()).abs().max().item() if wa[k].shape == wb[k].shape else float("nan")
        raise AssertionError(f"{len(differ)} of {len(wa)} tensors differ between {a} and {b}, e.g. {k} "
                             f"(max |diff| {diff:g})")


def assert_same_run(run: Path, ref: Path) -> None:
    """Same final EMA weights, same raw weights in the newest checkpoint, same per-step training records."""
    assert_same_weights(run / "final" / "model.safetensors", ref / "final" / "model.safetensors")
    def latest(r):
        return r / "checkpoints" / (r / "checkpoints" / "LATEST").read_text().strip()

    assert_same_weights(latest(run) / "raw.safetensors", latest(ref) / "raw.safetensors")
    got, want = records(run), records(ref)
    assert [r["step"] for r in got] == [r["step"] for r in want], "metrics.jsonl: steps missing or repeated"
    for g, w in zip(got, want):
        assert g == w, f"metrics.jsonl differs at step {w['step']}: {g} != {w}"
    epochs = [r["epoch"] for r in records(run, "epoch")]
    assert epochs == [r["epoch"] for r in records(ref, "epoch")], f"epoch records {epochs}"
    for g, w in zip(records(run, "epoch"), records(ref, "epoch")):
        assert g["loss"] == w["loss"] and g["step"] == w["step"], f"epoch record {g} != {w}"


def reference_run(tmp_path_factory) -> Path:
    """An uninterrupted run of the SMALL config (deterministic mode, every step logged), once per session."""
    def make() -> Path:
        out = tmp_path_factory.mktemp("reference") / "run"
        run_train(small_data(tmp_path_factory), out, "--log-every", "1")
        return out
    return memo("reference_run", make)


class CodePayload:
    """Unpickling this calls ``open(path, "w")``: the file appearing means code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def poison_losses(monkeypatch, bad_steps) -> None:
    """Make the loss NaN at the given 0-based iterations (a test hook; one loss call per iteration)."""
    from rdfa_s6.train import step

    real, calls = step.detection_losses, {"n": 0}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        if calls["n"] in bad_steps:
            out = {**out, "loss": out["loss"] * float("nan")}
        calls["n"] += 1
        return out

    monkeypatch.setattr(step, "detection_losses", poisoned)
