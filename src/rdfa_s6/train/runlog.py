"""``metrics.jsonl`` and TensorBoard events of a run, kept consistent across resumptions.

Records: ``{"kind": "train", "epoch", "step", "loss", ...}`` after logged iterations (``step`` counts the
iterations done, 1-based) and ``{"kind": "epoch", "epoch", "step", "loss", ...}`` at the end of each epoch.
A fresh run starts a new file. A resumed run first drops what the interrupted process logged after the resume
point (train records with ``step`` beyond it, epoch records of epochs not finished at it, and a torn last
line), so the file never holds a step twice; TensorBoard events after the resume step are purged likewise.
Non-finite numbers (a NaN loss) are written as ``null``, so that every line is standard JSON.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..checkpoint import atomic_write_bytes, atomic_write_json
from ..config import Config, config_to_dict

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"


def _kept(line: str, epoch: int, step: int) -> bool:
    """Whether a metrics line written before a resume at (epoch, step) is still valid."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False  # a line torn by a kill
    if not isinstance(record, dict):
        return False
    if record.get("kind") == "epoch":
        return int(record.get("epoch", 0)) < epoch
    return int(record.get("step", 0)) <= step


def truncate_metrics(path: Path, epoch: int, step: int) -> int:
    """Rewrite ``path`` (atomically) without records logged after the resume point; returns lines dropped."""
    if not path.is_file():
        return 0
    lines: List[str] = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept = [ln for ln in lines if _kept(ln, epoch, step)]
    if len(kept) != len(lines):
        atomic_write_bytes(path, "".join(ln + "\n" for ln in kept).encode("utf-8"))
    return len(lines) - len(kept)


class RunLog:
    """Writes the run's records (main process only; the others get a RunLog that does nothing)."""

    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.out_dir, self.enabled = Path(out_dir), enabled
        self.file = None
        self.writer = None

    def open(self, cfg: Config, resume_at: Optional[Dict[str, int]] = None) -> None:
        """Write config.json and open the logs; ``resume_at = {"epoch", "step"}`` when resuming."""
        if not self.enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out_dir / "config.json", config_to_dict(cfg))
        path = self.out_dir / METRICS
        purge_step = None
        if resume_at is not None:
            dropped = truncate_metrics(path, resume_at["epoch"], resume_at["step"])
            if dropped:
                log.info("%s: dropped %d record(s) logged after the resume point", path, dropped)
            purge_step = resume_at["step"] + 1
        self.file = open(path, "a" if resume_at is not None else "w", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=purge_step)
        except ImportError:  # tensorboard is a dependency, but a stripped install should still train
            log.warning("tensorboard is not installed; metrics go to metrics.jsonl only")

    def write(self, record: Dict[str, Any], step: int) -> None:
        """Append ``record`` (and its numbers to TensorBoard at ``step``)."""
        if self.file is None:
            return
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        self.file.write(json.dumps(record, allow_nan=False) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch", "step"):
                    self.writer.add_scalar(f"{record.get('kind', 'train')}/{key}", value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
