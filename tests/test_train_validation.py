"""Validation is the library's (rdfa_s6.train.validation): a Python user of the Trainer gets the schedule
``rdfa-s6 train`` uses, and ``Trainer.run`` returns a TrainResult."""
from __future__ import annotations

import dataclasses

import _tiny_training
import pytest
from _tiny_training import TINY_OVERRIDES

from rdfa_s6.config import load_config
from rdfa_s6.data.synth import generate
from rdfa_s6.train.loop import Trainer, TrainOptions, TrainResult
from rdfa_s6.train.validation import validation, validation_due

_one_thread_and_restored_flags = _tiny_training._one_thread_and_restored_flags
WITH_VAL = [o for o in TINY_OVERRIDES if not o.startswith("data.val_split")] + [
    "data.val_split=validation", "train.epochs=3"]


@pytest.fixture(scope="module")
def val_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("val_data")
    generate(root, dataclasses.replace(_tiny_training.TINY_SPEC, val_videos=2))
    return root


def test_the_schedule_is_every_fifth_of_the_run_and_the_last_epoch():
    assert [e for e in range(1, 11) if validation_due(e, 10)] == [2, 4, 6, 8, 10]
    assert [e for e in range(1, 4) if validation_due(e, 3)] == [1, 2, 3]
    assert [e for e in range(1, 13) if validation_due(e, 12)] == [2, 4, 6, 8, 10, 12]
    assert [e for e in range(1, 8) if validation_due(e, 7)] == [1, 2, 3, 4, 5, 6, 7]


def test_a_python_user_of_the_trainer_gets_validation_and_a_result(val_data, tmp_path):
    cfg = load_config("demo", overrides=WITH_VAL)
    trainer = Trainer(cfg, TrainOptions(out_dir=tmp_path / "run", data_root=val_data, progress=False))
    result = trainer.run()
    assert isinstance(result, TrainResult) and result.steps == 6 and result.final == tmp_path / "run" / "final"
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert all("val_average_mAP" in r for r in result.history)
    assert result.model is trainer.ema.module and result.config.data.input_dim == result.data.input_dim
    # validate=False (the demo, which tests the final model instead): no validation records
    quiet = Trainer(cfg, TrainOptions(out_dir=tmp_path / "quiet", data_root=val_data, progress=False,
                                      validate=False)).run()
    assert not any("val_average_mAP" in r for r in quiet.history)


def test_no_validation_split_no_validation(val_data):
    cfg = load_config("demo", overrides=TINY_OVERRIDES)
    assert validation(cfg, None) is None  # type: ignore[arg-type]
