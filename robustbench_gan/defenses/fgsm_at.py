"""FGSM adversarial training.

Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples",
ICLR 2015, https://arxiv.org/abs/1412.6572.
"""

from __future__ import annotations

from ..registry import DEFENSES
from .adversarial import AdversarialTraining


@DEFENSES.register("fgsm_at")
class FGSMAdversarialTraining(AdversarialTraining):
    """``alpha * CE(x) + (1 - alpha) * CE(x_fgsm)``, ``x_fgsm = clip(x + eps * sign(grad), 0, 1)``.

    The FGSM examples are made on the fly with the current weights. The paper's
    defaults: ``eps = 0.25`` (MNIST, [0, 1] scale) and ``alpha = 0.5``.
    """

    def __init__(self, *, eps: float = 0.25, alpha: float = 0.5) -> None:
        super().__init__(attack="fgsm", eps=eps, alpha=alpha)
