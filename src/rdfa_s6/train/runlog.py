"""``metrics.jsonl`` and TensorBoard events of a run, kept consistent across resumptions and full disks.

Records: ``{"kind": "train", "epoch", "step", "loss", ...}`` after logged iterations (``step`` counts the
iterations done, 1-based) and ``{"kind": "epoch", "epoch", "step", "loss", ...}`` at the end of each epoch.
A fresh run starts a new file. A resumed run first drops what the interrupted process logged after the resume
point (train records with ``step`` beyond it, epoch records of epochs not finished at it, and a torn last
line), so the file never holds a step twice; TensorBoard events after the resume step are purged likewise.
Non-finite numbers (a NaN loss) are written as ``null``, so that every line is standard JSON.

A full disk (ENOSPC, EDQUOT, EROFS) does not raise here: the first failed write is kept in ``failure`` (the
trainer then stops, see ``Trainer``), a half-written line is cut off again, and that record and every later
one are collected in ``unlogged``. The trainer stores ``unlogged`` in the resume point it saves next, and the
resumed run writes those records first (:meth:`RunLog.open`), so no step is lost or logged twice. Before each
checkpoint :meth:`RunLog.flush` fsyncs ``metrics.jsonl`` and flushes TensorBoard, so that the logs of every
step up to a checkpoint are on disk, or carried in it, when the checkpoint is published.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_write_bytes, atomic_write_json, open_regular
from ..config import Config, config_to_dict
from ..errors import DiskFullError, disk_full

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


def _key(record: Dict[str, Any]) -> Tuple[Any, ...]:
    """What identifies a record: one train record per step, one epoch record per epoch."""
    return (record.get("kind"), record.get("epoch") if record.get("kind") == "epoch" else record.get("step"))


def truncate_metrics(path: Path, epoch: int, step: int, carried: Sequence[Dict[str, Any]] = ()) -> int:
    """Rewrite ``path`` (atomically) without records logged after the resume point and with the ``carried``
    records (logged at or before it, but not written because the disk was full) appended; returns the number of
    lines dropped. Idempotent: a carried record already in the file (from an earlier attempt) is not repeated."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines: List[str] = [ln for ln in text.splitlines() if ln.strip()]
    whole = lines if text.endswith("\n") else lines[:-1]  # a line without its newline was cut: lines are written whole
    keys = {_key(r) for r in carried}
    kept = [ln for ln in whole if _kept(ln, epoch, step) and _key(json.loads(ln)) not in keys]
    added = [json.dumps(r, allow_nan=False) for r in carried]
    if len(kept) != len(lines) or added:
        atomic_write_bytes(path, "".join(ln + "\n" for ln in kept + added).encode("utf-8"))
    return len(lines) - len(kept)


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` whole or not at all: after a failed write the file is cut back to its old length."""
    start = os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        raise


def epoch_record(epoch: int, step: int, losses: Sequence[float], seconds: float, videos: int) -> Dict[str, Any]:
    """The ``epoch`` record of metrics.jsonl: mean loss of the epoch's iterations, wall time (s), videos per second
    and, with ``--on-nonfinite skip``, how many steps were skipped (their loss is not finite)."""
    record: Dict[str, Any] = {"kind": "epoch", "epoch": epoch, "step": step,
                              "loss": float(np.mean(losses)) if losses else float("nan"),
                              "seconds": seconds, "videos_per_second": videos / max(seconds, 1e-9)}
    skipped = int(sum(not np.isfinite(x) for x in losses))
    if skipped:  # only with --on-nonfinite skip: "stop" raises at the first one
        record["skipped_steps"] = skipped
    return record


class RunLog:
    """Writes the run's records (main process only; the others get a RunLog that does nothing)."""

    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.out_dir, self.enabled = Path(out_dir), enabled
        self.fd: Optional[int] = None  #: metrics.jsonl, opened for appending
        self.writer: Any = None  #: a torch.utils.tensorboard SummaryWriter (imported when the log is opened)
        self.failure: Optional[DiskFullError] = None  #: the first write that failed for lack of space
        #: records not (or not surely) written since then: {"record", "step", "metrics": bool, "tb": bool}
        self.unlogged: List[Dict[str, Any]] = []
        self._tb_unflushed: List[Tuple[Dict[str, Any], int]] = []  #: given to TensorBoard since its last flush

    def open(self, cfg: Config, resume_at: Optional[Dict[str, int]] = None,
             carried: Iterable[Dict[str, Any]] = ()) -> None:
        """Write config.json and open the logs; ``resume_at = {"epoch", "step"}`` when resuming, ``carried``: the
        ``unlogged`` records stored in the resume point. DiskFullError if the disk is full or read-only."""
        if not self.enabled:
            return
        carried = list(carried)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out_dir / "config.json", config_to_dict(cfg))
            path = self.out_dir / METRICS
            purge_step = None
            if resume_at is not None:
                dropped = truncate_metrics(path, resume_at["epoch"], resume_at["step"],
                                           [c["record"] for c in carried if c["metrics"]])
                if dropped:
                    log.info("%s: dropped %d record(s) logged after the resume point", path, dropped)
                purge_step = resume_at["step"] + 1
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume_at is not None else os.O_TRUNC)
            self.fd = open_regular(path, flags)  # never through a planted symlink
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but a stripped install should still train
                log.warning("tensorboard is not installed; metrics go to metrics.jsonl only")
                return
            self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=purge_step)
            for c in carried:
                if c["tb"]:
                    self._add_scalars(c["record"], int(c["step"]))
            self.writer.flush()
        except OSError as err:
            self.close()
            raise disk_full(err, err.filename or self.out_dir) or err from None

    def _add_scalars(self, record: Dict[str, Any], step: int) -> None:
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch", "step"):
                self.writer.add_scalar(f"{record.get('kind', 'train')}/{key}", value, step)

    def write(self, record: Dict[str, Any], step: int) -> None:
        """Append ``record`` (and its numbers to TensorBoard at ``step``). Never raises for a full disk."""
        if self.fd is None and self.failure is None:
            return
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        if self.failure is not None:
            self.unlogged.append({"record": record, "step": step, "metrics": True, "tb": True})
            return
        assert self.fd is not None
        try:
            append_whole(self.fd, (json.dumps(record, allow_nan=False) + "\n").encode("utf-8"))
        except OSError as err:
            self._fail(err, self.out_dir / METRICS, [(record, step, True)])
            return
        if self.writer is not None:
            try:
                self._add_scalars(record, step)
            except OSError as err:  # raised by TensorBoard's writer thread (for this or an earlier record)
                self._fail(err, self.out_dir / "tb", [(record, step, False)])
                return
            self._tb_unflushed.append((record, step))

    def flush(self) -> None:
        """Make every record so far durable (fsync of metrics.jsonl, TensorBoard flush). Called before a
        checkpoint; a full disk is recorded in ``failure`` (the records go to ``unlogged``)."""
        if self.failure is not None or self.fd is None:
            return
        try:
            os.fsync(self.fd)
        except OSError as err:  # ENOSPC may only show here (delayed allocation): the lines are in doubt
            self._fail(err, self.out_dir / METRICS, [])
            return
        if self.writer is not None:
            try:
                self.writer.flush()
                self._tb_unflushed = []
            except OSError as err:
                self._fail(err, self.out_dir / "tb", [])

    def _fail(self, err: OSError, where: Path, pending: List[Tuple[Dict[str, Any], int, bool]]) -> None:
        """Record a failed write (re-raise errors that are not about space) and stop writing."""
        full = disk_full(err, where)
        if full is None:
            raise err
        log.info("%s", full)  # the trainer stops and reports it
        self.failure = full
        if self.writer is not None:  # TensorBoard events not yet flushed are in doubt: carry them
            try:
                self.writer.flush()
                self._tb_unflushed = []
            except OSError:
                pass
        self.unlogged += [{"record": r, "step": s, "metrics": False, "tb": True} for r, s in self._tb_unflushed]
        self.unlogged += [{"record": r, "step": s, "metrics": m, "tb": True} for r, s, m in pending]
        self._tb_unflushed = []
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except OSError as err:  # every record was flushed at the last checkpoint; only later ones are lost
                log.warning("closing the TensorBoard events in %s failed: %s", self.out_dir / "tb", err)
