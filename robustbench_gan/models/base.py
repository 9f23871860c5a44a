"""The classifier base: normalization is the first layer, the model returns logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``; images enter in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """An image classifier: ``forward`` gives logits, ``features`` the penultimate layer.

    Subclasses build ``self.body`` (normalized image -> feature vector of size
    ``self.feature_dim``) and ``self.head`` (features -> logits).
    """

    body: nn.Module
    head: nn.Module
    feature_dim: int

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        channels = int(in_shape[0])
        self.in_shape = tuple(int(s) for s in in_shape)
        self.num_classes = int(num_classes)
        self.normalize = Normalize(
            mean if mean is not None else [0.5] * channels,
            std if std is not None else [0.5] * channels,
        )

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.normalize(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
