"""Fast Gradient Sign Method.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
Examples", ICLR 2015, https://arxiv.org/abs/1412.6572.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..registry import ATTACKS
from .base import Attack


@ATTACKS.register("fgsm")
class FGSM(Attack):
    """One L-inf step of size eps along the sign of the loss gradient.

    ``x_adv = clip(x + eps * sign(grad_x loss), 0, 1)`` with loss the
    cross-entropy on the true label (or minus the cross-entropy on the target class
    when ``targeted=True``). No parameters beyond the base ones
    (``targeted=False, seed=0, batch_size=256``); it uses no randomness.
    """

    norm: ClassVar[str] = "linf"
    targeted_supported: ClassVar[bool] = True

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        return (x + eps * self.gradient(model, x, y, target_class).sign()).clamp_(0.0, 1.0)
