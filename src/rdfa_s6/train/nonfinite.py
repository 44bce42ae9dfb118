"""``--on-nonfinite``: what a training step with a NaN/Inf loss or gradient does (fp32/bf16; fp16's GradScaler
skips such steps itself)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .exceptions import NonFiniteError

log = logging.getLogger(__name__)


class NonFinitePolicy:
    """``stop``: raise at the first non-finite step; ``skip``: drop its update, unless more than
    ``max_skipped`` steps in a row were non-finite (the run diverged)."""

    def __init__(self, mode: str = "stop", max_skipped: int = 20) -> None:
        self.mode, self.max_skipped = mode, max_skipped
        self.in_a_row = 0  #: non-finite steps skipped since the last good one

    def good_step(self) -> None:
        self.in_a_row = 0

    def bad_step(self, where: str, loss: float, grad_norm: float, last_checkpoint: Optional[Path]) -> None:
        """A non-finite step at ``where``: raises :class:`NonFiniteError`, or returns if it may be skipped."""
        if self.mode == "stop":
            kept = (f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else
                    "no checkpoint was saved yet")
            raise NonFiniteError(f"non-finite loss or gradients at {where}: loss {loss}, grad norm {grad_norm}; "
                                 f"stopped without updating the model; {kept}; lower train.lr, or pass "
                                 f"--on-nonfinite skip to skip such steps")
        self.in_a_row += 1
        if self.in_a_row > self.max_skipped:
            raise NonFiniteError(f"non-finite loss or gradients in {self.in_a_row} steps in a row, the last at "
                                 f"{where}: the run has diverged (--max-skipped {self.max_skipped}); lower train.lr "
                                 f"and start again or resume from an earlier checkpoint")
        log.warning("skipping the update at %s: non-finite loss or gradients", where)
