"""What a defense is, for the runner.

Two kinds:

* ``TrainingDefense`` changes how a classifier is trained: ``batch`` may change a
  training batch (add generated samples), ``loss`` gives the objective for it.
  The undefended model is trained with the base class itself: the batch as is
  and cross-entropy.
* ``ModelDefense`` builds an inference-time model from trained ones (an
  ensemble of members, a purifier around a classifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Defense:
    """Base of all defenses; ``kind`` tells the runner how to apply it."""

    kind: ClassVar[str] = ""
    needs_generator: ClassVar[bool] = False
    needs_static_models: ClassVar[bool] = False


class TrainingDefense(Defense):
    """Standard training: the batch unchanged, cross-entropy on it."""

    kind: ClassVar[str] = "training"

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the training loop before each epoch (e.g. to ramp a budget)."""

    def batch(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        return x, y

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(model(x), y)


class ModelDefense(Defense):
    """Builds an inference-time model out of trained members."""

    kind: ClassVar[str] = "model"
    min_members: ClassVar[int] = 1

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        raise NotImplementedError
