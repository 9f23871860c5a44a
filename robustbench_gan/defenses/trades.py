"""TRADES: Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled
Trade-off between Robustness and Accuracy", ICML 2019, https://arxiv.org/abs/1901.08573.

Objective per batch::

    CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv)) / batch

``x_adv`` maximises that KL term inside the L-inf eps-ball: it starts at
``x + 0.001 * N(0, 1)`` and takes ``steps`` signed gradient steps of
``rel_stepsize * eps``, each projected onto the ball and [0, 1]. The paper uses
beta 6 (1/lambda), eps 0.3 with 40 steps of 0.01 on MNIST and 8/255 with 10 steps
of 2/255 on CIFAR-10 (rel_stepsize 0.25). Defaults here: eps 0.3, beta 6, 10 steps
of 0.25 * eps, so the walk can cross the ball 2.5 times.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks.base import frozen
from ..registry import DEFENSES
from ..utils import torch_generator
from .adversarial import check_eps
from .base import TrainingDefense

START_NOISE = 0.001


def kl_to_clean(adv_logits: Tensor, clean_logits: Tensor, reduction: str = "batchmean") -> Tensor:
    """``KL(softmax(clean) || softmax(adv))``: the divergence TRADES penalises."""
    return F.kl_div(
        F.log_softmax(adv_logits, dim=1), F.softmax(clean_logits, dim=1), reduction=reduction
    )


@DEFENSES.register("trades")
class TRADES(TrainingDefense):
    """Clean cross-entropy plus ``beta`` times the KL between clean and adversarial outputs.

    Args:
        eps: L-inf training budget on the [0, 1] scale, in (0, 1].
        beta: weight of the robustness term (> 0; larger: more robust, less accurate).
        steps: ascent steps on the KL when crafting ``x_adv`` (>= 1).
        rel_stepsize: step size as a fraction of eps (> 0).
        seed: seeds the random start's stream, once.

    ``x_adv`` is crafted in eval mode with no parameter gradients (batch-norm
    statistics never see the crafting passes); the loss runs in train mode.
    """

    def __init__(
        self,
        *,
        eps: float = 0.3,
        beta: float = 6.0,
        steps: int = 10,
        rel_stepsize: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.eps = check_eps(eps)
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if not rel_stepsize > 0:
            raise ValueError(f"rel_stepsize must be > 0, got {rel_stepsize!r}")
        self.beta = float(beta)
        self.steps = int(steps)
        self.rel_stepsize = float(rel_stepsize)
        self.seed = int(seed)
        self.rng = torch_generator(self.seed)

    def adversarial_examples(self, model: nn.Module, x: Tensor) -> Tensor:
        """Points of the eps-ball around ``x`` that maximise the KL to the clean output."""
        x = x.detach()
        if self.rng.device != x.device:
            self.rng = torch_generator(self.seed, x.device)
        noise = torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
        adv = self.project(x + START_NOISE * noise, x)
        with frozen(model), torch.enable_grad():
            clean_logits = model(x).detach()
            for _ in range(self.steps):
                adv.requires_grad_(True)
                divergence = kl_to_clean(model(adv), clean_logits, reduction="sum")
                (grad,) = torch.autograd.grad(divergence, adv)
                adv = self.project(adv.detach() + self.rel_stepsize * self.eps * grad.sign(), x)
        return adv.detach()

    def project(self, adv: Tensor, x: Tensor) -> Tensor:
        """Onto the L-inf eps-ball around ``x``, then [0, 1]."""
        return torch.min(torch.max(adv, x - self.eps), x + self.eps).clamp(0, 1)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = self.adversarial_examples(model, x)
        clean_logits = model(x)
        robust = kl_to_clean(model(x_adv), clean_logits)
        return F.cross_entropy(clean_logits, y) + self.beta * robust
