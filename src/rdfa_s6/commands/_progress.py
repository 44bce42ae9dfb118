"""Progress on the terminal: the library's progress callbacks (:mod:`rdfa_s6.progress`) drawn with tqdm."""
from __future__ import annotations

from typing import Any, Dict, Optional

from tqdm import tqdm

from ..progress import Bar


def video_bar(desc: str, enabled: bool, disable: Optional[bool] = None) -> Optional[Bar]:
    """A bar of videos (None when ``enabled`` is False, e.g. ``--no-progress``); ``disable`` as tqdm's."""
    return Bar(tqdm, desc, "video", disable) if enabled else None


class TrainBars:
    """Draws :class:`rdfa_s6.progress.TrainProgress`: a bar per epoch (iterations, loss, lr; hidden when the
    output is not a terminal, and with ``bars=False``: ``--no-progress``) and one line per epoch on stdout (loss,
    seconds, validation mAP), which ``--no-progress`` keeps: it is the run's log, not a progress bar."""

    def __init__(self, epochs: int, bars: bool = True) -> None:
        self.epochs, self.bars = epochs, bars
        self.bar: Any = None

    def epoch_start(self, epoch: int, done: int, total: int) -> None:
        self.close()
        if self.bars:
            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}/{self.epochs}", leave=False, unit="it",
                            disable=None)  # None: no bar when the output is not a terminal (as before)

    def iteration(self, epoch: int, done: int, total: int, stats: Dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
            self.bar.update()

    def epoch(self, record: Dict[str, Any]) -> None:
        self.close()
        extra = f", val avg mAP {record['val_average_mAP']:.4f}" if "val_average_mAP" in record else ""
        tqdm.write(f"epoch {record['epoch']}/{self.epochs}: loss {record['loss']:.4f}, {record['seconds']:.1f} s"
                   f"{extra}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
