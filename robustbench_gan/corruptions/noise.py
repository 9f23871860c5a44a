"""Noise: Gaussian, shot (Poisson) and impulse (salt-and-pepper) noise.

Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, https://arxiv.org/abs/1903.12261. Constants: CIFAR-10-C's from
``make_cifar_c.py`` for small images, ImageNet-C's (``imagecorruptions``) above (see
:mod:`~robustbench_gan.corruptions.base`).
"""

from __future__ import annotations

import numpy as np

from ..registry import CORRUPTIONS
from .base import Corruption


@CORRUPTIONS.register("gaussian_noise")
class GaussianNoise(Corruption):
    """Adds zero-mean Gaussian noise of standard deviation ``c`` to every pixel and channel."""

    CIFAR = (0.04, 0.06, 0.08, 0.09, 0.10)
    IMAGENET = (0.08, 0.12, 0.18, 0.26, 0.38)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        return image + rng.normal(size=image.shape, scale=c)


@CORRUPTIONS.register("shot_noise")
class ShotNoise(Corruption):
    """Photon noise: each value becomes ``Poisson(x * c) / c``, fewer photons ``c`` being
    stronger noise."""

    CIFAR = (500, 250, 100, 75, 50)
    IMAGENET = (60, 25, 12, 5, 3)

    def photons(self, severity: int, image: np.ndarray) -> float:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = self.photons(severity, image)
        return rng.poisson(image * c) / float(c)


@CORRUPTIONS.register("impulse_noise")
class ImpulseNoise(Corruption):
    """Salt and pepper: a share ``c`` of the values (each channel apart) is set to 0 or 1,
    half each, as ``skimage.util.random_noise(mode="s&p")`` does (scikit-image >= 0.19: one
    Bernoulli draw per value for "flipped", one for "salt"). Those draws come from a NumPy
    ``Generator`` seeded by one ``randint(2**31)`` of the image's stream."""

    CIFAR = (0.01, 0.02, 0.03, 0.05, 0.07)
    IMAGENET = (0.03, 0.06, 0.09, 0.17, 0.27)

    def amount(self, severity: int, image: np.ndarray) -> float:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        amount = self.amount(severity, image)
        draws = np.random.default_rng(rng.randint(2**31))
        flipped = draws.random(image.shape) <= amount
        salted = draws.random(image.shape) <= 0.5
        out = image.copy()
        out[flipped & salted] = 1.0
        out[flipped & ~salted] = 0.0
        return out
