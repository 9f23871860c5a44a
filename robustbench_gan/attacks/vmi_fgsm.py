"""Variance-tuned MI-FGSM (VMI-FGSM): each gradient corrected by its neighbourhood's variance.

Wang and He, "Enhancing the Transferability of Adversarial Attacks through Variance
Tuning", CVPR 2021, https://arxiv.org/abs/2103.15571.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Seed
from ..registry import ATTACKS
from .base import Attack
from .mifgsm import MIFGSM


@ATTACKS.register("vmi_fgsm")
class VMIFGSM(MIFGSM):
    """MI-FGSM whose gradient is tuned by the previous step's gradient variance.

    At step ``t`` the momentum takes ``grad(x_t) + v_t`` (``v_0 = 0``), then
    ``v_{t+1} = mean_i grad(x_t + r_i) - grad(x_t)`` over ``neighbours`` points with
    ``r_i`` uniform in ``[-beta * eps, beta * eps]`` per pixel (not clipped to [0, 1], as
    the authors' code and torchattacks): ``g <- decay * g + (grad + v) / ||grad + v||_1``,
    ``x <- clip(x + alpha * sign(g))``.

    Args:
        steps: iterations (paper: 10).
        decay: momentum ``mu`` (paper: 1.0).
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``.
        neighbours: ``N``, the points sampled per step (paper: 5 for ImageNet; 20 is
            stronger).
        beta: the neighbourhood's half-width as a multiple of eps (paper: 1.5).
        keep_first_success: default False, the last iterate of every image (as the paper
            and torchattacks: stopping at the first success on a surrogate transfers
            worse); True keeps per image the first iterate that fools the model.

    Each step costs ``1 + neighbours`` forward and backward passes (the last step skips
    the neighbours: their variance would serve no further step). The neighbours come from
    the attack's seeded stream. Also takes ``targeted``, ``seed``, ``batch_size``.
    """

    def __init__(
        self,
        *,
        steps: Count = 10,
        decay: NonNegative = 1.0,
        rel_stepsize: Positive | None = None,
        neighbours: Count = 5,
        beta: Positive = 1.5,
        keep_first_success: bool = False,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(
            steps=steps,
            decay=decay,
            rel_stepsize=rel_stepsize,
            keep_first_success=keep_first_success,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.neighbours = int(neighbours)
        self.beta = float(beta)
        self._eps = 0.0
        self._step = 0
        self._variance: Tensor | None = None

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """MI-FGSM's run, with the variance reset (and the budget known) for every run."""
        self._eps, self._step, self._variance = eps, 0, torch.zeros_like(x)
        try:
            return super()._run(model, x, y, eps, target_class, check_last)
        finally:
            self._eps, self._step, self._variance = 0.0, 0, None

    def _keep_rows(self, keep: Tensor) -> None:
        super()._keep_rows(keep)
        if self._variance is not None:
            self._variance = self._variance[keep]

    def _centre(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The gradient the variance tunes, and the logits at ``x_adv``: here at ``x_adv``."""
        return Attack.gradient_and_logits(self, model, x_adv, y, target_class)

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The tuned gradient ``grad + v`` and the logits at ``x_adv``; the next ``v`` is
        drawn around ``x_adv`` (within a run, except at its last step)."""
        grad, logits = self._centre(model, x_adv, y, target_class)
        self._step += 1
        if self._variance is None:  # called outside a run: no variance to tune with
            return grad, logits
        tuned = grad + self._variance
        if self._step < self.steps:
            self._variance = self._neighbourhood(model, x_adv, y, target_class) - grad
        return tuned, logits

    def _neighbourhood(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> Tensor:
        """The mean gradient at ``neighbours`` uniform draws around ``x_adv``."""
        radius = self.beta * self._eps
        total = torch.zeros_like(x_adv)
        for _ in range(self.neighbours):
            near = x_adv + self._random_delta(x_adv, radius)
            total += Attack.gradient_and_logits(self, model, near, y, target_class)[0]
        return total / self.neighbours
