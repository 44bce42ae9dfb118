"""In-process training of a tiny model on a tiny synthetic dataset, shared by the robustness and fault tests:
2 epochs of 2 iterations (batch 2) on inputs of 64 steps, a second or two on a CPU."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rdfa_s6.config import load_config
from rdfa_s6.data.synth import SynthSpec, generate
from rdfa_s6.train.loop import Trainer, TrainOptions

TINY_SPEC = SynthSpec(train_videos=4, val_videos=0, test_videos=0, min_len=40, max_len=64, seed=5)
#: 2 epochs of 2 iterations: steps 1-2 in epoch 1, 3-4 in epoch 2
TINY_OVERRIDES = ["train.epochs=2", "train.warmup_epochs=1", "train.batch_size=2", "data.val_split=null",
                  "data.max_seq_len=64", "model.stem.chan_pool_len=16", "train.deterministic=true"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread_and_restored_flags(one_thread):
    """In-process training uses one thread (``one_thread``). ``Trainer.run`` restores torch's deterministic mode
    itself (tests/test_train_progress.py checks that); restoring it here too keeps a failing test from leaking
    the flag into the modules that run after it."""
    flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_data")
    generate(root, TINY_SPEC)
    return root


def train_tiny(data: Path, out: Path, **options) -> Trainer:
    """Train the tiny model on ``data`` into ``out`` (``options``: more TrainOptions); returns the Trainer."""
    trainer = Trainer(load_config("demo", overrides=TINY_OVERRIDES),
                      TrainOptions(out_dir=out, data_root=data, progress=False, **options))
    trainer.run()
    return trainer
