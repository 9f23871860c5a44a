"""Translation-Invariant FGSM (TI-FGSM, TI-DIM): the gradient smoothed by a fixed kernel.

Dong, Pang, Su and Zhu, "Evading Defenses to Transferable Adversarial Examples by
Translation-Invariant Attacks", CVPR 2019, https://arxiv.org/abs/1904.02884.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, NonNegative, OneOf, Positive, Seed
from ..registry import ATTACKS
from .di_fgsm import DIFGSM, Probability

KERNELS = ("gaussian", "linear", "uniform")


def translation_kernel(kind: str, length: int, nsig: float) -> Tensor:
    """A ``length x length`` kernel summing to 1 (float32): the paper's Gaussian (a standard
    normal sampled at ``length`` points over ``[-nsig, nsig]``), linear or uniform, computed
    in float64 as torchattacks does."""
    if kind == "gaussian":
        points = torch.linspace(-nsig, nsig, length, dtype=torch.float64)
        line = torch.exp(-(points**2) / 2)
    elif kind == "linear":
        points = torch.linspace((1 - length) / 2, (length - 1) / 2, length, dtype=torch.float64)
        line = 1 - (points / (length + 1) * 2).abs()
    else:
        line = torch.ones(length, dtype=torch.float64)
    kernel = torch.outer(line, line)
    return (kernel / kernel.sum()).float()


def smooth(grad: Tensor, kernel: Tensor) -> Tensor:
    """``grad`` convolved channel by channel with ``kernel`` (zero padding, same size): the
    sum of the gradients at the image's translations, weighted by the kernel."""
    channels = grad.shape[1]
    weight = kernel.to(grad).expand(channels, 1, *kernel.shape)
    return F.conv2d(grad, weight, padding="same", groups=channels)


@ATTACKS.register("ti_fgsm")
class TIFGSM(DIFGSM):
    """DI-FGSM (:class:`~.di_fgsm.DIFGSM`) whose every gradient is convolved with a kernel.

    The paper's translation-invariant gradient (the gradient over an ensemble of
    translated images, approximated by smoothing it) replaces the plain one before the
    momentum update, as torchattacks' TIFGSM does, with its defaults: input diversity on,
    momentum off (``decay = 1.0`` with diversity is the paper's TI-DIM).

    Args:
        steps: iterations (10).
        decay: momentum ``mu``; default 0.0 as torchattacks (the paper's TI-MI-FGSM and
            TI-DIM take 1.0).
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``.
        kernel: ``"gaussian"`` (the paper's choice), ``"linear"`` or ``"uniform"``.
        len_kernel: the kernel's side (paper: 15, for 299-pixel images; smaller images
            ask for a smaller one, e.g. 3 to 7 pixels for 8 to 32-pixel images).
        nsig: the Gaussian's half-width in standard deviations (paper: 3).
        resize_rate, diversity_prob: input diversity, as DI-FGSM (0.9, 0.5; probability 0
            turns it off: TI-MI-FGSM).
        keep_first_success: default False, the last iterate of every image (a transfer
            attack's); True keeps per image the first iterate that fools the model.

    Also takes ``targeted``, ``seed``, ``batch_size``.
    """

    def __init__(
        self,
        *,
        steps: Count = 10,
        decay: NonNegative = 0.0,
        rel_stepsize: Positive | None = None,
        kernel: Annotated[str, OneOf(KERNELS)] = "gaussian",
        len_kernel: Count = 15,
        nsig: Positive = 3.0,
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
            resize_rate=resize_rate,
            diversity_prob=diversity_prob,
            keep_first_success=keep_first_success,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.kernel_name = kernel
        self.len_kernel = int(len_kernel)
        self.nsig = float(nsig)
        self.kernel = translation_kernel(kernel, self.len_kernel, self.nsig)

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """DI-FGSM's gradient, smoothed by the kernel; the logits at ``x_adv``."""
        grad, logits = super().gradient_and_logits(model, x_adv, y, target_class)
        return smooth(grad, self.kernel), logits
