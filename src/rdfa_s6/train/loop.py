"""The training loop (docs/model.md §4.4-4.5): one code path for CPU, CUDA and ``torchrun`` data parallelism.

Per iteration: lr from the per-iteration warm-up cosine -> forward -> label assignment -> focal + DIoU losses ->
backward -> clip -> AdamW step -> EMA update. ``train.epochs`` epochs are run (epochs 1..E). The EMA model is
what is saved as ``model.safetensors``, evaluated on the validation split (if the preset has one) and reported;
the test split is never looked at here.

Reproducibility: batches, crops and drop-path decisions are functions of (seed, epoch, step, position in the
global batch) only, so a run resumed from any checkpoint, and a run on N processes with the same global batch,
follow the uninterrupted 1-process run (bit for bit in ``train.deterministic`` mode for resumption; up to
float summation order across processes). SIGINT/SIGTERM finish the current iteration, save a resume point and
raise :class:`TrainingInterrupted`.

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
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoint import check_state_dict, latest_checkpoint, read_weights, save_checkpoint
from ..config import Config
from ..data.dataset import Collate, TALDataset
from ..data.prepare import PreparedData, prepare_data
from ..errors import DiskFullError, UserError
from ..models import build_detector
from .assign import assign_video
from .dist import DistInfo, all_reduce_sum, barrier, broadcast_message, hold_run_folder, init_distributed, on_main, shutdown
from .droppath import KeyedDropPath
from .losses import LossNormaliser, detection_losses
from .optim import ModelEMA, WarmupCosine, parameter_groups
from .options import (PRECISIONS, NonFiniteError, TrainingInterrupted, TrainOptions, device_of, epoch_batches,
                      seed_everything)
from .runlog import RunLog
from .state import (checkpoint_name, commit_checkpoint, commit_folder, discard_after,
                    read_train_state, write_train_state)

log = logging.getLogger(__name__)

__all__ = ["Trainer", "TrainOptions", "NonFiniteError", "TrainingInterrupted", "epoch_batches", "seed_everything"]


class Trainer:
    """Trains ``cfg`` as ``opts`` say; :meth:`run` does the work."""

    def __init__(self, cfg: Config, opts: TrainOptions) -> None:
        self.cfg, self.opts = cfg, opts
        opts.check()
        self.device = device_of(opts.device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        tc = cfg.train
        if tc.batch_size % self.dist.world_size:
            raise UserError(f"train.batch_size={tc.batch_size} must be divisible by the {self.dist.world_size} processes")
        if tc.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        splits = [cfg.data.train_split] + ([cfg.data.val_split] if cfg.data.val_split else [])
        self.data: PreparedData = prepare_data(cfg.data, opts.data_root, splits)
        self.cfg = cfg = dataclasses.replace(cfg, data=dataclasses.replace(
            cfg.data, input_dim=self.data.input_dim, num_classes=None if cfg.data.class_agnostic else self.data.num_classes))
        seed_everything(tc.seed)
        self.model = build_detector(cfg, self.data.input_dim, self.data.num_classes).to(self.device)
        self.ema = ModelEMA(self.model, tc.ema_decay)
        self.drop_path = KeyedDropPath(self.model, tc.seed)  # after the EMA copy, which keeps the model's own
        self.train_set = TALDataset(self.data.annotations.split(cfg.data.train_split), self.data.reader, cfg.data,
                                    training=True, seed=tc.seed)
        self.iters_per_epoch = len(self.train_set) // tc.batch_size
        if self.iters_per_epoch == 0:
            raise UserError(f"the training split has {len(self.train_set)} videos, fewer than train.batch_size="
                            f"{tc.batch_size}")
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, tc.weight_decay), lr=tc.lr)
        self.schedule = WarmupCosine.for_epochs(tc.lr, tc.warmup_epochs, tc.epochs, self.iters_per_epoch)
        self.normaliser = LossNormaliser(tc.loss_norm, tc.init_loss_norm)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=opts.precision == "fp16")
        self.net: nn.Module = self.model
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.epoch, self.step, self.iter_in_epoch = 1, 0, 0
        self.epoch_losses: List[float] = []  #: losses of this epoch's iterations so far (kept across resumption)
        self.stop_requested: Optional[int] = None  #: the signal received by this process
        self.stopping = False  #: all processes agree to stop after this iteration
        self.log_failed = False  #: ... because the main process could not write the run log (a full disk)
        self.carried: List[Dict[str, Any]] = []  #: records a resumed run must log first (RunLog.unlogged)
        self.skipped_in_a_row = 0  #: non-finite steps skipped since the last good one (--on-nonfinite skip)
        self.runlog = RunLog(opts.out_dir, enabled=self.dist.is_main)
        self._handlers: Dict[int, Any] = {}

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
        name = checkpoint_name(self.epoch, self.step)
        try:
            return commit_checkpoint(self.opts.out_dir, name, write)
        except DiskFullError as err:
            latest = latest_checkpoint(self.opts.out_dir)
            kept = (f"the last complete checkpoint {latest} stays the resume point" if latest else
                    "no checkpoint was saved yet")
            raise DiskFullError(f"cannot save checkpoint {self.opts.out_dir / 'checkpoints' / name}: {err.reason} "
                                f"({err.path}); {kept}; free space and continue with the same command and --resume",
                                err.path, err.reason) from None

    def restore(self) -> bool:
        """Load the newest complete resume point of ``opts.out_dir``; False (and a warning) if there is none."""
        folder = latest_checkpoint(self.opts.out_dir)
        if folder is None:  # e.g. killed before or while writing its first checkpoint: nothing to lose
            log.warning("--resume: %s has no complete checkpoint yet; starting from the beginning", self.opts.out_dir)
            return False
        for module, fname in ((self.model, "raw"), (self.ema.module, "model")):
            tensors = read_weights(folder / f"{fname}.safetensors")
            check_state_dict(module.state_dict(), tensors, str(folder / f"{fname}.safetensors"))
            module.load_state_dict(tensors)
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

    def _commit_final(self, meta: Dict[str, Any]) -> Path:
        try:
            return commit_folder(self.opts.out_dir / "final",
                                 lambda folder: save_checkpoint(folder, self.ema.module, self.cfg, meta))
        except DiskFullError as err:
            raise DiskFullError(f"cannot write the final model {self.opts.out_dir / 'final'}: {err.reason} "
                                f"({err.path}); training is complete and its last checkpoint "
                                f"{latest_checkpoint(self.opts.out_dir)} is kept; free space and run the same "
                                f"command with --resume to write final/", err.path, err.reason) from None

    # ---- one iteration -----------------------------------------------------------------------------------
    def _targets(self, points: List[torch.Tensor], batch: Dict[str, Any]):
        pts = torch.cat(points).to(self.device)
        cls_t, reg_t = zip(*(assign_video(pts, s.to(self.device), l.to(self.device), self.data.num_classes,
                                          self.cfg.train.center_sample_radius)
                             for s, l in zip(batch["segments"], batch["labels"])))
        return torch.stack(cls_t), torch.stack(reg_t)

    def train_step(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """One iteration on this process's share of a global batch (``self.step`` is its 0-based index)."""
        tc = self.cfg.train
        lr = self.schedule.apply(self.optimizer, self.step)
        feats, mask = batch["feats"].to(self.device), batch["mask"].to(self.device)
        first = self.dist.rank * (tc.batch_size // self.dist.world_size)
        self.drop_path.begin(self.step, range(first, first + feats.shape[0]))
        dtype = PRECISIONS[self.opts.precision]
        amp = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()
        with amp:
            out = self.net(feats, mask)
        cls_t, reg_t = self._targets(out.points, batch)
        valid = torch.cat(out.masks, dim=1)
        local_pos = ((cls_t.sum(-1) > 0) & valid).sum().float()
        global_pos = float(all_reduce_sum(local_pos, self.dist))
        weight = tc.loss_weight if tc.loss_weight > 0 else 1.0
        losses = detection_losses([x.float() for x in out.cls_logits], [x.float() for x in out.offsets], out.masks,
                                  cls_t, reg_t, self.normaliser, tc.label_smoothing, weight, num_pos=global_pos)
        if tc.loss_weight <= 0:  # auto-balancing from the global loss terms: one weight for all processes
            parts = all_reduce_sum(torch.stack([losses["cls_loss"].detach(), losses["reg_loss"].detach()]), self.dist)
            losses["loss"] = losses["cls_loss"] + float(parts[0]) / max(float(parts[1]), 0.01) * losses["reg_loss"]
        loss = losses["loss"] * self.dist.world_size  # DDP averages gradients; this makes them the global sum
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_grad if tc.clip_grad > 0 else float("inf"))
        flags = torch.tensor([1.0 if self.stop_requested else 0.0, 1.0 if self.runlog.failure else 0.0])
        total = all_reduce_sum(torch.cat([torch.stack([losses["loss"].detach().cpu(), losses["cls_loss"].detach().cpu(),
                                                       losses["reg_loss"].detach().cpu()]), flags]).to(self.device), self.dist)
        self.log_failed = self.log_failed or bool(total[4] > 0)
        self.stopping = self.stopping or self.log_failed or bool(total[3] > 0)  # the same sums on all ranks
        finite = bool(torch.isfinite(total[:3]).all()) and bool(torch.isfinite(grad_norm))
        stats: Dict[str, Any] = {"loss": float(total[0]), "cls_loss": float(total[1]), "reg_loss": float(total[2]),
                                 "lr": lr, "grad_norm": float(grad_norm), "num_pos": global_pos}
        if not finite and self.opts.precision != "fp16":  # fp16: the GradScaler skips such steps itself
            where = (f"step {self.step + 1} (epoch {self.epoch}, iteration {self.iter_in_epoch + 1} of "
                     f"{self.iters_per_epoch})")
            if self.opts.nonfinite == "stop":
                latest = latest_checkpoint(self.opts.out_dir)
                kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was saved yet"
                raise NonFiniteError(f"non-finite loss or gradients at {where}: loss {stats['loss']}, grad norm "
                                     f"{stats['grad_norm']}; stopped without updating the model; {kept}; lower "
                                     f"train.lr, or pass --on-nonfinite skip to skip such steps")
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row > self.opts.max_skipped:
                raise NonFiniteError(f"non-finite loss or gradients in {self.skipped_in_a_row} steps in a row, the last "
                                     f"at {where}: the run has diverged (--max-skipped {self.opts.max_skipped}); "
                                     f"lower train.lr and start again or resume from an earlier checkpoint")
            log.warning("skipping the update at %s: non-finite loss or gradients", where)
            self.optimizer.zero_grad(set_to_none=True)
            stats["skipped"] = True
        else:
            self.skipped_in_a_row = 0
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.ema.update(self.model)
        self.step += 1
        return stats

    # ---- the loop ----------------------------------------------------------------------------------------
    def _loader(self, batches: List[List[int]]) -> DataLoader:
        per_rank = self.cfg.train.batch_size // self.dist.world_size
        r = self.dist.rank
        local = [b[r * per_rank : (r + 1) * per_rank] for b in batches]
        collate = Collate(self.cfg.data.max_seq_len, self.model.max_div_factor, training=True)
        # a generator of its own: creating an iterator must not consume torch's global random state
        generator = torch.Generator().manual_seed((self.cfg.train.seed * 1000 + self.epoch) % 2**63)
        return DataLoader(self.train_set, batch_sampler=local, collate_fn=collate,
                          num_workers=self.cfg.train.num_workers, generator=generator)

    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self.stop_requested = signum
        signal.signal(signum, self._handlers.get(signum, signal.SIG_DFL))  # a second signal acts at once

    def _agree_stop(self) -> bool:
        flags = torch.tensor([1.0 if self.stop_requested else 0.0, 1.0 if self.runlog.failure else 0.0],
                             device=self.device)
        total = all_reduce_sum(flags, self.dist)
        self.log_failed = self.log_failed or bool(total[1] > 0)
        self.stopping = self.stopping or self.log_failed or bool(total[0] > 0)
        return self.stopping

    def _interrupt(self, folder: Optional[Path]) -> BaseException:
        """What stops the run once a resume point is saved in ``folder``: TrainingInterrupted after a signal,
        DiskFullError (on every process) when the run log could not be written."""
        if not self.log_failed:
            return TrainingInterrupted(self.stop_requested, folder, self._where())
        message = None
        if self.dist.is_main:
            message = (f"{self.runlog.failure}; stopped at {self._where()}; resume point saved in {folder} (with "
                       f"the {len(self.runlog.unlogged)} record(s) not logged); free space and continue with the "
                       f"same command and --resume")
        return DiskFullError(broadcast_message(message, self.dist) or "")

    def _train_epoch(self, progress: Callable) -> int:
        """The remaining iterations of ``self.epoch``; returns how many ran. Stops early when asked to."""
        tc = self.cfg.train
        self.train_set.set_epoch(self.epoch)
        batches = epoch_batches(len(self.train_set), tc.batch_size, tc.seed, self.epoch)[self.iter_in_epoch :]
        bar = progress(total=self.iters_per_epoch, initial=self.iter_in_epoch, desc=f"epoch {self.epoch}/{tc.epochs}",
                       disable=None if (self.opts.progress and self.dist.is_main) else True, leave=False, unit="it")
        done = 0
        for batch in self._loader(batches):
            stats = self.train_step(batch)
            self.iter_in_epoch += 1
            done += 1
            self.epoch_losses.append(stats["loss"])
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
            bar.update()
            if self.step % self.opts.log_every == 0 or stats.get("skipped"):
                self.runlog.write({"kind": "train", "epoch": self.epoch, "step": self.step, **stats}, self.step)
            if self.stopping:
                break
            if self.opts.checkpoint_every and self.step % self.opts.checkpoint_every == 0:
                self.save()
        bar.close()
        return done

    def run(self, evaluate_fn: Optional[Callable] = None) -> Dict[str, Any]:
        """Train; ``evaluate_fn(ema_model, epoch) -> metrics dict`` is called for validation if given.

        Holds ``opts.out_dir`` (FolderBusy if another process does) while it works."""
        with hold_run_folder(self.opts.out_dir, self.dist):
            return self._run(evaluate_fn)

    def _run(self, evaluate_fn: Optional[Callable]) -> Dict[str, Any]:
        from tqdm import tqdm

        tc = self.cfg.train
        resume_at = None
        if self.opts.resume and self.restore():
            resume_at = {"epoch": self.epoch, "step": self.step}
        on_main(lambda: self.runlog.open(self.cfg, resume_at, self.carried), self.dist)
        self._handlers = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        history: List[Dict[str, Any]] = []
        try:
            while self.epoch <= tc.epochs:
                start = time.perf_counter()
                done = self._train_epoch(tqdm)
                if self.stopping:
                    why = signal.Signals(self.stop_requested).name if self.stop_requested else "by another process"
                    if self.log_failed:  # the error says it all, in one line
                        log.info("the run log cannot be written: saving a resume point")
                    else:
                        log.warning("stop requested (%s): saving a resume point", why)
                    raise self._interrupt(self.save())
                seconds = time.perf_counter() - start
                record = {"kind": "epoch", "epoch": self.epoch, "step": self.step,
                          "loss": float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan"),
                          "seconds": seconds, "videos_per_second": done * tc.batch_size / max(seconds, 1e-9)}
                skipped = int(sum(not np.isfinite(x) for x in self.epoch_losses))
                if skipped:  # only with --on-nonfinite skip: "stop" raises at the first one
                    record["skipped_steps"] = skipped
                if evaluate_fn is not None and self.dist.is_main:
                    metrics = evaluate_fn(self.ema.module, self.epoch)
                    if metrics is not None:
                        record["val_average_mAP"] = metrics["average_mAP"]
                self.runlog.write(record, self.step)
                history.append(record)
                if self.dist.is_main and self.opts.progress:
                    extra = f", val avg mAP {record['val_average_mAP']:.4f}" if "val_average_mAP" in record else ""
                    tqdm.write(f"epoch {self.epoch}/{tc.epochs}: loss {record['loss']:.4f}, {seconds:.1f} s{extra}")
                self.epoch, self.iter_in_epoch, self.epoch_losses = self.epoch + 1, 0, []
                folder = self.save()
                if self._agree_stop():
                    raise self._interrupt(folder)
            meta = {"epoch": tc.epochs, "step": self.step, "model_weights": "ema", **self.data.model_meta()}
            final = on_main(lambda: self._commit_final(meta), self.dist)
            barrier(self.dist)
            return {"final": final, "history": history, "steps": self.step}
        finally:
            for s, h in self._handlers.items():
                signal.signal(s, h)
            self._handlers = {}
            self.runlog.close()
            shutdown(self.dist)
