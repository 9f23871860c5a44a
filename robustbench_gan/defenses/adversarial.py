"""Adversarial training with any registered attack: the family behind ``fgsm_at``,
``pgd_at``, ``fgsm_rs`` (both registered here), ``ensemble_at`` and the adversarial
part of ``gan_augment``.

Objective per batch: ``alpha * CE(f(x), y) + (1 - alpha) * CE(f(x_adv), y)``, with
``x_adv`` crafted on the fly against the current weights by
``attack.generate(model, x, y, eps)``. ``alpha = 0`` trains on adversarial
examples only (Madry et al.), ``alpha = 0.5`` is Goodfellow et al.'s mix.

Crafting runs with the model in eval mode and no parameter gradients, and the
model goes back to train mode afterwards: batch-norm running statistics are then
not polluted by the attack's many forward passes on adversarial inputs, and
dropout does not randomise the gradients the attack follows. The training step
itself (both cross-entropy terms) runs in train mode, as for standard training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks.base import Attack, frozen
from ..registry import ATTACKS, DEFENSES
from .base import TrainingDefense

NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def check_eps(eps: float) -> float:
    """A training budget on the [0, 1] scale: in (0, 1]."""
    if isinstance(eps, bool) or not 0 < eps <= 1:
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    return float(eps)


def check_share(name: str, value: float) -> float:
    """A mixing weight in [0, 1] (``alpha``)."""
    if isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def craft(attack: Attack, source: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """Adversarial examples of ``attack`` on ``source``, crafted in eval mode.

    The source's mode and ``requires_grad`` flags are restored afterwards, and no
    parameter ``.grad`` is written (the attack differentiates w.r.t. the input only).
    """
    with frozen(source):
        return attack.generate(source, x, y, eps)


def mixed_loss(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, alpha: float) -> Tensor:
    """``alpha * CE(f(x)) + (1 - alpha) * CE(f(x_adv))``; a term of weight 0 is not computed."""
    adversarial = F.cross_entropy(model(x_adv), y) if alpha < 1 else 0.0
    clean = F.cross_entropy(model(x), y) if alpha > 0 else 0.0
    return alpha * clean + (1 - alpha) * adversarial


class AdversarialTraining(TrainingDefense):
    """Train on adversarial examples of a registered attack, mixed with clean ones.

    Args:
        attack: a registered attack name (``"fgsm"``, ``"pgd"``, ...), built as
            ``ATTACKS.create(attack, seed=seed, **attack_params)``.
        attack_params: the attack's keyword arguments (steps, rel_stepsize, ...).
        eps: the training budget on the [0, 1] scale, in (0, 1].
        alpha: weight of the clean term, in [0, 1] (0: adversarial examples only).
        eps_warmup: share of the epochs over which the budget ramps linearly from
            eps / warm-up epochs up to eps (0: the full budget from the start). Large
            budgets (MNIST at 0.3) can stall training from scratch without it.
        seed: seeds the attack's random stream (random starts), once.
    """

    def __init__(
        self,
        *,
        attack: str,
        attack_params: Mapping[str, Any] = NO_PARAMS,
        eps: float,
        alpha: float,
        eps_warmup: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.eps = self.full_eps = check_eps(eps)
        self.eps_warmup = check_share("eps_warmup", eps_warmup)
        self.alpha = check_share("alpha", alpha)
        self.seed = int(seed)
        self.attack: Attack = ATTACKS.create(attack, seed=self.seed, **dict(attack_params))
        if self.attack.targeted:
            raise ValueError("adversarial training needs an untargeted attack")

    @property
    def min_classes(self) -> int:
        """The fewest classes of data it trains on: its attack's."""
        return self.attack.min_classes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(attack={self.attack!r}, eps={self.eps}, alpha={self.alpha})"

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Ramp the budget during the warm-up epochs."""
        warmup = math.ceil(self.eps_warmup * epochs)
        self.eps = self.full_eps * min(1.0, (epoch + 1) / warmup) if warmup else self.full_eps

    def adversarial_examples(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The examples this defense trains on for the batch ``(x, y)`` (eval-mode crafting)."""
        return craft(self.attack, model, x, y, self.eps)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if self.alpha == 1:  # no adversarial term: do not pay for crafting
            return F.cross_entropy(model(x), y)
        return mixed_loss(model, x, self.adversarial_examples(model, x, y), y, self.alpha)


@DEFENSES.register("pgd_at")
class PGDAdversarialTraining(AdversarialTraining):
    """PGD adversarial training: Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep
    Learning Models Resistant to Adversarial Attacks", ICLR 2018,
    https://arxiv.org/abs/1706.06083.

    L-inf PGD from a uniform random start in the ball; by default the model learns
    from the adversarial examples only (``alpha = 0``). ``rel_stepsize=None`` takes
    the PGD attack's rule ``2.5 / steps``, which keeps the walk long enough when a
    CPU suite cuts the steps; Madry's MNIST setting is ``eps = 0.3``, 40 steps of
    0.01, i.e. ``rel_stepsize = 1 / 30``. The model learns from the last PGD iterate
    of every image, as in the paper (evaluation PGD keeps the first success instead).
    """

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 40,
        rel_stepsize: float | None = None,
        alpha: float = 0.0,
        eps_warmup: float = 0.0,
        seed: int = 0,
    ) -> None:
        params = {
            "steps": steps,
            "rel_stepsize": rel_stepsize,
            "random_start": True,
            "keep_first_success": False,
        }
        super().__init__(
            attack="pgd",
            attack_params=params,
            eps=eps,
            alpha=alpha,
            eps_warmup=eps_warmup,
            seed=seed,
        )


@DEFENSES.register("fgsm_rs")
class FastAdversarialTraining(AdversarialTraining):
    """FGSM with a random start: Wong, Rice & Kolter, "Fast is better than free:
    Revisiting adversarial training", ICLR 2020, https://arxiv.org/abs/2001.03994.

    Start uniformly in the eps-ball, take one signed gradient step of ``step * eps``
    (paper: 1.25), project back onto the ball and [0, 1]; train on those examples
    only. This is one step of PGD with a random start. The paper's MNIST budget is
    ``eps = 0.3``.
    """

    def __init__(
        self, *, eps: float = 0.3, step: float = 1.25, eps_warmup: float = 0.0, seed: int = 0
    ) -> None:
        params = {
            "steps": 1,
            "rel_stepsize": step,
            "random_start": True,
            "keep_first_success": False,
        }
        super().__init__(
            attack="pgd",
            attack_params=params,
            eps=eps,
            alpha=0.0,
            eps_warmup=eps_warmup,
            seed=seed,
        )
