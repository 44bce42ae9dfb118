"""What the training loop needs besides the config: run options, its exceptions, seeding and batch order."""
from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainOptions:
    """How to run (not what to train: that is the config)."""

    out_dir: Path
    data_root: Optional[Path] = None
    resume: bool = False
    precision: str = "fp32"
    device: str = "auto"
    progress: bool = True
    nonfinite: str = "stop"  #: "stop" or "skip" a step whose loss or gradients are not finite
    max_skipped: int = 20  #: with nonfinite="skip": stop after this many non-finite steps in a row (diverged)
    checkpoint_every: int = 0  #: also save a resume point every N iterations (0: end of epoch only)
    log_every: int = 10  #: write a "train" record to metrics.jsonl every N iterations

    def check(self) -> None:
        """Raise UserError for values the command line would not accept."""
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.nonfinite not in ("stop", "skip"):
            raise UserError(f"--on-nonfinite must be stop or skip, got {self.nonfinite!r}")
        if self.max_skipped < 1:
            raise UserError(f"--max-skipped must be at least 1, got {self.max_skipped}")
        if self.log_every < 1:
            raise UserError(f"--log-every must be at least 1, got {self.log_every}")
        if self.checkpoint_every < 0:
            raise UserError(f"--checkpoint-every must be 0 (off) or positive, got {self.checkpoint_every}")


class NonFiniteError(UserError):
    """The loss or the gradients became NaN/Inf (the model was not updated with them)."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training after a resume point was saved (``folder``: None on other ranks).

    ``status`` is the shell's exit status for the signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, signum: Optional[int], folder: Optional[Path], where: str) -> None:
        self.signame = signal.Signals(signum).name if signum else "a stop request"
        super().__init__(f"{self.signame}: stopped at {where}; resume point saved in {folder}")
        self.folder, self.where = folder, where
        self.status = 128 + int(signum or signal.SIGINT)


def device_of(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_batches(num_videos: int, batch_size: int, seed: int, epoch: int) -> List[List[int]]:
    """Shuffled global batches of one epoch, ``drop_last``; depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(num_videos, generator=g).tolist()
    return [order[i : i + batch_size] for i in range(0, num_videos - batch_size + 1, batch_size)]
