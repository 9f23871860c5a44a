"""A small VGG-style CNN: two conv blocks, global average pooling, a linear head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..registry import CLASSIFIERS
from .base import Classifier


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 conv-ReLU layers at one resolution."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(),
    )


@CLASSIFIERS.register("small_cnn")
class SmallCNN(Classifier):
    """conv(w) x2 -> maxpool -> conv(2w) x2 -> global average pool -> fc(128) -> logits.

    Works for any input size of at least 2x2 and any channel count.
    """

    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        width: int = 32,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        self.body = nn.Sequential(
            conv_block(self.in_shape[0], width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, 128),
            nn.ReLU(),
        )
        self.feature_dim = 128
        self.head = nn.Linear(128, num_classes)
