"""Training losses (docs/model.md §4.2): sigmoid focal loss, 1-D DIoU loss and the loss normaliser."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-8


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise focal loss (RetinaNet), summed. logits, targets: [P, K]."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum()


def diou_loss_1d(pred: Tensor, target: Tensor) -> Tensor:
    """1-D distance-IoU loss, summed. pred, target: [P, 2] non-negative (left, right) distances."""
    lp, rp = pred[:, 0], pred[:, 1]
    lg, rg = target[:, 0], target[:, 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp(min=EPS)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    return (1.0 - iou + (rho / enclosing.clamp(min=EPS)) ** 2).sum()


class LossNormaliser:
    """The divisor of both losses.

    ``official``: ``0.9 * init + 0.1 * max(num_pos, 1)``, fresh every step (RDFA-S6 as released).
    ``running_ema``: ActionFormer's ``Z <- 0.9 Z + 0.1 max(num_pos, 1)``, starting at ``init`` (stateful).
    """

    def __init__(self, mode: str = "official", init: float = 100.0, momentum: float = 0.9) -> None:
        if mode not in ("official", "running_ema"):
            raise ValueError(f"loss normaliser mode must be 'official' or 'running_ema', got {mode!r}")
        self.mode, self.init, self.momentum = mode, float(init), momentum
        self.value = float(init)

    def __call__(self, num_pos: float) -> float:
        update = self.momentum * (self.init if self.mode == "official" else self.value)
        self.value = update + (1 - self.momentum) * max(float(num_pos), 1.0)
        return self.value

    def state_dict(self) -> Dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.value = float(state["value"])


def detection_losses(cls_logits: List[Tensor], offsets: List[Tensor], masks: List[Tensor], cls_targets: Tensor,
                     reg_targets: Tensor, normaliser: LossNormaliser, label_smoothing: float = 0.0,
                     loss_weight: float = 1.0, num_pos: Optional[float] = None,
                     reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, Tensor]:
    """Focal + DIoU losses over all levels, both divided by the normaliser, and their weighted sum.

    Args:
        cls_logits: per level [B, T_l, K]; offsets: per level [B, T_l, 2]; masks: per level [B, T_l] bool.
        cls_targets: [B, M, K]; reg_targets: [B, M, 2], M = sum of T_l (levels concatenated finest first).
        normaliser: called once, with the positives of the global batch.
        loss_weight: the weight of the regression loss; 0 or less: auto-balanced, ``cls / max(reg, 0.01)``
            from the (global) loss terms (unused by the presets).
        num_pos: positives for the normaliser; default: counted here and summed with ``reduce``.
        reduce: the sum over processes under data parallelism (detached); default: this process alone.
    Returns:
        {"cls_loss", "reg_loss", "loss"} and "num_pos", the positives the normaliser was given.
    """
    logits = torch.cat(cls_logits, dim=1)
    pred = torch.cat(offsets, dim=1)
    valid = torch.cat(masks, dim=1)
    positive = (cls_targets.sum(-1) > 0) & valid
    local_pos = positive.sum()
    if num_pos is None:
        num_pos = float(reduce(local_pos.float())) if reduce is not None else float(local_pos)
    z = normaliser(num_pos)
    targets = cls_targets[valid]
    if label_smoothing > 0:
        targets = targets * (1 - label_smoothing) + label_smoothing / (targets.shape[-1] + 1)
    cls_loss = sigmoid_focal_loss(logits[valid], targets) / z
    if local_pos > 0:
        reg_loss = diou_loss_1d(pred[positive], reg_targets[positive]) / z
    else:
        reg_loss = pred.sum() * 0.0
    if loss_weight > 0:
        weight = loss_weight
    else:  # one weight for all processes: from the global loss terms
        parts = torch.stack([cls_loss.detach(), reg_loss.detach()])
        parts = reduce(parts) if reduce is not None else parts
        weight = float(parts[0]) / max(float(parts[1]), 0.01)
    return {"cls_loss": cls_loss, "reg_loss": reg_loss, "loss": cls_loss + weight * reg_loss,
            "num_pos": torch.tensor(float(num_pos))}
