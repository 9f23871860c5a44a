"""Fast Gradient Method, L2: one step along the normalized gradient.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
Examples", ICLR 2015, https://arxiv.org/abs/1412.6572; the L2 form with the
gradient divided by its norm follows Miyato et al., "Adversarial Training
Methods for Semi-Supervised Text Classification", ICLR 2017.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..registry import ATTACKS
from .base import Attack


def l2_normalized(t: Tensor) -> Tensor:
    """``t`` divided per sample by its L2 norm (a zero sample stays zero)."""
    norms = t.flatten(1).norm(dim=1).clamp_min(1e-12)
    return t / norms.view(-1, *([1] * (t.dim() - 1)))


@ATTACKS.register("fgm")
class FGM(Attack):
    """One L2 step of length eps along the per-sample normalized loss gradient.

    ``x_adv = clip(x + eps * g / ||g||_2, 0, 1)`` with ``g`` the gradient of the
    cross-entropy on the true label (or minus the cross-entropy on the target class
    when ``targeted=True``). No parameters beyond the base ones
    (``targeted=False, seed=0, batch_size=256``); it uses no randomness.
    """

    norm: ClassVar[str] = "l2"
    targeted_supported: ClassVar[bool] = True

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        step = eps * l2_normalized(self.gradient(model, x, y, target_class))
        return (x + step).clamp_(0.0, 1.0)  # clipping only shortens the step
