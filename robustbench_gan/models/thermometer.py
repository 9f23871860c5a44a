"""Thermometer encoding: a classifier on a step-function code of its pixels.

Buckman, Roy, Raffel and Goodfellow, "Thermometer Encoding: One Hot Way To Resist
Adversarial Examples", ICLR 2018, https://openreview.net/forum?id=S18Su--CW. Its input
gradient is zero almost everywhere, so gradient attacks see nothing; Athalye, Carlini and
Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
https://arxiv.org/abs/1802.00420, broke it with BPDA through a continuous relaxation of the
code, which :meth:`ThermometerCNN.gradient_approximation` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from ..bounds import Range, checked
from ..registry import CLASSIFIERS
from .base import Classifier
from .small_cnn import conv_block

#: the number of levels of the code: at least 2 (one level would be a binarization)
Levels = Annotated[int, Range(2, 1024, whole=True)]
Width = Annotated[int, Range(1, whole=True)]


def _ramps(x: Tensor, levels: int) -> Tensor:
    """``levels * x - i`` for i = 0..levels-1, as ``(N, C * levels, H, W)`` (channel c's
    levels next to each other)."""
    steps = torch.arange(levels, dtype=x.dtype, device=x.device).view(1, 1, levels, 1, 1)
    return (levels * x.unsqueeze(2) - steps).flatten(1, 2)


def thermometer_code(x: Tensor, levels: int) -> Tensor:
    """The hard code: bit i of a pixel is 1 where ``x > i / levels``, else 0.

    Written as ``clamp(ceil(levels * x - i), 0, 1)``: ``ceil``'s derivative is zero, so the
    code stays in the autograd graph (attacks can ask for a gradient) and its input
    gradient is exactly zero, as in the paper."""
    return _ramps(x, levels).ceil().clamp(0, 1)


def soft_thermometer_code(x: Tensor, levels: int) -> Tensor:
    """The continuous relaxation: bit i is ``clamp(levels * x - i, 0, 1)``, a ramp over the
    bin ``(i / levels, (i + 1) / levels]``. It equals the hard code except on the one bin
    each pixel falls in (where it is the pixel's position in the bin rather than 1); its
    bits sum to ``levels * x``, so its gradient is ``levels`` on the pixel's own bit."""
    return _ramps(x, levels).clamp(0, 1)


class SoftThermometer(nn.Module):
    """The same network on the soft code: BPDA's differentiable stand-in for ``model``."""

    def __init__(self, model: ThermometerCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        code = soft_thermometer_code(x, self.model.levels)
        return self.model.head(self.model.body(code))


@CLASSIFIERS.register("thermometer_cnn")
class ThermometerCNN(Classifier):
    """Thermometer code of ``levels`` bits per channel -> the small CNN of ``small_cnn``
    (conv(w) x2 -> maxpool -> conv(2w) x2 -> global average pool -> fc(128)) -> logits.

    The code is the first layer (the paper's 16 levels by default): bit i of each pixel is
    1 where the pixel exceeds i / levels. The thresholds are in pixel units ([0, 1]
    images), so ``mean`` and ``std`` (passed by the runner) do not change the code and are
    not used. Trained as any classifier; the code's gradient is zero, so the model's input
    gradient is zero too (``gradient_approximation`` gives the soft code's instead).
    """

    #: the forward pass draws no random numbers (read by the attacks, contract/surface.py)
    randomized = False

    @checked
    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        levels: Levels = 16,
        width: Width = 32,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        self.levels = levels
        self.normalize = nn.Identity()  # the code reads pixels in [0, 1] (see above)
        self.body = nn.Sequential(
            conv_block(self.in_shape[0] * levels, width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, 128),
            nn.ReLU(),
        )
        self.feature_dim = 128
        self.head = nn.Linear(128, num_classes)

    def encode(self, x: Tensor) -> Tensor:
        """The hard thermometer code of images ``x`` in [0, 1]."""
        return thermometer_code(x, self.levels)

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.encode(x))

    def gradient_approximation(self) -> nn.Module:
        """The same weights on the soft code (BPDA, Athalye et al. 2018): the same network
        on a code that differs only in each pixel's own bin, with a gradient everywhere."""
        return SoftThermometer(self)
