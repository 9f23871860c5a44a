"""Diverse Inputs Iterative FGSM (DI2-FGSM, M-DI2-FGSM with momentum): random resize and pad.

Xie, Zhang, Zhou, Bai, Wang, Ren and Yuille, "Improving Transferability of
Adversarial Examples with Input Diversity", CVPR 2019, https://arxiv.org/abs/1803.06978.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Range, Seed
from ..errors import UserError
from ..registry import ATTACKS
from .base import Attack
from .mifgsm import MIFGSM

#: a probability, 0 and 1 included
Probability = Annotated[float, Range(0, 1)]


def resize_range(size: int, resize_rate: float) -> tuple[int, int]:
    """``(low, high)``: an image side of ``size`` pixels is resized to ``low <= r < high``
    pixels and zero-padded to ``high`` (torchattacks' rule: ``resize_rate < 1`` shrinks to
    ``[int(size * rate), size)`` and pads back to ``size``; above 1 it enlarges to
    ``[size, int(size * rate))`` and pads to ``int(size * rate)``, a larger image)."""
    scaled = int(size * resize_rate)
    low, high = (scaled, size) if resize_rate < 1 else (size, scaled)
    if low < 1 or low >= high:
        fits = f"below 1 (and at least {1 / size:.3g}) or at least {(size + 1) / size:.3g}"
        raise UserError(
            f"resize_rate {resize_rate:g} leaves no size to resize {size}-pixel images to: "
            f"take a rate {fits}"
        )
    return low, high


def _draw(low: int, high: int, rng: torch.Generator) -> int:
    return int(torch.randint(low, high, (1,), generator=rng, device=rng.device).item())


def draw_diversity(
    x: Tensor, resize_rate: float, diversity_prob: float, rng: torch.Generator
) -> Callable[[Tensor], Tensor] | None:
    """The input-diversity transform for one gradient of batch ``x``, drawn from ``rng``,
    or None (the identity, with probability ``1 - diversity_prob``).

    As in the paper's code and torchattacks, one draw serves the whole batch: the images
    are resized (bilinear) to a random side in :func:`resize_range` and zero-padded at a
    random offset (top and left in ``[0, room)``) to the range's upper end.
    """
    if diversity_prob <= 0:
        return None
    coin = torch.rand((), generator=rng, device=rng.device)
    if float(coin) >= diversity_prob:
        return None
    h, w = (int(side) for side in x.shape[-2:])
    low, out_h = resize_range(h, resize_rate)
    rh = _draw(low, out_h, rng)
    rw, out_w = rh, out_h  # a square image: one size for both sides, as the paper's code
    if w != h:
        low, out_w = resize_range(w, resize_rate)
        rw = _draw(low, out_w, rng)
    top, left = _draw(0, out_h - rh, rng), _draw(0, out_w - rw, rng)
    pad = [left, out_w - rw - left, top, out_h - rh - top]

    def transform(images: Tensor) -> Tensor:
        resized = F.interpolate(images, size=[rh, rw], mode="bilinear", align_corners=False)
        return F.pad(resized, pad, value=0.0)

    return transform


def gradient_through(
    attack: Attack,
    model: nn.Module,
    transform: Callable[[Tensor], Tensor],
    x_adv: Tensor,
    y: Tensor,
    target_class: Tensor | None,
) -> Tensor:
    """The gradient w.r.t. ``x_adv`` of the attack's loss at ``transform(x_adv)``: the base's
    gradient at the transformed images (its loss, an ensemble's fused one included), carried
    back through the transform by the chain rule."""
    x = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        varied = transform(x)
        outer = Attack.gradient_and_logits(attack, model, varied, y, target_class)[0]
        (grad,) = torch.autograd.grad(varied, x, grad_outputs=outer)
    return grad.detach()


@ATTACKS.register("di_fgsm")
class DIFGSM(MIFGSM):
    """MI-FGSM whose every gradient is taken at a randomly resized and padded copy.

    With probability ``diversity_prob`` per step, the batch is resized to a random side and
    zero-padded (:func:`draw_diversity`), and the gradient of the loss there, w.r.t. the
    current iterate, replaces the plain gradient; then ``g <- decay * g + grad / ||grad||_1``
    and ``x <- clip(x + alpha * sign(g))`` as in :class:`~.mifgsm.MIFGSM`.

    Args:
        steps: iterations (paper and torchattacks: 10).
        decay: momentum ``mu``; default 0.0 (DI2-FGSM, torchattacks' default); 1.0 gives the
            paper's M-DI2-FGSM.
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``.
        resize_rate: the resize range (:func:`resize_range`), torchattacks' 0.9 (shrink to
            90-100% and pad back: the model sees images of its own size). Above 1 (the
            paper's 330/299) the padded images are larger: the model must take them.
        diversity_prob: the probability ``p`` of transforming a step's input (0.5); 0 is
            MI-FGSM.
        keep_first_success: default False, the last iterate of every image (as the paper
            and torchattacks: stopping at the first success on a surrogate transfers
            worse); True keeps per image the first iterate that fools the model.

    Every draw comes from the attack's seeded stream. A transformed step costs one forward
    pass more, to record whether the iterate itself already succeeds. Also takes
    ``targeted``, ``seed``, ``batch_size``.
    """

    def __init__(
        self,
        *,
        steps: Count = 10,
        decay: NonNegative = 0.0,
        rel_stepsize: Positive | None = None,
        resize_rate: Positive = 0.9,
        diversity_prob: Probability = 0.5,
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
        self.resize_rate = float(resize_rate)
        self.diversity_prob = float(diversity_prob)

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """MI-FGSM's run, once the image size has been checked against ``resize_rate``."""
        if self.diversity_prob > 0:
            for side in x.shape[-2:]:
                resize_range(int(side), self.resize_rate)
        return super()._run(model, x, y, eps, target_class, check_last)

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The gradient at a diverse copy of ``x_adv`` (or at ``x_adv``), and the logits at
        ``x_adv``."""
        transform = draw_diversity(x_adv, self.resize_rate, self.diversity_prob, self.rng)
        if transform is None:
            return super().gradient_and_logits(model, x_adv, y, target_class)
        grad = gradient_through(self, model, transform, x_adv, y, target_class)
        with torch.no_grad():
            logits = model(x_adv)
        return grad, logits.detach()
