"""The training loop (SPEC 4.4-4.5): one code path for CPU, CUDA and ``torchrun`` data parallelism.

Per iteration: lr from the per-iteration warm-up cosine -> forward -> label assignment -> focal + DIoU losses ->
backward -> clip -> AdamW step -> EMA update. ``train.epochs`` epochs are run (epochs 1..E). The EMA model is
what is saved as ``model.safetensors``, evaluated on the validation split (if the preset has one) and reported;
the test split is never looked at here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import random
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoint import atomic_write_json, save_checkpoint
from ..config import Config, config_to_dict
from ..data.dataset import Collate, TALDataset
from ..data.prepare import PreparedData, prepare_data
from ..errors import UserError
from ..models import build_detector
from .assign import assign_video
from .dist import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown
from .losses import LossNormaliser, detection_losses
from .optim import ModelEMA, WarmupCosine, parameter_groups
from .state import latest_checkpoint, publish, read_train_state, write_train_state

log = logging.getLogger(__name__)

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
    checkpoint_every: int = 0  #: also save a resume point every N iterations (0: end of epoch only)
    log_every: int = 10


class NonFiniteError(UserError):
    """The loss or the gradients became NaN/Inf."""


def _device(name: str) -> torch.device:
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


class Trainer:
    def __init__(self, cfg: Config, opts: TrainOptions) -> None:
        self.cfg, self.opts = cfg, opts
        if opts.precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {opts.precision!r}")
        self.device = _device(opts.device)
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
        self.train_set = TALDataset(self.data.annotations.split(cfg.data.train_split), self.data.reader, cfg.data,
                                    training=True, seed=tc.seed)
        self.iters_per_epoch = len(self.train_set) // tc.batch_size
        if self.iters_per_epoch == 0:
            raise UserError(f"the training split has {len(self.train_set)} videos, fewer than train.batch_size="
                            f"{tc.batch_size}")
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, tc.weight_decay), lr=tc.lr)
        self.schedule = WarmupCosine(tc.lr, tc.warmup_epochs * self.iters_per_epoch, tc.epochs * self.iters_per_epoch)
        self.normaliser = LossNormaliser(tc.loss_norm, tc.init_loss_norm)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=opts.precision == "fp16")
        self.net: nn.Module = self.model
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.epoch, self.step, self.iter_in_epoch = 1, 0, 0
        self.stop_requested: Optional[str] = None
        self.metrics_file = None
        self.writer = None

    # ---- bookkeeping -------------------------------------------------------------------------------------
    def _log(self, record: Dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.writer.add_scalar(f"{record.get('kind', 'train')}/{key}", value, self.step)

    def _open_logs(self) -> None:
        if not self.dist.is_main:
            return
        out = self.opts.out_dir
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", config_to_dict(self.cfg))
        self.metrics_file = open(out / "metrics.jsonl", "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tb"))
        except ImportError:  # tensorboard is a dependency, but a stripped install should still train
            log.warning("tensorboard is not installed; metrics go to metrics.jsonl only")

    def save(self, name: Optional[str] = None) -> Optional[Path]:
        """Write a resume point (rank 0) and publish it as the newest checkpoint."""
        barrier(self.dist)
        if not self.dist.is_main:
            return None
        name = name or f"epoch{self.epoch:03d}_step{self.step:07d}"
        folder = self.opts.out_dir / "checkpoints" / name
        meta = {"epoch": self.epoch, "step": self.step, "iter_in_epoch": self.iter_in_epoch,
                "label_names": {str(k): v for k, v in self.data.label_names.items()}}
        save_checkpoint(folder, self.ema.module, self.cfg, meta, extra_weights={"raw": self.model})
        write_train_state(folder, {
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "normaliser": self.normaliser.state_dict(), "epoch": self.epoch, "step": self.step,
            "iter_in_epoch": self.iter_in_epoch, "torch_rng": torch.get_rng_state(),
        })
        publish(self.opts.out_dir, name)
        return folder

    def restore(self) -> None:
        folder = latest_checkpoint(self.opts.out_dir)
        if folder is None:
            raise UserError(f"--resume: {self.opts.out_dir} has no complete checkpoint to resume from")
        from ..checkpoint import check_state_dict, read_weights

        for module, fname in ((self.model, "raw"), (self.ema.module, "model")):
            tensors = read_weights(folder / f"{fname}.safetensors")
            check_state_dict(module.state_dict(), tensors, str(folder / f"{fname}.safetensors"))
            module.load_state_dict(tensors)
        state = read_train_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.normaliser.load_state_dict(state["normaliser"])
        self.epoch, self.step, self.iter_in_epoch = int(state["epoch"]), int(state["step"]), int(state["iter_in_epoch"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s (epoch %d, iteration %d of it)", folder, self.epoch, self.iter_in_epoch)

    # ---- one iteration -----------------------------------------------------------------------------------
    def _targets(self, points: List[torch.Tensor], batch: Dict[str, Any]):
        pts = torch.cat(points).to(self.device)
        cls_t, reg_t = zip(*(assign_video(pts, s.to(self.device), l.to(self.device), self.data.num_classes,
                                          self.cfg.train.center_sample_radius)
                             for s, l in zip(batch["segments"], batch["labels"])))
        return torch.stack(cls_t), torch.stack(reg_t)

    def train_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        tc = self.cfg.train
        lr = self.schedule.apply(self.optimizer, self.step)
        feats, mask = batch["feats"].to(self.device), batch["mask"].to(self.device)
        dtype = PRECISIONS[self.opts.precision]
        amp = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()
        with amp:
            out = self.net(feats, mask)
        cls_t, reg_t = self._targets(out.points, batch)
        valid = torch.cat(out.masks, dim=1)
        local_pos = ((cls_t.sum(-1) > 0) & valid).sum().float()
        global_pos = float(all_reduce_sum(local_pos, self.dist))
        losses = detection_losses([x.float() for x in out.cls_logits], [x.float() for x in out.offsets], out.masks,
                                  cls_t, reg_t, self.normaliser, tc.label_smoothing, tc.loss_weight, num_pos=global_pos)
        loss = losses["loss"] * self.dist.world_size  # DDP averages gradients; this makes them the global sum
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_grad if tc.clip_grad > 0 else float("inf"))
        total = all_reduce_sum(torch.stack([losses["loss"].detach(), losses["cls_loss"].detach(),
                                            losses["reg_loss"].detach()]), self.dist)
        finite = bool(torch.isfinite(total).all()) and bool(torch.isfinite(grad_norm))
        if not finite and self.opts.precision != "fp16":
            where = f"epoch {self.epoch}, iteration {self.iter_in_epoch + 1} (global step {self.step})"
            if self.opts.nonfinite == "stop":
                raise NonFiniteError(f"non-finite loss or gradients at {where} (loss {float(total[0])}, grad norm "
                                     f"{float(grad_norm)}); the last good checkpoint is kept in "
                                     f"{self.opts.out_dir / 'checkpoints'}; lower train.lr, or pass "
                                     f"--on-nonfinite skip to skip such steps")
            log.warning("skipping the update at %s: non-finite loss or gradients", where)
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.ema.update(self.model)
        self.step += 1
        return {"loss": float(total[0]), "cls_loss": float(total[1]), "reg_loss": float(total[2]), "lr": lr,
                "grad_norm": float(grad_norm), "num_pos": global_pos}

    # ---- the loop ----------------------------------------------------------------------------------------
    def _loader(self, batches: List[List[int]]) -> DataLoader:
        per_rank = self.cfg.train.batch_size // self.dist.world_size
        r = self.dist.rank
        local = [b[r * per_rank : (r + 1) * per_rank] for b in batches]
        collate = Collate(self.cfg.data.max_seq_len, self.model.max_div_factor, training=True)
        return DataLoader(self.train_set, batch_sampler=local, collate_fn=collate,
                          num_workers=self.cfg.train.num_workers)

    def _handle_signal(self, signum, _frame) -> None:
        self.stop_requested = signal.Signals(signum).name

    def run(self, evaluate_fn=None) -> Dict[str, Any]:
        """Train; ``evaluate_fn(ema_model, epoch) -> metrics dict`` is called for validation if given."""
        from tqdm import tqdm

        tc = self.cfg.train
        if self.opts.resume:
            self.restore()
        self._open_logs()
        old_handlers = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        history: List[Dict[str, Any]] = []
        try:
            while self.epoch <= tc.epochs:
                self.train_set.set_epoch(self.epoch)
                batches = epoch_batches(len(self.train_set), tc.batch_size, tc.seed, self.epoch)
                batches = batches[self.iter_in_epoch :]
                bar = tqdm(total=self.iters_per_epoch, initial=self.iter_in_epoch, desc=f"epoch {self.epoch}/{tc.epochs}",
                           disable=None if (self.opts.progress and self.dist.is_main) else True, leave=False, unit="it")
                start, losses = time.perf_counter(), []
                for batch in self._loader(batches):
                    stats = self.train_step(batch)
                    self.iter_in_epoch += 1
                    losses.append(stats["loss"])
                    bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
                    bar.update()
                    if self.step % self.opts.log_every == 0:
                        self._log({"kind": "train", "epoch": self.epoch, "step": self.step, **stats})
                    if self.stop_requested:
                        break
                    if self.opts.checkpoint_every and self.step % self.opts.checkpoint_every == 0:
                        self.save()
                bar.close()
                if self.stop_requested:
                    folder = self.save()
                    raise KeyboardInterrupt(f"{self.stop_requested}: resume point saved in {folder}")
                seconds = time.perf_counter() - start
                record = {"kind": "epoch", "epoch": self.epoch, "step": self.step,
                          "loss": float(np.mean(losses)) if losses else float("nan"), "seconds": seconds,
                          "videos_per_second": len(losses) * tc.batch_size / max(seconds, 1e-9)}
                if evaluate_fn is not None and self.dist.is_main:
                    metrics = evaluate_fn(self.ema.module, self.epoch)
                    if metrics is not None:
                        record["val_average_mAP"] = metrics["average_mAP"]
                self._log(record)
                history.append(record)
                if self.dist.is_main and self.opts.progress:
                    extra = f", val avg mAP {record['val_average_mAP']:.4f}" if "val_average_mAP" in record else ""
                    tqdm.write(f"epoch {self.epoch}/{tc.epochs}: loss {record['loss']:.4f}, {seconds:.1f} s{extra}")
                self.epoch += 1
                self.iter_in_epoch = 0
                self.save()
            final = None
            if self.dist.is_main:
                meta = {"epoch": tc.epochs, "step": self.step, "weights": "ema",
                        "label_names": {str(k): v for k, v in self.data.label_names.items()}}
                final = save_checkpoint(self.opts.out_dir / "final", self.ema.module, self.cfg, meta)
            barrier(self.dist)
            return {"final": final, "history": history, "steps": self.step}
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            if self.metrics_file is not None:
                self.metrics_file.close()
            if self.writer is not None:
                self.writer.close()
            shutdown(self.dist)
