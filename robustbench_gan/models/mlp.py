"""A multilayer perceptron on flattened pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from ..registry import CLASSIFIERS
from .base import Classifier


@CLASSIFIERS.register("mlp")
class MLP(Classifier):
    """Two hidden ReLU layers of ``hidden`` units on the flattened image."""

    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        hidden: int = 256,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        inputs = math.prod(self.in_shape)
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(inputs, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.feature_dim = hidden
        self.head = nn.Linear(hidden, num_classes)
