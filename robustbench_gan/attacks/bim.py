"""Basic Iterative Method (iterated FGSM, no random start).

Kurakin, Goodfellow and Bengio, "Adversarial Examples in the Physical World",
ICLR 2017 workshop, https://arxiv.org/abs/1607.02533.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..bounds import Count, Positive, Seed
from ..registry import ATTACKS
from .pgd import PGD


def paper_steps(eps: float) -> int:
    """Kurakin et al.'s rule ``min(eps * 255 + 4, 1.25 * eps * 255)``, rounded up (>= 1)."""
    return max(1, math.ceil(min(eps * 255 + 4, 1.25 * eps * 255)))


@ATTACKS.register("bim")
class BIM(PGD):
    """L-inf sign-gradient steps from the clean image, projected and clipped each step.

    Args:
        steps: iterations; default ``None``, the paper's rule
            ``ceil(min(eps * 255 + 4, 1.25 * eps * 255))``, chosen per budget.
        rel_stepsize: step size as a fraction of eps. Default ``None``: with the
            paper's steps, the paper's absolute step ``1 / 255``; with a given
            ``steps``, ``1.25 / steps`` (the same 1.25 eps of total travel).
        keep_first_success: as PGD's: per sample, return the first iterate that
            succeeds (and report its step), else the last one (default);
            ``False`` returns the last iterate of every image (as a transfer
            attack does: an early success on a surrogate transfers worse).

    Also takes ``targeted``, ``seed``, ``batch_size``; it uses no randomness.
    ``self.steps`` and ``self.rel_stepsize`` hold the values of the budget attacked last.
    """

    def __init__(
        self,
        *,
        steps: Count | None = None,
        rel_stepsize: Positive | None = None,
        keep_first_success: bool = True,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(
            norm="linf",
            steps=1 if steps is None else steps,
            rel_stepsize=rel_stepsize,
            random_start=False,
            keep_first_success=keep_first_success,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.fixed_steps = steps
        self.fixed_rel_stepsize = rel_stepsize

    def schedule(self, eps: float) -> tuple[int, float]:
        """Steps and relative step size used at budget ``eps > 0``."""
        steps = paper_steps(eps) if self.fixed_steps is None else self.fixed_steps
        if self.fixed_rel_stepsize is not None:
            return steps, self.fixed_rel_stepsize
        if self.fixed_steps is None:
            return steps, 1.0 / (255 * eps)
        return steps, 1.25 / steps

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        self.steps, self.rel_stepsize = self.schedule(eps)
        return super().perturb(model, x, y, eps, target_class)
