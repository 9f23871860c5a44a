"""Gaussian data augmentation: the base classifier of randomized smoothing, trained on noise.

Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing", ICML
2019, https://arxiv.org/abs/1902.02918, Section 3.3: the base classifier ``f`` is trained with
cross-entropy on ``x + d``, ``d ~ N(0, sigma^2 I)`` drawn afresh for every image of every batch,
at the sigma it is later smoothed and certified with (``robustbench_gan.certify``). As in their
code, the noisy images are not clipped to [0, 1], which is what the smoothed classifier's base
classifier sees. The paper trains CIFAR-10 at sigma 0.12, 0.25, 0.5 and 1.0; 0.25 is the
default here.

Objective per batch: ``CE(f(x + sigma * d), y)``, the noise drawn from the defense's own stream
seeded with ``seed`` (never the global one), so the same seed trains the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Positive, Seed, checked
from ..registry import DEFENSES
from ..utils import torch_generator
from .base import TrainingDefense


@DEFENSES.register("gaussian_augment")
class GaussianAugment(TrainingDefense):
    """Cross-entropy on Gaussian-noised images (Cohen et al.'s training for smoothing).

    Args:
        sigma: the noise's standard deviation on the [0, 1] pixel scale (> 0; default 0.25).
        seed: seeds the noise's private stream, once (the runner passes the suite's).
    """

    @checked
    def __init__(self, *, sigma: Positive = 0.25, seed: Seed = 0) -> None:
        self.sigma, self.seed = float(sigma), int(seed)
        self.rng = torch_generator(self.seed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma})"

    def noisy(self, x: Tensor) -> Tensor:
        """``x`` plus fresh noise of standard deviation sigma: the images the model learns from."""
        if self.rng.device != x.device:
            self.rng = torch_generator(self.seed, x.device)
        noise = torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
        return x + self.sigma * noise

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(model(self.noisy(x)), y)
