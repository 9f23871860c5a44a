"""Momentum Iterative FGSM.

Dong, Liao, Pang, Su, Zhu, Hu and Li, "Boosting Adversarial Attacks with
Momentum", CVPR 2018, https://arxiv.org/abs/1710.06081.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Seed
from ..registry import ATTACKS
from .pgd import PGD


@ATTACKS.register("mifgsm")
class MIFGSM(PGD):
    """L-inf steps along the sign of an accumulated, L1-normalized gradient.

    ``g <- decay * g + grad / ||grad||_1`` (per sample), then
    ``x <- clip(x + alpha * sign(g))`` projected onto the eps-ball, from the
    clean image (no random start).

    Args:
        steps: iterations (paper: 10).
        decay: momentum decay ``mu`` (paper: 1.0).
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``
            (the paper's ``eps / T``).
        keep_first_success: as PGD's: per sample, return the first iterate that
            succeeds (and report its step), else the last one (default);
            ``False`` returns the last iterate of every image, as the paper and
            transfer attacks do (an early success on a surrogate transfers worse).

    Also takes ``targeted``, ``seed``, ``batch_size``; it uses no randomness.
    """

    def __init__(
        self,
        *,
        steps: Count = 10,
        decay: NonNegative = 1.0,
        rel_stepsize: Positive | None = None,
        keep_first_success: bool = True,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(
            norm="linf",
            steps=steps,
            rel_stepsize=1.0 / steps if rel_stepsize is None else rel_stepsize,
            random_start=False,
            keep_first_success=keep_first_success,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.decay = float(decay)
        self._momentum: Tensor | None = None

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """PGD's loop, with the momentum reset at the start of every run."""
        self._momentum = torch.zeros_like(x)
        try:
            return super()._run(model, x, y, eps, target_class, check_last)
        finally:
            self._momentum = None

    def _keep_rows(self, keep: Tensor) -> None:
        if self._momentum is not None:
            self._momentum = self._momentum[keep]

    def _direction(self, grad: Tensor) -> Tensor:
        l1 = grad.abs().flatten(1).sum(dim=1).clamp_min(1e-12)
        self._momentum = self.decay * self._momentum + grad / l1.view(-1, *([1] * (grad.dim() - 1)))
        return self._momentum.sign()
