"""The training objective: what the classifier training loop optimises, batch by batch.

The loop (:func:`~.train.train_classifier`) asks its objective to start each epoch,
to make each training batch and to give the loss on it. The base class is standard
training; every training defense (``TrainingDefense``) subclasses it, so the loop
needs nothing from the defense package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TrainingObjective:
    """Standard training: the batch unchanged, cross-entropy on it.

    A subclass may override any of the three hooks: ``start_epoch`` (e.g. to ramp a
    budget), ``batch`` (e.g. to add generated samples to the real ones) and ``loss``
    (e.g. an adversarial objective).
    """

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the training loop before each epoch (e.g. to ramp a budget)."""

    def batch(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """The training batch made from the real one ``(x, y)``, on the CPU; ``rng`` is the
        loop's own seeded stream. Standard training: ``(x, y)`` as is."""
        return x, y

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The scalar loss of ``model`` (in train mode) on the batch; standard: cross-entropy."""
        return F.cross_entropy(model(x), y)
