"""MNIST-C's affine corruptions: shear, scale, rotate and translate.

Mu and Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", 2019,
https://arxiv.org/abs/1906.02337. Each is ``skimage.transform.warp(x, inverse_map=A)``:
the output pixel at (column, row) ``p`` is the input's bilinear sample at ``A p``, zero
outside the image, and ``A`` keeps the image's centre in place (shift and translation aside).
MNIST-C's strength is severity 3 and the others scale it (see
:mod:`~robustbench_gan.corruptions.mnist_c`).
"""

from __future__ import annotations

import numpy as np

from ..registry import CORRUPTIONS
from .mnist_c import MnistC


def warp(
    image: np.ndarray, matrix: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """``skimage.transform.warp(image, inverse_map=A)`` for the 2x2 ``matrix`` of ``A`` about
    the image's centre, plus ``shift`` (x, y) in pixels: the output pixel at (column, row)
    ``p`` is the input's bilinear sample at ``A p + t``, zero outside, in scikit-image's
    arithmetic (``_warp_fast``), ``t`` as MNIST-C computes it (``13.5 * (1 - a1 - a2)``)."""
    h, w = image.shape[:2]
    a = np.asarray(matrix, dtype=np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    tx = (1 - a[0, 0] - a[0, 1]) * cx + a[0, 1] * (cx - cy) + shift[0]
    ty = (1 - a[1, 0] - a[1, 1]) * cy + a[1, 0] * (cy - cx) + shift[1]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    c = a[0, 0] * cols + a[0, 1] * rows + tx
    r = a[1, 0] * cols + a[1, 1] * rows + ty
    r0, c0, r1, c1 = np.floor(r), np.floor(c), np.ceil(r), np.ceil(c)
    dr, dc = (r - r0)[..., np.newaxis], (c - c0)[..., np.newaxis]

    def pixel(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        inside = ((rr >= 0) & (rr < h) & (cc >= 0) & (cc < w))[..., np.newaxis]
        ri, ci = np.clip(rr, 0, h - 1).astype(np.int64), np.clip(cc, 0, w - 1).astype(np.int64)
        return np.where(inside, image[ri, ci], 0.0)

    top = (1 - dc) * pixel(r0, c0) + dc * pixel(r0, c1)
    bottom = (1 - dc) * pixel(r1, c0) + dc * pixel(r1, c1)
    return (1 - dr) * top + dr * bottom


def _sign(rng: np.random.RandomState) -> int:
    return int(rng.choice([-1, 1], 1)[0])


@CORRUPTIONS.register("mnist_c_shear")
class MnistShear(MnistC):
    """A horizontal shear of 0.4 rad (times the strength), in a random direction. As the
    scikit-image of MNIST-C's day built it (``AffineTransform(shear=s)``: ``[[1, -sin s],
    [0, cos s]]``; scikit-image >= 0.19 builds ``[[1, -tan s], [0, 1]]``)."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        s = 0.4 * self.strength(severity) * _sign(rng)
        return warp(image, [[1.0, -np.sin(s)], [0.0, np.cos(s)]])


@CORRUPTIONS.register("mnist_c_scale")
class MnistScale(MnistC):
    """The digit shrunk to 0.7 of its size about the centre; the shrink (0.3) times the
    strength: 0.85, 0.775, 0.7, 0.625, 0.55."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        size = 1 - 0.3 * self.strength(severity)
        return warp(image, [[1 / size, 0.0], [0.0, 1 / size]])


@CORRUPTIONS.register("mnist_c_rotate")
class MnistRotate(MnistC):
    """A rotation by 0.4 rad (23 degrees, times the strength) about the centre, in a random
    direction."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        r = 0.4 * self.strength(severity) * _sign(rng)
        return warp(image, [[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])


@CORRUPTIONS.register("mnist_c_translate")
class MnistTranslate(MnistC):
    """A shift by 3 pixels (times the strength; of 28) along each axis, each in a random
    direction; a shift by a fraction of a pixel is bilinear."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = 3 * self.strength(severity) * self.pixels(image)
        signs = rng.choice([-1, 1], 2)
        return warp(image, np.eye(2), (c * signs[0], c * signs[1]))
