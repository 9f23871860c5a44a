"""Blur: defocus, glass, motion and zoom blur.

Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, https://arxiv.org/abs/1903.12261. Constants: CIFAR-10-C's from
``make_cifar_c.py`` for small images, ImageNet-C's (``imagecorruptions``) above (see
:mod:`~robustbench_gan.corruptions.base`). The CIFAR-10-C motion blur was ImageMagick's
(through Wand); like ``imagecorruptions`` it is the NumPy port of that filter here
(:func:`~robustbench_gan.corruptions.ops.motion_blur`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from ..registry import CORRUPTIONS
from .base import Corruption
from .ops import clipped_zoom_cifar, clipped_zoom_imagenet, disk, gaussian, motion_blur, per_channel


@CORRUPTIONS.register("defocus_blur")
class DefocusBlur(Corruption):
    """Correlation with an anti-aliased disk of radius ``r`` (alias blur ``a``): ``(r, a)``."""

    CIFAR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))
    IMAGENET = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        radius, alias_blur = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        kernel = disk(radius, alias_blur)
        return per_channel(image, lambda c: ndimage.correlate(c, kernel, mode="mirror"))


@CORRUPTIONS.register("glass_blur")
class GlassBlur(Corruption):
    """Blur (Gaussian of ``sigma``), jitter every pixel ``iterations`` times by up to
    ``delta``, blur again: ``(sigma, delta, iterations)``.

    The jitter walks the pixels bottom-right to top-left, each taking the pixel at a random
    offset in ``[-delta, delta)`` (NumPy's ``randint`` excludes the top). As in the
    reference, where ``x[h, w], x[h2, w2] = x[h2, w2], x[h, w]`` swaps scalars of a grey
    image but copies the other pixel into both places of a colour one (the right-hand side
    holds views), a 1-channel image swaps and a 3-channel image copies.
    """

    CIFAR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
    IMAGENET = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))

    def parameters(self, severity: int, image: np.ndarray) -> tuple[float, int, int]:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def blur(self, x: np.ndarray, sigma: float) -> np.ndarray:
        return gaussian(x, sigma)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        sigma, delta, iterations = self.parameters(severity, image)
        x = np.uint8(self.blur(image, sigma) * 255)
        h, w, c = x.shape
        pixels = x.reshape(h * w, c).tolist()
        places = [
            r * w + q for r in range(h - delta, delta, -1) for q in range(w - delta, delta, -1)
        ]
        swap = c == 1
        for here, dx, dy in self.moves(places, iterations, delta, severity, rng):
            there = here + dy * w + dx
            if swap:
                pixels[here], pixels[there] = pixels[there], pixels[here]
            else:
                pixels[here] = pixels[there]
        x = np.asarray(pixels, dtype=np.float64).reshape(h, w, c)
        return self.blur(x / 255.0, sigma)

    def moves(
        self,
        places: list[int],
        iterations: int,
        delta: int,
        severity: int,
        rng: np.random.RandomState,
    ) -> Iterator[tuple[int, int, int]]:
        """(pixel, dx, dy) of every move, drawn as the reference draws them one pixel at a
        time (``randint(-delta, delta, size=(2,))``; a bulk draw gives the same numbers)."""
        for _ in range(iterations):
            offsets = rng.randint(-delta, delta, size=(len(places), 2)).tolist()
            for here, (dx, dy) in zip(places, offsets):
                yield here, dx, dy


@CORRUPTIONS.register("motion_blur")
class MotionBlur(Corruption):
    """Blur along a random direction in [-45, 45] degrees: ImageMagick's motion blur of
    radius ``r`` and sigma ``s``, ``(r, s)``."""

    CIFAR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))
    IMAGENET = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))

    def parameters(self, severity: int, image: np.ndarray) -> tuple[int, float]:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        radius, sigma = self.parameters(severity, image)
        angle = rng.uniform(-45, 45)
        return motion_blur(np.round(image * 255.0), radius, sigma, angle) / 255.0


@CORRUPTIONS.register("zoom_blur")
class ZoomBlur(Corruption):
    """The mean of the image and its centre zoomed by each factor of a range."""

    CIFAR = (
        np.arange(1, 1.06, 0.01),
        np.arange(1, 1.11, 0.01),
        np.arange(1, 1.16, 0.01),
        np.arange(1, 1.21, 0.01),
        np.arange(1, 1.26, 0.01),
    )
    IMAGENET = (
        np.arange(1, 1.11, 0.01),
        np.arange(1, 1.16, 0.01),
        np.arange(1, 1.21, 0.02),
        np.arange(1, 1.26, 0.02),
        np.arange(1, 1.31, 0.03),
    )

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        factors = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        cifar = self.constant_set(*image.shape[:2]) == "cifar"
        h, w = image.shape[:2]
        x = image.astype(np.float32)
        out = np.zeros_like(x)
        for factor in factors:
            out += (
                clipped_zoom_cifar(x, factor) if cifar else clipped_zoom_imagenet(x, factor)[:h, :w]
            )
        return (x + out) / (len(factors) + 1)
