"""How to run a training (not what to train: that is the config): :class:`TrainOptions`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..precision import TRAIN_PRECISIONS


@dataclass
class TrainOptions:
    """How to run (not what to train: that is the config)."""

    out_dir: Path
    data_root: Optional[Path] = None
    resume: bool = False
    precision: str = "fp32"
    device: str = "auto"
    progress: bool = True  #: report to the progress callback of Trainer.run (False: --no-progress)
    nonfinite: str = "stop"  #: "stop" or "skip" a step whose loss or gradients are not finite
    max_skipped: int = 20  #: with nonfinite="skip": stop after this many non-finite steps in a row (diverged)
    checkpoint_every: int = 0  #: also save a resume point every N iterations (0: end of epoch only)
    log_every: int = 10  #: write a "train" record to metrics.jsonl every N iterations
    validate: bool = True  #: Trainer.run validates on data.val_split by default (rdfa_s6.train.validation)

    def check(self) -> None:
        """Raise UserError for values the command line would not accept."""
        if self.precision not in TRAIN_PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {self.precision!r}")
        if self.nonfinite not in ("stop", "skip"):
            raise UserError(f"--on-nonfinite must be stop or skip, got {self.nonfinite!r}")
        if self.max_skipped < 1:
            raise UserError(f"--max-skipped must be at least 1, got {self.max_skipped}")
        if self.log_every < 1:
            raise UserError(f"--log-every must be at least 1, got {self.log_every}")
        if self.checkpoint_every < 0:
            raise UserError(f"--checkpoint-every must be 0 (off) or positive, got {self.checkpoint_every}")
