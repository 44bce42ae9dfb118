"""Optimiser groups (docs/model.md §4.3), the per-iteration warm-up cosine schedule (docs/model.md §4.4) and the
model EMA."""
from __future__ import annotations

import copy
import math
from typing import Dict, List

import torch
from torch import nn

#: parameters of these modules get weight decay on their ``weight``
DECAYED_MODULES = (nn.Linear, nn.Conv1d)
#: names that are decayed although they are not module weights (docs/model.md §4.3: Mamba's A_log and D)
DECAYED_NAMES = ("A_log", "D")


def parameter_groups(model: nn.Module, weight_decay: float) -> List[Dict]:
    """AdamW groups: Linear/Conv1d weights and Mamba ``A_log``/``D`` decayed; biases, norms and scales not.

    Frozen parameters (``requires_grad=False``, e.g. ``freeze_dwconv``) are left out. Asserts that every
    trainable parameter is in exactly one group (ActionFormer's ``make_optimizer`` check).
    """
    decay, no_decay = set(), set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            full = f"{module_name}.{name}" if module_name else name
            if name.endswith("bias"):
                no_decay.add(full)
            elif name == "weight" and isinstance(module, DECAYED_MODULES):
                decay.add(full)
            elif name in DECAYED_NAMES:
                decay.add(full)
            else:  # LayerNorm weights, Scale / AffineDropPath scales, attention extras
                no_decay.add(full)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    both = decay & no_decay
    missing = set(params) - (decay | no_decay)
    assert not both, f"parameters in both weight-decay groups: {sorted(both)}"
    assert not missing, f"parameters in no weight-decay group: {sorted(missing)}"
    return [
        {"params": [params[n] for n in sorted(decay)], "weight_decay": weight_decay},
        {"params": [params[n] for n in sorted(no_decay)], "weight_decay": 0.0},
    ]


class WarmupCosine:
    """lr(i) for iteration i (docs/model.md §4.4): linear from 0 over ``warmup`` iterations, then cosine to ``eta_min``.

    ``lr(0) = 0``, ``lr(i) = i * base / (warmup - 1)`` for i < warmup, ``lr(warmup) = base``, then
    ``eta_min + (base - eta_min) (1 + cos(pi (i - warmup) / (total - warmup))) / 2``.
    """

    def __init__(self, base_lr: float, warmup: int, total: int, eta_min: float = 1e-8) -> None:
        self.base_lr, self.warmup, self.total, self.eta_min = base_lr, warmup, max(total, 1), eta_min

    @classmethod
    def for_epochs(cls, base_lr: float, warmup_epochs: int, epochs: int, iters_per_epoch: int) -> "WarmupCosine":
        """The training schedule: ``epochs`` is the total, warm-up included, so the cosine spans
        ``epochs - warmup_epochs`` epochs (upstream's ``epochs``, which excludes warm-up, docs/model.md §4.6)."""
        return cls(base_lr, warmup_epochs * iters_per_epoch, epochs * iters_per_epoch)

    def __call__(self, i: int) -> float:
        if i < self.warmup:
            return self.base_lr * i / max(self.warmup - 1, 1)
        if self.total <= self.warmup:
            return self.base_lr
        progress = min(i - self.warmup, self.total - self.warmup) / (self.total - self.warmup)
        return self.eta_min + 0.5 * (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, i: int) -> float:
        lr = self(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


class ModelEMA:
    """Exponential moving average of the parameters (decay 0.999, no warm-up; buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_p, p in zip(self.module.parameters(), model.parameters()):
            ema_p.mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)
        for ema_b, b in zip(self.module.buffers(), model.buffers()):
            ema_b.copy_(b)
