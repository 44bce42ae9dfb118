"""Validation during training: the EMA model on the config's validation split (``data.val_split``), scored with
the test's metric (:func:`rdfa_s6.infer.runner.evaluate_split`), about five times per run and after the last
epoch. :meth:`rdfa_s6.train.loop.Trainer.run` uses it unless told otherwise, so a Python user of the trainer
gets the validation ``rdfa-s6 train`` does."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from torch import nn

from ..config import Config
from ..data.prepare import PreparedData

#: ``evaluate(ema_model, epoch) -> metrics`` (with ``average_mAP``), or None for an epoch it skips
EvaluateFn = Callable[[nn.Module, int], Optional[Dict[str, Any]]]


def validation_due(epoch: int, epochs: int) -> bool:
    """Whether epoch ``epoch`` (1-based) of ``epochs`` is validated: every ``max(1, epochs // 5)``-th and the last."""
    return epoch % max(1, epochs // 5) == 0 or epoch == epochs


def validation(cfg: Config, data: PreparedData) -> Optional[EvaluateFn]:
    """The validation of a run on ``data`` (the trainer's prepared data, which holds the validation split);
    None when the config has no validation split."""
    split = cfg.data.val_split
    if not split:
        return None

    def evaluate(model: nn.Module, epoch: int) -> Optional[Dict[str, Any]]:
        if not validation_due(epoch, cfg.train.epochs):
            return None
        from ..infer.runner import evaluate_split

        _, metrics = evaluate_split(model, cfg, data, split)
        return metrics

    return evaluate
