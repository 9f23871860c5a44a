"""LeNet-5 (LeCun et al. 1998), adapted to any input size and channel count."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import CLASSIFIERS
from .base import Classifier


@CLASSIFIERS.register("lenet")
class LeNet(Classifier):
    """conv5(6) -> pool -> conv5(16) -> pool -> fc120 -> fc84 -> logits.

    The paper's 32x32 input is generalised: convolutions are padded so that
    small images (8x8 digits) keep a spatial extent, and the size of the first
    fully connected layer is computed from the input shape.
    """

    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        channels, height, width = self.in_shape
        small = min(height, width) < 16
        pad = 2 if small else 0
        conv = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv(torch.zeros(1, *self.in_shape)).shape[1]
        self.body = nn.Sequential(
            conv, nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU()
        )
        self.feature_dim = 84
        self.head = nn.Linear(84, num_classes)
