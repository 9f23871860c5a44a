"""FGSM adversarial training (Goodfellow, Shlens & Szegedy 2015, "Explaining and
harnessing adversarial examples").

Objective per batch: ``alpha * CE(x) + (1 - alpha) * CE(x_fgsm)`` with
``x_fgsm = clip(x + eps * sign(grad_x CE(x)), 0, 1)`` made on the fly with the
current weights. The paper's defaults: alpha 0.5, eps 0.25 on MNIST.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import DEFENSES
from .base import TrainingDefense


def fgsm_examples(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """One signed-gradient step of size eps, clipped to [0, 1]; no parameter gradients."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@DEFENSES.register("fgsm_at")
class FGSMAdversarialTraining(TrainingDefense):
    """Mixed clean/FGSM objective; ``eps`` is the training budget on the [0, 1] scale."""

    def __init__(self, *, eps: float = 0.25, alpha: float = 0.5) -> None:
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.eps = eps
        self.alpha = alpha

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = fgsm_examples(model, x, y, self.eps)
        clean = F.cross_entropy(model(x), y)
        adversarial = F.cross_entropy(model(x_adv), y)
        return self.alpha * clean + (1 - self.alpha) * adversarial
