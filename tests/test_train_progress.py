"""Training reports progress through a callback (the CLI draws it) and leaves torch's global flags as it found them."""
from __future__ import annotations

import _tiny_training
import pytest
import torch
from _tiny_training import TINY_OVERRIDES, train_tiny

from rdfa_s6.commands._progress import TrainBars
from rdfa_s6.config import load_config
from rdfa_s6.progress import Bar
from rdfa_s6.train.loop import Trainer, TrainOptions
from rdfa_s6.train.randomness import deterministic_algorithms

#: fixtures shared with the other in-process training tests
tiny_data = _tiny_training.tiny_data
_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags


class Recorder:
    """A TrainProgress that keeps what it is told."""

    def __init__(self) -> None:
        self.events = []

    def epoch_start(self, epoch, done, total):
        self.events.append(("start", epoch, done, total))

    def iteration(self, epoch, done, total, stats):
        self.events.append(("iteration", epoch, done, total, round(stats["loss"], 6)))

    def epoch(self, record):
        self.events.append(("epoch", record["epoch"], round(record["loss"], 6)))


def test_training_reports_each_iteration_and_epoch_to_the_callback_and_prints_nothing(tiny_data, tmp_path, capsys):
    progress = Recorder()
    trainer = Trainer(load_config("demo", overrides=TINY_OVERRIDES),
                      TrainOptions(out_dir=tmp_path / "run", data_root=tiny_data, log_every=1))
    summary = trainer.run(progress=progress)
    kinds = [e[:4] for e in progress.events if e[0] != "epoch"]
    assert kinds == [("start", 1, 0, 2), ("iteration", 1, 1, 2), ("iteration", 1, 2, 2),
                     ("start", 2, 0, 2), ("iteration", 2, 1, 2), ("iteration", 2, 2, 2)]
    epochs = [e for e in progress.events if e[0] == "epoch"]
    assert epochs == [("epoch", r["epoch"], round(r["loss"], 6)) for r in summary.history]
    assert [e[0] for e in progress.events].index("epoch") == 3  # after the epoch's iterations
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # the library prints nothing; the CLI draws the callback


def test_no_progress_option_silences_the_callback(tiny_data, tmp_path):
    progress = Recorder()
    trainer = Trainer(load_config("demo", overrides=TINY_OVERRIDES),
                      TrainOptions(out_dir=tmp_path / "run", data_root=tiny_data, progress=False))
    trainer.run(progress=progress)
    assert progress.events == []


def test_deterministic_training_restores_torch_flags(tiny_data, tmp_path):
    torch.use_deterministic_algorithms(False)
    train_tiny(tiny_data, tmp_path / "run")  # TINY_OVERRIDES has train.deterministic=true
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("before", [(False, False), (True, False), (True, True)])
def test_deterministic_algorithms_sets_then_restores_even_after_an_error(before):
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        with pytest.raises(RuntimeError):
            with deterministic_algorithms(True):
                assert torch.are_deterministic_algorithms_enabled()
                assert torch.is_deterministic_algorithms_warn_only_enabled()
                raise RuntimeError("boom")
        assert (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) == before
        with deterministic_algorithms(False):  # off: the setting is left as it is
            assert torch.are_deterministic_algorithms_enabled() == before[0]
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


def test_train_bars_write_one_line_per_epoch(capsys):
    bars = TrainBars(epochs=3)
    bars.epoch_start(2, 1, 4)
    bars.iteration(2, 2, 4, {"loss": 0.5, "lr": 1e-4})
    bars.epoch({"epoch": 2, "loss": 0.25, "seconds": 1.26, "val_average_mAP": 0.5})
    bars.epoch({"epoch": 3, "loss": 0.125, "seconds": 2.0})
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["epoch 2/3: loss 0.2500, 1.3 s, val avg mAP 0.5000",
                                         "epoch 3/3: loss 0.1250, 2.0 s"]
    assert captured.err == ""  # not a terminal: no bar drawn (the epoch lines stay)
    assert bars.bar is None


class FakeBar:
    made = []

    def __init__(self, **kwargs):
        self.kwargs, self.n, self.closed = kwargs, 0, False
        FakeBar.made.append(self)

    def update(self, k):
        self.n += k

    def close(self):
        self.closed = True


def test_bar_opens_at_the_first_report_and_closes_at_the_total():
    FakeBar.made = []
    bar = Bar(FakeBar, "predict test", disable=False)
    for done in range(4):
        bar(done, 3)
    assert len(FakeBar.made) == 1
    made = FakeBar.made[0]
    assert (made.n, made.closed, made.kwargs["total"], made.kwargs["desc"], made.kwargs["disable"]) == \
        (3, True, 3, "predict test", False)
