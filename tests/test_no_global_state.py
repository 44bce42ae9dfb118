"""Constructing library objects changes nothing in the process (issue 25 item 5): a Trainer, a model and an
``rdfa_s6.Detector`` leave the global random generators, the signal handlers, the loggers' levels and the process
group as they were. What a run does to the process happens in ``Trainer.run`` (seeding, the process group) or in
the CLI (signals); the mixer's settings are read when it is built."""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator

import _tiny_training
import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from _tiny_training import TINY_OVERRIDES, train_tiny

from rdfa_s6 import Detector, build_detector, load_config
from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.ssm.bis6 import BiS6
from rdfa_s6.train import dist
from rdfa_s6.train.loop import Trainer, TrainOptions
from rdfa_s6.train.signals import stop_on_signals

tiny_data = _tiny_training.tiny_data
_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags

TINY_MODEL = ["data.input_dim=12", "data.num_classes=3", "data.max_seq_len=64", "model.embed_dim=16",
              "model.stem.chan_pool_len=8", "model.branch.levels=2", "model.mixer.d_state=4",
              "model.regression_ranges=[[0,4],[4,8],[8,10000]]"]


def process_state() -> Dict[str, Any]:
    """What a library object must not change when it is built."""
    loggers = {name: lg.level for name, lg in logging.Logger.manager.loggerDict.items()
               if isinstance(lg, logging.Logger)}
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state().tolist(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "random": random.getstate(),
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
        "loggers": {**loggers, "": logging.getLogger().level},
        "process_group": torch_dist.is_available() and torch_dist.is_initialized(),
    }


@contextmanager
def unchanged(what: str) -> Iterator[None]:
    before = process_state()
    yield
    after = process_state()
    changed = [k for k in before if before[k] != after[k]]
    if "loggers" in changed:  # new loggers may appear (at their default level): only a changed level counts
        if all(after["loggers"].get(name) == level for name, level in before["loggers"].items()):
            changed.remove("loggers")
    assert not changed, f"building {what} changed {changed}"


def test_building_a_trainer_a_model_and_a_detector_changes_nothing(tiny_data, tmp_path, monkeypatch):
    # under torchrun's environment too: building joins no process group (Trainer.run does)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with unchanged("a Trainer"):
        trainer = Trainer(load_config("demo", overrides=TINY_OVERRIDES),
                          TrainOptions(out_dir=tmp_path / "run", data_root=tiny_data, progress=False))
    assert trainer.dist == dist.DistInfo(0, 2, 0) and trainer.learner.net is trainer.model
    monkeypatch.delenv("WORLD_SIZE")
    cfg = load_config("demo", TINY_MODEL)
    with unchanged("a model"):
        model = build_detector(cfg)
    save_checkpoint(tmp_path / "ckpt", model, cfg)
    with unchanged("an rdfa_s6.Detector"):
        Detector.from_pretrained(tmp_path / "ckpt", precision="fp32")


def test_a_model_is_initialised_from_the_global_generator_without_advancing_it():
    cfg = load_config("demo", TINY_MODEL)
    torch.manual_seed(7)
    first, second = build_detector(cfg).state_dict(), build_detector(cfg).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_trainer_runs_off_the_main_thread(tiny_data, tmp_path):
    """No signal handlers in the library: Trainer.run works in a worker thread (signal.signal would raise)."""
    errors: list = []

    def work() -> None:
        try:
            train_tiny(tiny_data, tmp_path / "run")
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors and (tmp_path / "run" / "final").is_dir(), errors


def test_stop_on_signals_asks_once_then_restores_the_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    asked: list = []
    with stop_on_signals(asked.append):
        os.kill(os.getpid(), signal.SIGTERM)
        assert asked == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) == before[signal.SIGTERM]  # a second one acts at once
        assert signal.getsignal(signal.SIGINT) not in (before[signal.SIGINT], None)
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_train_command_installs_its_handlers_for_the_run_only(tiny_data, tmp_path, monkeypatch):
    from rdfa_s6.cli import main as cli_main
    from rdfa_s6.train import signals

    installed: list = []
    real = signals.stop_on_signals

    def spy(request_stop, *args):
        installed.append({s: signal.getsignal(s) for s in signals.STOP_SIGNALS})
        return real(request_stop, *args)

    monkeypatch.setattr(signals, "stop_on_signals", spy)
    before = {s: signal.getsignal(s) for s in signals.STOP_SIGNALS}
    assert cli_main(["train", "demo", "--data-root", str(tiny_data), "--out", str(tmp_path / "run"),
                     "--no-progress", *TINY_OVERRIDES]) == 0
    assert installed == [before]  # installed once, around the run
    assert {s: signal.getsignal(s) for s in before} == before  # and restored


def test_the_process_group_is_left_when_the_run_raises(monkeypatch):
    calls: list = []
    state = {"up": False}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(dist.dist, "is_initialized", lambda: state["up"])
    monkeypatch.setattr(dist.dist, "init_process_group", lambda backend: (calls.append(backend),
                                                                          state.update(up=True)))
    monkeypatch.setattr(dist.dist, "destroy_process_group", lambda: (calls.append("left"), state.update(up=False)))
    monkeypatch.setattr(dist.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist.dist, "get_world_size", lambda: 2)
    with pytest.raises(RuntimeError, match="boom"):
        with dist.process_group(torch.device("cpu")) as info:
            assert info == dist.DistInfo(1, 2, 0)
            raise RuntimeError("boom")
    assert calls == ["gloo", "left"]
    state["up"] = True  # a group joined by an enclosing block is that block's to leave
    with dist.process_group(torch.device("cpu")):
        pass
    assert calls == ["gloo", "left"]


def test_mixer_settings_are_read_when_it_is_built(monkeypatch):
    monkeypatch.setenv("RDFA_S6_SCAN", "reference")
    monkeypatch.setenv("RDFA_S6_FUSED", "0")
    from_env, explicit = BiS6(8), BiS6(8, scan_backend="chunked", fused=True)
    monkeypatch.delenv("RDFA_S6_SCAN")
    monkeypatch.delenv("RDFA_S6_FUSED")
    assert (from_env.scan_backend, from_env.fused) == ("reference", False)  # the environment as it was then
    assert (explicit.scan_backend, explicit.fused) == ("chunked", True)  # an explicit setting wins
    assert (BiS6(8).scan_backend, BiS6(8).fused) == ("auto", True)


def test_view_and_visualize_change_no_logger_level(tmp_path, monkeypatch):
    """They used to lower rdfa_s6.eval.predictions to ERROR around a second alignment (and restore it); now the
    second alignment is asked not to log (align_predictions(log_warnings=False)): no logger is touched."""
    import json

    from rdfa_s6.cli import main

    pytest.importorskip("matplotlib")
    gt = {"database": {"v": {"subset": "test", "duration": 10.0, "annotations": [
        {"label": "a", "segment": [1.0, 2.0]}]}}}
    pred = {"results": {"v": [{"segment": [1.0, 2.0], "label": "a", "score": 0.9}],
                        "elsewhere": [{"segment": [1.0, 2.0], "label": "a", "score": 0.5}]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(pred))
    calls = []
    real = logging.Logger.setLevel
    monkeypatch.setattr(logging.Logger, "setLevel",
                        lambda self, level: (calls.append((self.name, level)), real(self, level))[1])
    assert main(["view", "--pred", str(tmp_path / "p.json"), "--gt", str(tmp_path / "gt.json"),
                 "--out", str(tmp_path / "r.html")]) == 0
    assert main(["visualize", "--pred", str(tmp_path / "p.json"), "--gt", str(tmp_path / "gt.json"),
                 "--out", str(tmp_path / "fig")]) == 0
    assert [c for c in calls if c[0].startswith("rdfa_s6")] == []
