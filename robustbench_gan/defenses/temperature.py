"""Logits scaled by a large factor: a softmax saturated so cross-entropy gradients vanish.

A stand-in for defensive distillation's high temperature (Papernot, McDaniel, Wu, Jha and
Swami, "Distillation as a Defense to Adversarial Perturbations against Deep Neural
Networks", IEEE S&P 2016, https://arxiv.org/abs/1511.04508): the distilled network, run at
temperature 1, outputs logits about T times larger than it was trained with, its float32
softmax is exactly one-hot on most inputs, and the cross-entropy input gradient is exactly
zero. The decisions are those of the unscaled network. Carlini and Wagner, "Defensive
Distillation is Not Robust to Adversarial Examples", 2016, https://arxiv.org/abs/1607.04311,
and "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
https://arxiv.org/abs/1608.04644, broke it with a loss on the logits (a margin) instead of
the softmax; an attacker may also use the unscaled logits, which
:meth:`TemperatureModel.gradient_approximation` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from ..bounds import Range, checked
from ..errors import UserError
from ..registry import DEFENSES
from .base import ModelDefense

#: a scale of the logits: at least 1 (below 1 it would soften the softmax, not saturate it)
Scale = Annotated[float, Range(1)]


class TemperatureModel(nn.Module):
    """``scale * classifier(x)``: the classifier's decisions, with saturated softmax.

    With a float32 softmax, a class ``j`` whose scaled logit is more than about 104 below the
    top one gets probability exactly 0, so where every other class is that far below the true
    one, the cross-entropy gradient (``softmax - onehot``) is exactly zero: with the default
    scale, wherever the classifier's logit margin exceeds about 0.01."""

    #: the forward pass draws no random numbers (read by the attacks, contract/surface.py)
    randomized = False

    def __init__(self, classifier: nn.Module, scale: float) -> None:
        super().__init__()
        self.classifier = classifier
        self.scale = scale
        self.num_classes = getattr(classifier, "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(x) * self.scale

    def gradient_approximation(self) -> nn.Module:
        """The classifier itself: the same decisions, unscaled (finite-softmax) logits."""
        return self.classifier

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


@DEFENSES.register("temperature")
class Temperature(ModelDefense):
    """Multiply one classifier's logits (``members = [label]``) by ``scale``.

    Args:
        scale: the factor (default 1e4: a logit margin of 0.01 already saturates float32's
            softmax; a trained classifier's margins are mostly above 1).
    """

    @checked
    def __init__(self, *, scale: Scale = 1e4) -> None:
        self.scale = float(scale)

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("temperature wraps exactly one classifier (members = [label])")
        return TemperatureModel(members[0], self.scale)
