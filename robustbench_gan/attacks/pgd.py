"""Projected Gradient Descent, L-inf and L2.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..registry import ATTACKS
from .base import NORMS, Attack


@ATTACKS.register("pgd")
class PGD(Attack):
    """Iterated gradient steps, each projected back onto the eps-ball and [0, 1].

    Args:
        norm: ``"linf"`` (default; steps along the gradient sign) or ``"l2"``
            (steps along the per-sample normalized gradient).
        steps: gradient steps per restart (default 20).
        rel_stepsize: step size as a fraction of eps; default ``2.5 / steps``
            (Madry et al.'s rule: the walk can cross the ball 2.5 times).
        random_start: start uniformly in the ball (default True); for L2 a
            uniform direction with radius ``eps * u ** (1 / dim)``.
        restarts: independent runs (default 1); later restarts only attack the
            samples earlier ones did not break.
        keep_first_success: return per image the first iterate that fools the model
            (default, the strongest evaluation); ``False`` returns the last iterate of
            every image, Madry et al.'s training examples (used by ``pgd_at``).

    Per sample the attack returns the first iterate that succeeds
    (misclassified, or classified as the target class), over steps and restarts;
    otherwise the last iterate of the last restart. So more steps or restarts
    never weaken it. Also takes the base ``targeted``, ``seed``, ``batch_size``.
    """

    targeted_supported: ClassVar[bool] = True

    def __init__(
        self,
        *,
        norm: str = "linf",
        steps: int = 20,
        rel_stepsize: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        keep_first_success: bool = True,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1, got {steps} and {restarts}")
        if rel_stepsize is not None and not rel_stepsize > 0:
            raise ValueError(f"rel_stepsize must be > 0, got {rel_stepsize}")
        self.norm = norm  # instance attribute overrides the class default
        self.steps = int(steps)
        self.rel_stepsize = float(rel_stepsize) if rel_stepsize is not None else 2.5 / steps
        self.random_start = bool(random_start)
        self.restarts = int(restarts)
        self.keep_first_success = bool(keep_first_success)

    @property
    def iterations(self) -> int:
        """``steps * restarts``: the success steps of later restarts continue the count."""
        return self.steps * self.restarts

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        adv = x.clone()
        step = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        for restart in range(self.restarts):
            todo = (step < 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            sub_target_class = target_class[todo] if target_class is not None else None
            adv[todo], found = self._run(model, x[todo], y[todo], eps, sub_target_class)
            step[todo] = torch.where(found >= 0, found + restart * self.steps, -1)
        return adv, step

    def _run(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """One restart: per sample the first successful iterate (or the last), and the step
        at which it was found (-1: never)."""
        best = x.clone()
        step = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        adv = self.project(x + self._random_delta(x, eps), x, eps) if self.random_start else x
        for i in range(self.steps):
            grad, logits = self.gradient_and_logits(model, adv, y, target_class)
            self._keep_first_success(best, step, i, adv, logits, y, target_class)
            if self.keep_first_success and (step >= 0).all():
                return best, step
            adv = self.project(adv + self.rel_stepsize * eps * self._direction(grad), x, eps)
        with torch.no_grad():
            self._keep_first_success(best, step, self.steps, adv, model(adv), y, target_class)
        if not self.keep_first_success:
            return adv, step
        best[step < 0] = adv[step < 0]
        return best, step

    def _keep_first_success(
        self,
        best: Tensor,
        step: Tensor,
        i: int,
        adv: Tensor,
        logits: Tensor,
        y: Tensor,
        target_class: Tensor | None,
    ) -> None:
        new = self.succeeded(logits.argmax(1), y, target_class) & (step < 0)
        best[new] = adv[new]
        step[new] = i

    def _direction(self, grad: Tensor) -> Tensor:
        if self.norm == "linf":
            return grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return grad / norms.view(-1, *([1] * (grad.dim() - 1)))

    def _random_delta(self, x: Tensor, eps: float) -> Tensor:
        if self.norm == "linf":
            u = torch.rand(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
            return (2 * u - 1) * eps
        direction = self._direction(
            torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
        )
        dim = x[0].numel()
        u = torch.rand(len(x), generator=self.rng, device=x.device, dtype=x.dtype)
        radius = eps * u.pow(1.0 / dim)
        return direction * radius.view(-1, *([1] * (x.dim() - 1)))
