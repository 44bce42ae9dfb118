"""Drop path whose random decisions do not depend on how the global batch is split over processes.

The model's own drop path (:func:`rdfa_s6.models.blocks.drop_path`) draws one number per sample from torch's
global generator. Under ``torchrun`` every process draws for its own slice of the batch from its own copy of
that generator, so a 2-process run drops other samples than a 1-process run with the same global batch (and
its losses differ); and anything else that touches the global generator (a DataLoader iterator created on
resume) shifts every later decision.

:class:`KeyedDropPath` takes the draws over for training: it sets each
:class:`~rdfa_s6.models.blocks.AffineDropPath` module's ``drop_prob`` to 0 (the module then only applies its
LayerScale) and applies the drop in a forward hook, with the keep decision of a sample a pure function of
``(seed, global step, position of the sample in the global batch, index of the drop-path call within the
forward pass)``. The distribution is the model's: a sample is kept with probability ``1 - p`` and kept
samples are scaled by ``1 / (1 - p)``. Evaluation mode (``module.training`` False) is untouched.
"""
from __future__ import annotations

from functools import partial
from typing import Any, List, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..models.blocks import AffineDropPath


def keyed_uniform(seed: int, step: int, call: int, position: int) -> float:
    """A uniform number in [0, 1) that depends on its four keys only (NumPy's SeedSequence hashing)."""
    return float(np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, step, call, position]).random())


class KeyedDropPath:
    """Installs rank-independent drop path on ``model``; call :meth:`begin` before every training forward.

    Args:
        model: the training model (not its EMA copy, which only runs in evaluation mode).
        seed: ``train.seed``.
    """

    def __init__(self, model: nn.Module, seed: int) -> None:
        self.seed = int(seed)
        self.step = 0
        self.positions: List[int] = []
        self.calls = 0
        self.handles = []
        self.modules = []
        for module in model.modules():
            if isinstance(module, AffineDropPath) and module.drop_prob > 0:
                prob = module.drop_prob
                module.drop_prob = 0.0
                self.modules.append((module, prob))
                self.handles.append(module.register_forward_hook(partial(self._hook, prob)))

    @property
    def active(self) -> bool:
        return bool(self.handles)

    def begin(self, step: int, positions: Sequence[int]) -> None:
        """The next forward is global step ``step`` (0-based) on the samples at ``positions`` of its global batch."""
        self.step, self.positions, self.calls = int(step), [int(p) for p in positions], 0

    def _hook(self, prob: float, module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
        if not module.training:
            return output
        call = self.calls
        self.calls += 1
        if len(self.positions) != output.shape[0]:
            raise RuntimeError(f"drop path: {output.shape[0]} samples in the batch, but begin() named "
                               f"{len(self.positions)} positions")
        keep = [1.0 if keyed_uniform(self.seed, self.step, call, p) >= prob else 0.0 for p in self.positions]
        shape = (output.shape[0],) + (1,) * (output.dim() - 1)
        mask = torch.tensor(keep, dtype=output.dtype, device=output.device).view(shape)
        return output / (1.0 - prob) * mask

    def remove(self) -> None:
        """Remove the hooks and give the modules their ``drop_prob`` back."""
        for handle in self.handles:
            handle.remove()
        for module, prob in self.modules:
            module.drop_prob = prob
        self.handles, self.modules = [], []
