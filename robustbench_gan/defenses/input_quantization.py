"""Input quantization: every pixel rounded to one of ``levels`` evenly spaced values.

The bit-depth reduction squeezer of Xu, Evans and Qi, "Feature Squeezing: Detecting
Adversarial Examples in Deep Neural Networks", NDSS 2018, https://arxiv.org/abs/1704.01155
(here used as a defense in front of the classifier, not as a detector), and the thermometer
family's quantization step. Rounding is a step function: its gradient is zero almost
everywhere, so a gradient attack run on the defended model sees no signal (gradient masking).
Athalye, Carlini and Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
https://arxiv.org/abs/1802.00420, break it with BPDA: forward through the quantizer, backward
as if it were the identity, since ``q(x) ~ x``; the built model declares the bare classifier
as its ``gradient_approximation`` for exactly that attack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Range, checked
from ..errors import UserError
from ..registry import DEFENSES
from .base import ModelDefense

#: at least two levels (two is binarization: 0 and 1)
Levels = Annotated[int, Range(2, 256, whole=True)]


def quantize(x: Tensor, levels: int) -> Tensor:
    """``x`` clipped to [0, 1] and rounded to the nearest of ``levels`` evenly spaced values
    ``0, 1/(levels-1), ..., 1`` (zero gradient almost everywhere)."""
    steps = levels - 1
    return torch.round(x.clamp(0, 1) * steps) / steps


class QuantizedInput(nn.Module):
    """``classifier(quantize(x, levels))``; its gradient with respect to ``x`` is zero.

    ``gradient_approximation()`` is the bare classifier: BPDA with the identity, the right
    approximation of a front whose output stays within half a level of its input.
    """

    randomized: ClassVar[bool] = False

    def __init__(self, classifier: nn.Module, levels: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.levels = levels
        self.num_classes = getattr(classifier, "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(quantize(x, self.levels))

    def gradient_approximation(self) -> nn.Module:
        return self.classifier


@DEFENSES.register("input_quantization")
class InputQuantization(ModelDefense):
    """Round each pixel of the input to ``levels`` evenly spaced values in [0, 1] before one
    classifier (``members = [label]``).

    Args:
        levels: number of values a pixel may take (default 4, i.e. 2 bits; 2 is
            binarization at 0.5, Xu et al.'s 1-bit squeezer on MNIST; 256 is 8 bits).
    """

    @checked
    def __init__(self, *, levels: Levels = 4) -> None:
        self.levels = int(levels)

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("input_quantization wraps exactly one classifier (members = [label])")
        return QuantizedInput(members[0], self.levels)
