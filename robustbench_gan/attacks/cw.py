"""Carlini & Wagner's L2 attack: optimization in tanh space with a margin loss.

Carlini and Wagner, "Towards Evaluating the Robustness of Neural Networks",
IEEE S&P 2017, https://arxiv.org/abs/1608.04644.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Seed
from ..registry import ATTACKS
from .base import Attack, margin_loss

#: keeps atanh finite at pixels that are exactly 0 or 1
TANH_SHRINK = 1 - 1e-6
ADAM_BETAS = (0.9, 0.999)


@ATTACKS.register("cw_l2")
class CarliniWagnerL2(Attack):
    """Minimize ``||x' - x||_2^2 + c * f(x')`` over ``x' = (tanh(w) + 1) / 2``.

    ``f`` is the paper's f6 margin: ``max(z_y - max_{i != y} z_i, -confidence)``
    (targeted: ``max(max_{i != t} z_i - z_t, -confidence)``). For each constant
    ``c`` Adam runs ``steps`` iterations from ``w = atanh(2x - 1)``; a binary
    search over ``c`` per sample (times 10 while it has never succeeded, bisection
    after) follows. Per sample the attack returns the successful point with the
    smallest L2 distance over every iteration of the search, or ``x`` itself if
    none succeeded. It runs once, unbounded; the base cuts it to each budget.

    Args:
        steps: Adam iterations per constant (default 100; the paper uses up to
            10,000, which finds smaller perturbations at 100 times the cost).
        binary_search_steps: constants tried per sample (default 9).
        initial_const: the first ``c`` (default 1e-3).
        confidence: the margin ``kappa`` a success must clear (default 0).
        lr: Adam's learning rate on ``w`` (default 0.1; the paper's 0.01 suits
            10,000 steps: in 100 it cannot move pixels that start at 0 or 1,
            where tanh is flat, and those are most pixels of MNIST-like digits).
        abort_early: a sample leaves a constant's run once its loss has not
            fallen by 0.01 % over a tenth of ``steps`` (default True; the
            authors' rule, applied per sample so batches do not interact).

    Also takes the base ``targeted``, ``seed`` and ``batch_size``; it uses no
    randomness.
    """

    norm: ClassVar[str] = "l2"
    targeted_supported: ClassVar[bool] = True
    minimal: ClassVar[bool] = True

    def __init__(
        self,
        *,
        steps: Count = 100,
        binary_search_steps: Count = 9,
        initial_const: Positive = 1e-3,
        confidence: NonNegative = 0.0,
        lr: Positive = 0.1,
        abort_early: bool = True,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.steps = int(steps)
        self.binary_search_steps = int(binary_search_steps)
        self.initial_const = float(initial_const)
        self.confidence = float(confidence)
        self.lr = float(lr)
        self.abort_early = bool(abort_early)

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        labels = target_class if self.targeted else y
        best = x.clone()
        best_l2 = torch.full((len(x),), math.inf, device=x.device)
        const = torch.full((len(x),), self.initial_const, device=x.device)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, math.inf)
        for _ in range(self.binary_search_steps):
            found = self._optimize(model, x, labels, const, best, best_l2)
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < math.inf, (lower + upper) / 2, const * 10)
        return best

    def _optimize(
        self,
        model: nn.Module,
        x: Tensor,
        labels: Tensor,
        const: Tensor,
        best: Tensor,
        best_l2: Tensor,
    ) -> Tensor:
        """Adam on ``w`` for one constant per sample; updates ``best`` and ``best_l2`` in
        place and returns which samples succeeded at any iteration.

        Adam is written out so that a sample whose loss has stalled (abort_early)
        leaves the batch: the others' updates do not depend on it, and the rest
        of the run gets cheaper.
        """
        w = torch.atanh((2 * x - 1) * TANH_SHRINK)
        moment, second = torch.zeros_like(w), torch.zeros_like(w)
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        previous = torch.full((len(x),), math.inf, device=x.device)
        patience = max(self.steps // 10, 1)
        rows = torch.arange(len(x), device=x.device)
        for i in range(self.steps):
            w_rows = w[rows].requires_grad_(True)
            with torch.enable_grad():
                adv = (torch.tanh(w_rows) + 1) / 2
                l2_sq = (adv - x[rows]).flatten(1).pow(2).sum(1)
                margin = margin_loss(model(adv), labels[rows], targeted=self.targeted)
                loss = l2_sq + const[rows] * margin.clamp_min(-self.confidence)
                (grad,) = torch.autograd.grad(loss.sum(), w_rows)
            success = margin.detach() < -self.confidence
            l2 = l2_sq.detach().sqrt()
            better = success & (l2 < best_l2[rows])
            best[rows[better]] = adv.detach()[better]
            best_l2[rows[better]] = l2[better]
            found[rows[success]] = True
            moment[rows] = ADAM_BETAS[0] * moment[rows] + (1 - ADAM_BETAS[0]) * grad
            second[rows] = ADAM_BETAS[1] * second[rows] + (1 - ADAM_BETAS[1]) * grad.square()
            m_hat = moment[rows] / (1 - ADAM_BETAS[0] ** (i + 1))
            v_hat = second[rows] / (1 - ADAM_BETAS[1] ** (i + 1))
            w[rows] -= self.lr * m_hat / (v_hat.sqrt() + 1e-8)
            if self.abort_early and (i + 1) % patience == 0:
                loss = loss.detach()
                stalled = loss > 0.9999 * previous[rows]
                previous[rows] = loss
                rows = rows[~stalled]
                if len(rows) == 0:
                    break
        return found
