"""One training iteration, the learning itself (docs/model.md §4.4): lr from the warm-up cosine -> forward ->
label assignment -> focal + DIoU losses -> backward -> clip -> AdamW step -> EMA update.

:class:`Learner` holds what learns (the model, its EMA copy, the optimiser and its schedule); the run around it
(epochs, resume points, stopping, the run log) is :class:`rdfa_s6.train.loop.Trainer`'s.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Dict, Tuple

import torch
from torch import Tensor, nn

from ..config.schema import TrainConfig
from ..data.batch import Batch
from ..models.blocks import DropPathKey, key_drop_path
from ..precision import AUTOCAST_DTYPES as PRECISIONS
from .assign import assign_batch
from .dist import DistInfo, all_reduce_sum
from .losses import LossNormaliser, detection_losses
from .optim import ModelEMA, WarmupCosine, parameter_groups


class Learner:
    """The model and what updates it. ``net`` is what the forward calls: ``model`` itself, or its DDP wrapper."""

    def __init__(self, model: nn.Module, tc: TrainConfig, iters_per_epoch: int, num_classes: int, precision: str,
                 device: torch.device, dist: DistInfo) -> None:
        self.model, self.net, self.tc, self.num_classes = model, model, tc, num_classes
        self.dtype, self.device, self.dist = PRECISIONS[precision], device, dist
        self.ema = ModelEMA(model, tc.ema_decay)
        self.drop_path = DropPathKey(tc.seed)  # the training model's drop decisions (the EMA copy only evaluates)
        key_drop_path(model, self.drop_path)
        self.optimizer = torch.optim.AdamW(parameter_groups(model, tc.weight_decay), lr=tc.lr)
        self.schedule = WarmupCosine.for_epochs(tc.lr, tc.warmup_epochs, tc.epochs, iters_per_epoch)
        self.normaliser = LossNormaliser(tc.loss_norm, tc.init_loss_norm)
        self.fp16 = precision == "fp16"
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.fp16)

    def step(self, batch: Batch, step: int, flags: Callable[[], Tensor]) -> Tuple[Dict[str, Any], Tensor]:
        """Iteration ``step`` (0-based) on this process's share of a global batch. ``flags()`` (CPU, float) ride
        on the all-reduce of the losses; returns the stats and the flags summed over processes. A step whose
        loss or gradients are not finite is not applied (``stats["skipped"]``), except in fp16, where the
        GradScaler skips such steps itself."""
        lr = self.schedule.apply(self.optimizer, step)
        losses = self.losses(batch, step)
        grad_norm = self.backward(losses["loss"])
        terms = torch.stack([losses[k].detach().cpu() for k in ("loss", "cls_loss", "reg_loss")])
        total = all_reduce_sum(torch.cat([terms, flags()]).to(self.device), self.dist)  # global losses, flags
        stats: Dict[str, Any] = {"loss": float(total[0]), "cls_loss": float(total[1]), "reg_loss": float(total[2]),
                                 "lr": lr, "grad_norm": float(grad_norm), "num_pos": float(losses["num_pos"])}
        if (bool(torch.isfinite(total[:3]).all()) and bool(torch.isfinite(grad_norm))) or self.fp16:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.ema.update(self.model)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            stats["skipped"] = True
        return stats, total[3:]

    def losses(self, batch: Batch, step: int) -> Dict[str, Tensor]:
        """Forward (autocast in the run's precision), label assignment (docs/model.md §4.1) and the losses of this
        process's samples, normalised by the positives of the global batch (docs/model.md §4.2)."""
        feats, mask = batch.feats.to(self.device), batch.mask.to(self.device)
        first = self.dist.rank * (self.tc.batch_size // self.dist.world_size)
        self.drop_path.begin(step, range(first, first + feats.shape[0]))
        with torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None else nullcontext():
            out = self.net(feats, mask)
        assert batch.segments is not None and batch.labels is not None, "a training batch carries targets"
        cls_t, reg_t = assign_batch(out.points, batch.segments, batch.labels, self.num_classes,
                                    self.tc.center_sample_radius)
        return detection_losses([x.float() for x in out.cls_logits], [x.float() for x in out.offsets], out.masks,
                                cls_t, reg_t, self.normaliser, self.tc.label_smoothing, self.tc.loss_weight,
                                reduce=lambda t: all_reduce_sum(t, self.dist))

    def backward(self, loss: Tensor) -> Tensor:
        """Gradients of the global batch's loss, unscaled (fp16) and clipped; returns their norm before clipping."""
        clip = self.tc.clip_grad
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss * self.dist.world_size).backward()  # DDP averages gradients: make them the sum
        self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else float("inf"))
