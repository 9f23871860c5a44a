"""The MNIST CNN of Madry et al.'s adversarial-training paper.

Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083 (the MNIST challenge
model, https://github.com/MadryLab/mnist_challenge).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import CLASSIFIERS
from .base import Classifier


@CLASSIFIERS.register("madry_cnn")
class MadryCNN(Classifier):
    """conv5(32) -> pool -> conv5(64) -> pool -> fc(1024) -> logits (about 3.3 million
    weights on 28x28 images).

    The paper's network, with "same" padding as in its TensorFlow model. Any input size
    and channel count: the first fully connected layer is sized from the input shape
    (``width`` and ``hidden`` scale the layers; the paper's are 32 and 1,024).
    """

    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        width: int = 32,
        hidden: int = 1024,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        if width < 1 or hidden < 1:
            raise ValueError(f"width and hidden must be >= 1, got {width} and {hidden}")
        conv = nn.Sequential(
            nn.Conv2d(self.in_shape[0], width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv(torch.zeros(1, *self.in_shape)).shape[1]
        self.body = nn.Sequential(conv, nn.Linear(flat, hidden), nn.ReLU())
        self.feature_dim = hidden
        self.head = nn.Linear(hidden, num_classes)
