"""Nesterov Iterative FGSM (NI-FGSM): the gradient taken at a lookahead point (SI-NI optional).

Lin, Song, He, Wang and Hopcroft, "Nesterov Accelerated Gradient and Scale Invariance
for Adversarial Attacks", ICLR 2020, https://arxiv.org/abs/1908.06281.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Seed
from ..registry import ATTACKS
from .base import Attack
from .mifgsm import MIFGSM


def nesterov_gradient_and_logits(
    attack: MIFGSM,
    model: nn.Module,
    x_adv: Tensor,
    y: Tensor,
    target_class: Tensor | None,
    eps: float,
    *,
    copies: int = 1,
    at_rest: bool = False,
) -> tuple[Tensor, Tensor]:
    """The gradient at Nesterov's point ``x + alpha * decay * g`` (``g`` the momentum), summed
    over the scale copies ``point / 2**i`` (``i < copies``, w.r.t. ``x``, so copy ``i``
    weighs ``2**-i``), and the logits at ``x_adv`` (one forward pass more where the point
    moved off it).

    ``g`` is the momentum of the authors' code and torchattacks, whose gradients are
    normalized by their mean absolute value; MI-FGSM's sum of L1-normalized gradients is
    that divided by the image's size, hence the factor (the same signs; the paper's text
    writes the L1 norm, under which the lookahead would all but vanish). ``at_rest``: the
    momentum is still zero (the first step), the point is ``x_adv``.
    """
    momentum = attack._momentum
    still = at_rest or momentum is None or attack.decay == 0
    point = x_adv
    if not still:
        reach = attack.rel_stepsize * eps * attack.decay * x_adv[0].numel()
        point = x_adv + reach * momentum
    grad, logits = Attack.gradient_and_logits(attack, model, point, y, target_class)
    for i in range(1, copies):
        scale = 0.5**i
        ahead = Attack.gradient_and_logits(attack, model, point * scale, y, target_class)[0]
        grad = grad + scale * ahead
    if not still:
        with torch.no_grad():
            logits = model(x_adv).detach()
    return grad, logits


@ATTACKS.register("ni_fgsm")
class NIFGSM(MIFGSM):
    """MI-FGSM with the gradient taken at the point the momentum is about to reach.

    ``x_nes = x + alpha * decay * g``, ``g <- decay * g + grad(x_nes) / ||grad(x_nes)||_1``,
    then ``x <- clip(x + alpha * sign(g))`` projected onto the eps-ball, from the clean
    image. The lookahead point is not clipped (as the authors' code and torchattacks).

    Args:
        steps: iterations (paper: 10).
        decay: momentum ``mu`` (paper: 1.0).
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``.
        scale_copies: ``m``, the scale-invariant copies ``x_nes / 2**i``, ``i < m``, whose
            gradients are summed (SI-NI-FGSM, paper: 5); default 1, plain NI-FGSM.
        keep_first_success: default False, the last iterate of every image (as the paper
            and torchattacks: stopping at the first success on a surrogate transfers
            worse); True keeps per image the first iterate that fools the model.

    Each step costs ``scale_copies`` forward and backward passes, and one forward pass at
    the iterate (after the first step) to record whether it already succeeds. Also takes
    ``targeted``, ``seed``, ``batch_size``; it uses no randomness.
    """

    def __init__(
        self,
        *,
        steps: Count = 10,
        decay: NonNegative = 1.0,
        rel_stepsize: Positive | None = None,
        scale_copies: Count = 1,
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
        self.scale_copies = int(scale_copies)
        self._eps = 0.0
        self._at_rest = True

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """MI-FGSM's run, knowing its budget (the lookahead's reach)."""
        self._eps, self._at_rest = eps, True
        try:
            return super()._run(model, x, y, eps, target_class, check_last)
        finally:
            self._eps, self._at_rest = 0.0, True

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The gradient at the lookahead point, the logits at ``x_adv``."""
        out = nesterov_gradient_and_logits(
            self,
            model,
            x_adv,
            y,
            target_class,
            self._eps,
            copies=self.scale_copies,
            at_rest=self._at_rest,
        )
        self._at_rest = False
        return out
