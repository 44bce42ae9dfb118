"""How a training run stops early: a non-finite step (a user error) or a signal after a saved resume point."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

from ..errors import UserError


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
