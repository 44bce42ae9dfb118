"""The run supervisor (docs/model.md §4.4-4.5): one code path for CPU, CUDA and ``torchrun`` data parallelism.

The learning of one iteration is :class:`rdfa_s6.train.step.Learner`'s (forward, losses, backward, update); the
:class:`Trainer` runs ``train.epochs`` epochs (1..E) of them and keeps the run: resume points, the run log,
validation (:mod:`rdfa_s6.train.validation`), agreeing to stop, non-finite steps. The EMA model is what is saved
as ``model.safetensors``, evaluated on the validation split (if the preset has one) and reported; the test split
is never looked at here. :meth:`Trainer.run` returns a :class:`TrainResult`.

Reproducibility: batches, crops and drop-path decisions are functions of (seed, epoch, step, position in the
global batch) only, so a run resumed from any checkpoint, and a run on N processes with the same global batch,
follow the uninterrupted 1-process run (bit for bit in ``train.deterministic`` mode for resumption; up to
float summation order across processes). :meth:`Trainer.request_stop` (the CLI calls it on SIGINT/SIGTERM,
``rdfa_s6.train.signals``) finishes the current iteration, saves a resume point and raises
:class:`TrainingInterrupted`.

Constructing a :class:`Trainer` changes nothing in the process (no global seeding, no process group, no signal
handler); :meth:`Trainer.run` joins the ``torchrun`` process group (left again when it returns or raises) and
seeds Python's, NumPy's and torch's global generators.

Faults: :meth:`Trainer.run` holds the run folder (``rdfa_s6.runlock``; rank 0 under ``torchrun``), so a second
process on it is refused. A full or read-only disk raises :class:`~rdfa_s6.errors.DiskFullError` on every
process: when a checkpoint cannot be written, the previous one stays the resume point; when the run log cannot
be written, all processes stop after the next iteration and save a resume point that carries the records not
logged (or, if that fails too, the previous resume point stays).
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch
from torch import nn

from ..checkpoint import latest_checkpoint, save_checkpoint
from ..config import Config
from ..data.batch import Batch
from ..data.dataset import Collate, TALDataset, load_batches
from ..data.prepare import PreparedData, prepare_data
from ..errors import DiskFullError, UserError
from ..keyed import LOADER_WORKERS, keyed_seed
from ..models import build_detector
from ..progress import TrainProgress
from .dist import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_error,
    device_of,
    dist_info_from_env,
    hold_run_folder,
    on_main,
    process_group,
)
from .exceptions import NonFiniteError, TrainingInterrupted
from .nonfinite import NonFinitePolicy
from .options import TrainOptions
from .randomness import deterministic_algorithms, epoch_batches, seed_everything
from .resume import commit_final, commit_resume_point, load_weights
from .runlog import RunLog, epoch_record
from .state import discard_after, read_train_state, write_train_state
from .step import Learner
from .validation import EvaluateFn, validation

log = logging.getLogger(__name__)

__all__ = ["Trainer", "TrainOptions", "TrainResult", "NonFiniteError", "TrainingInterrupted"]


@dataclass
class TrainResult:
    """What :meth:`Trainer.run` leaves: ``final`` (the ``final/`` checkpoint folder; None on ranks other than 0),
    ``history`` (the epoch records of metrics.jsonl written by this run), ``steps`` (iterations done in all),
    ``model`` (the EMA model, what ``final/`` holds), ``config`` (resolved: ``input_dim`` and ``num_classes``
    from the data) and ``data`` (the prepared dataset, with its validation and test splits' annotations)."""

    final: Optional[Path]
    history: List[Dict[str, Any]]
    steps: int
    model: nn.Module
    config: Config
    data: PreparedData


class Trainer:
    """Trains ``cfg`` as ``opts`` say; :meth:`run` does the work."""

    def __init__(self, cfg: Config, opts: TrainOptions) -> None:
        self.cfg, self.opts = cfg, opts
        opts.check()
        self.device = device_of(opts.device)
        self.dist: DistInfo = dist_info_from_env()  # joined by run()
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        tc = cfg.train
        if tc.batch_size % self.dist.world_size:
            raise UserError(f"train.batch_size={tc.batch_size} must be divisible by the {self.dist.world_size} "
                            f"processes")
        splits = [cfg.data.train_split] + ([cfg.data.val_split] if cfg.data.val_split else [])
        self.data: PreparedData = prepare_data(cfg.data, opts.data_root, splits)
        num_classes = None if cfg.data.class_agnostic else self.data.num_classes
        self.cfg = cfg = dataclasses.replace(cfg, data=dataclasses.replace(
            cfg.data, input_dim=self.data.input_dim, num_classes=num_classes))
        # the initial weights are drawn from torch's generator seeded with train.seed, as they always were, but
        # in a fork of it (build_detector leaves the global generator as it was); run() seeds the global ones
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(tc.seed)
            self.model = build_detector(cfg, self.data.input_dim, self.data.num_classes).to(self.device)
        self.train_set = TALDataset(self.data.annotations.split(cfg.data.train_split), self.data.reader, cfg.data,
                                    training=True, seed=tc.seed)
        self.iters_per_epoch = len(self.train_set) // tc.batch_size
        if self.iters_per_epoch == 0:
            raise UserError(f"the training split has {len(self.train_set)} videos, fewer than train.batch_size="
                            f"{tc.batch_size}")
        self.learner = Learner(self.model, tc, self.iters_per_epoch, self.data.num_classes, opts.precision,
                               self.device, self.dist)
        # the learner's parts, by the names the resume points and the tests use
        self.ema, self.optimizer, self.schedule = self.learner.ema, self.learner.optimizer, self.learner.schedule
        self.normaliser, self.scaler = self.learner.normaliser, self.learner.scaler
        self.epoch, self.step, self.iter_in_epoch = 1, 0, 0
        self.epoch_losses: List[float] = []  #: losses of this epoch's iterations so far (kept across resumption)
        self.stop_requested: Optional[int] = None  #: the signal received by this process
        self.stopping = False  #: all processes agree to stop after this iteration
        self.log_failed = False  #: ... because the main process could not write the run log (a full disk)
        self.carried: List[Dict[str, Any]] = []  #: records a resumed run must log first (RunLog.unlogged)
        self.nonfinite = NonFinitePolicy(opts.nonfinite, opts.max_skipped)
        self.runlog = RunLog(opts.out_dir, enabled=self.dist.is_main)

    # ---- resume points -----------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"epoch {self.epoch}, iteration {self.iter_in_epoch} of {self.iters_per_epoch} (step {self.step})"

    def save(self) -> Optional[Path]:
        """Write a resume point (rank 0), atomically, and publish it as the newest checkpoint. On a full disk every
        process raises DiskFullError and the previous checkpoint stays the resume point."""
        barrier(self.dist)
        return on_main(self._save_main, self.dist)

    def _save_main(self) -> Path:
        meta = {"epoch": self.epoch, "step": self.step, "iter_in_epoch": self.iter_in_epoch,
                **self.data.model_meta()}
        state = {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "normaliser": self.normaliser.state_dict(), "epoch": self.epoch, "step": self.step,
                 "iter_in_epoch": self.iter_in_epoch, "epoch_losses": list(self.epoch_losses),
                 "torch_rng": torch.get_rng_state()}

        def write(folder: Path) -> None:
            save_checkpoint(folder, self.ema.module, self.cfg, meta, extra_weights={"raw": self.model})
            write_train_state(folder, {**state, "unlogged": list(self.runlog.unlogged)})

        self.runlog.flush()  # the logs up to this step are on disk, or in runlog.unlogged and so in the checkpoint
        return commit_resume_point(self.opts.out_dir, self.epoch, self.step, write)

    def restore(self) -> bool:
        """Load the newest complete resume point of ``opts.out_dir``; False (and a warning) if there is none."""
        folder = latest_checkpoint(self.opts.out_dir)
        if folder is None:  # e.g. killed before or while writing its first checkpoint: nothing to lose
            log.warning("--resume: %s has no complete checkpoint yet; starting from the beginning", self.opts.out_dir)
            return False
        load_weights(folder, self.model, self.ema.module)
        state = read_train_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.normaliser.load_state_dict(state["normaliser"])
        self.epoch, self.step, self.iter_in_epoch = int(state["epoch"]), int(state["step"]), int(state["iter_in_epoch"])
        self.epoch_losses = [float(x) for x in state.get("epoch_losses", [])]
        self.carried = list(state.get("unlogged", []))
        torch.set_rng_state(state["torch_rng"])
        barrier(self.dist)  # every rank has read the folder before rank 0 tidies up
        dropped = on_main(lambda: discard_after(self.opts.out_dir, folder.name), self.dist)
        if dropped:
            log.info("discarded checkpoints written after %s and never published: %s", folder.name, dropped)
        log.info("resumed from %s (%s)", folder, self._where())
        return True

    # ---- one iteration -----------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> Dict[str, Any]:
        """One iteration on this process's share of a global batch (``self.step`` is its 0-based index); the
        all-reduce of its losses carries the stop flags too, so all processes agree whether to stop after it."""
        stats, flags = self.learner.step(batch, self.step, self._stop_flags)
        self._note_stop(flags)
        if stats.get("skipped"):  # --on-nonfinite: stop (NonFiniteError), or go on with the gradients dropped
            where = (f"step {self.step + 1} (epoch {self.epoch}, iteration {self.iter_in_epoch + 1} of "
                     f"{self.iters_per_epoch})")
            self.nonfinite.bad_step(where, stats["loss"], stats["grad_norm"], latest_checkpoint(self.opts.out_dir))
        else:
            self.nonfinite.good_step()
        self.step += 1
        return stats

    # ---- agreeing to stop --------------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Ask this process to stop: all processes finish the current iteration, save a resume point and raise
        TrainingInterrupted (naming ``signum``). Safe to call from a signal handler (it only sets a flag)."""
        self.stop_requested = signum

    def _stop_flags(self) -> torch.Tensor:
        """This process's ``[signal received, run log not writable]`` as 0./1. (CPU)."""
        return torch.tensor([1.0 if self.stop_requested else 0.0, 1.0 if self.runlog.failure else 0.0])

    def _note_stop(self, flags: torch.Tensor) -> None:
        """``flags``: :meth:`_stop_flags` summed over processes, the same on all of them."""
        self.log_failed = self.log_failed or bool(flags[1] > 0)
        self.stopping = self.stopping or self.log_failed or bool(flags[0] > 0)

    def _agree_stop(self) -> bool:
        """Between iterations: do all processes agree to stop now?"""
        self._note_stop(all_reduce_sum(self._stop_flags().to(self.device), self.dist))
        return self.stopping

    # ---- the loop ----------------------------------------------------------------------------------------
    def _loader(self, batches: List[List[int]]) -> Iterator[Batch]:
        per_rank = self.cfg.train.batch_size // self.dist.world_size
        r = self.dist.rank
        local = [b[r * per_rank : (r + 1) * per_rank] for b in batches]
        collate = Collate(self.cfg.data.max_seq_len, self.model.max_div_factor, training=True)
        # a generator of its own: creating an iterator must not consume torch's global random state
        generator = torch.Generator().manual_seed(keyed_seed(LOADER_WORKERS, self.cfg.train.seed, self.epoch))
        return load_batches(self.train_set, collate, batch_sampler=local, num_workers=self.cfg.train.num_workers,
                            generator=generator)

    def _interrupt(self, folder: Optional[Path]) -> BaseException:
        """What stops the run once a resume point is saved in ``folder``: TrainingInterrupted after a signal,
        DiskFullError (on every process) when the run log could not be written."""
        if not self.log_failed:
            return TrainingInterrupted(self.stop_requested, folder, self._where())
        error = None
        if self.dist.is_main:
            failure = self.runlog.failure
            error = DiskFullError(
                f"{failure}; stopped at {self._where()}; resume point saved in {folder} (with the "
                f"{len(self.runlog.unlogged)} record(s) not logged); free space and continue with the same command "
                f"and --resume", failure.path if failure else None, failure.reason if failure else "")
        shared = broadcast_error(error, self.dist)
        assert isinstance(shared, DiskFullError)  # rank 0's, rebuilt with its path and reason
        return shared

    def _train_epoch(self, progress: Optional[TrainProgress]) -> int:
        """The remaining iterations of ``self.epoch``; returns how many ran. Stops early when asked to."""
        tc = self.cfg.train
        self.train_set.set_epoch(self.epoch)
        batches = epoch_batches(len(self.train_set), tc.batch_size, tc.seed, self.epoch)[self.iter_in_epoch :]
        if progress is not None:
            progress.epoch_start(self.epoch, self.iter_in_epoch, self.iters_per_epoch)
        done = 0
        for batch in self._loader(batches):
            stats = self.train_step(batch)
            self.iter_in_epoch += 1
            done += 1
            self.epoch_losses.append(stats["loss"])
            if progress is not None:
                progress.iteration(self.epoch, self.iter_in_epoch, self.iters_per_epoch, stats)
            if self.step % self.opts.log_every == 0 or stats.get("skipped"):
                self.runlog.write({"kind": "train", "epoch": self.epoch, "step": self.step, **stats}, self.step)
            if self.stopping:
                break
            if self.opts.checkpoint_every and self.step % self.opts.checkpoint_every == 0:
                self.save()
        return done

    def run(self, evaluate_fn: Optional[EvaluateFn] = None, progress: Optional[TrainProgress] = None) -> TrainResult:
        """Train. After each epoch ``evaluate_fn(ema_model, epoch) -> metrics dict`` (or None: not this epoch)
        validates on the main process; by default (``evaluate_fn`` None) the EMA model is validated on the config's
        validation split as :mod:`rdfa_s6.train.validation` schedules it, unless ``opts.validate`` is False.
        ``progress`` (on the main process, unless ``opts.progress`` is False) is called after every iteration and
        epoch.

        Holds ``opts.out_dir`` (FolderBusy if another process does) while it works; in ``train.deterministic``
        mode torch's deterministic algorithms are on meanwhile (and restored after)."""
        with process_group(self.device) as joined:
            if joined != self.dist:
                raise UserError(f"the process group ({joined}) is not the one torchrun's environment described when "
                                f"the trainer was built ({self.dist})")
            self._start()
            if evaluate_fn is None and self.opts.validate:
                evaluate_fn = validation(self.cfg, self.data)
            with hold_run_folder(self.opts.out_dir, self.dist), deterministic_algorithms(self.cfg.train.deterministic):
                return self._run(evaluate_fn, progress if self.opts.progress and self.dist.is_main else None)

    def _start(self) -> None:
        """What a run does to the process: seed the global generators (nothing in training draws from them: drop
        path is keyed, batches and crops have generators of their own) and, under torchrun, wrap the model for
        data parallelism."""
        seed_everything(self.cfg.train.seed)
        if self.dist.enabled and self.learner.net is self.model:
            self.learner.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _run(self, evaluate_fn: Optional[EvaluateFn], progress: Optional[TrainProgress]) -> TrainResult:
        tc = self.cfg.train
        resume_at = None
        if self.opts.resume and self.restore():
            resume_at = {"epoch": self.epoch, "step": self.step}
        on_main(lambda: self.runlog.open(self.cfg, resume_at, self.carried), self.dist)
        history: List[Dict[str, Any]] = []
        try:
            while self.epoch <= tc.epochs:
                start = time.perf_counter()
                done = self._train_epoch(progress)
                if self.stopping:
                    why = signal.Signals(self.stop_requested).name if self.stop_requested else "by another process"
                    if self.log_failed:  # the error says it all, in one line
                        log.info("the run log cannot be written: saving a resume point")
                    else:
                        log.warning("stop requested (%s): saving a resume point", why)
                    raise self._interrupt(self.save())
                seconds = time.perf_counter() - start
                record = epoch_record(self.epoch, self.step, self.epoch_losses, seconds, done * tc.batch_size)
                if evaluate_fn is not None and self.dist.is_main:
                    metrics = evaluate_fn(self.ema.module, self.epoch)
                    if metrics is not None:
                        record["val_average_mAP"] = metrics["average_mAP"]
                self.runlog.write(record, self.step)
                history.append(record)
                if progress is not None:
                    progress.epoch(record)
                self.epoch, self.iter_in_epoch, self.epoch_losses = self.epoch + 1, 0, []
                folder = self.save()
                if self._agree_stop():
                    raise self._interrupt(folder)
            meta = {"epoch": tc.epochs, "step": self.step, "model_weights": "ema", **self.data.model_meta()}
            final = on_main(lambda: commit_final(
                self.opts.out_dir, lambda folder: save_checkpoint(folder, self.ema.module, self.cfg, meta)), self.dist)
            barrier(self.dist)
            return TrainResult(final, history, self.step, self.ema.module, self.cfg, self.data)
        finally:
            self.runlog.close()
