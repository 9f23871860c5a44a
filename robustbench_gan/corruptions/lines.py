"""MNIST-C's drawn corruptions: a dotted line, a zigzag, and the digit replaced by its Canny
edges.

Mu and Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", 2019,
https://arxiv.org/abs/1906.02337; Canny, "A Computational Approach to Edge Detection", IEEE
TPAMI 1986, as ``skimage.feature.canny`` computes it. MNIST-C's strength is severity 3 and
the others scale it (see :mod:`~robustbench_gan.corruptions.mnist_c`): the lines' thickness
(2.3 pixels of 28), the edges' smoothing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..registry import CORRUPTIONS
from .mnist_c import MnistC
from .ops import luma

#: MNIST-C's line: brightness falls as log(1 - d / 2.3) + 1 with the vertical distance d
THICKNESS = 2.3


def line_from_points(
    c0: float, r0: float, c1: float, r1: float, shape: tuple[int, int], thickness: float
) -> np.ndarray:
    """MNIST-C's ``line_from_points``: a bright line from (column, row) ``(c0, r0)`` to
    ``(c1, r1)`` fading over ``thickness`` pixels, in an ``(H, W)`` array in [0, 1]."""
    h, w = shape
    if c1 == c0:
        return np.zeros(shape)
    cols, rows = np.meshgrid(
        np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64), sparse=True
    )
    slope = (r1 - r0) / (c1 - c0)
    dist = np.clip(np.abs(rows - (slope * (cols - c0) + r0)), 0, thickness - 1e-10)
    line = np.clip(np.log(1 - dist / thickness) + 1, 0, 1)
    line[:, : max(math.floor(c0), 0)] = 0
    line[:, math.ceil(c1) :] = 0
    return line


@CORRUPTIONS.register("mnist_c_dotted_line")
class MnistDottedLine(MnistC):
    """A dashed line across the image between random rows at its left and right edges,
    dashes and gaps 2 pixels (of 28) long, added to the image."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        h, w = image.shape[:2]
        px = self.pixels(image)
        r0, r1 = rng.randint(low=0, high=h - 1, size=2)
        line = line_from_points(0, r0, w - 1, r1, (h, w), THICKNESS * px * self.strength(severity))
        dash = max(1, round(2 * px))
        edges = np.arange(0, w + 2 * dash, dash)
        for i in range(1, len(edges), 2):
            line[:, edges[i - 1] : edges[i]] = 0
        return image + line[..., np.newaxis]


@CORRUPTIONS.register("mnist_c_zigzag")
class MnistZigzag(MnistC):
    """A zigzag of 2-pixel (of 28) teeth from column 2 to 25 along a random slant, added."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        h, w = image.shape[:2]
        px = self.pixels(image)
        a = b = 2.0 * px
        c0, c1 = 2 * px, 25 * px
        r0 = rng.randint(low=0, high=h - 1)
        r1 = r0 + rng.randint(low=-5, high=5) * px
        theta = np.arctan((r1 - r0) / (c1 - c0))
        d = (c1 - c0) / np.cos(theta)
        ends = [(0.0, 0.0)]
        r_i = 0.0
        for i in range(int((d - a) // (2 * a)) + 1):
            r_i = (-1) ** i * b
            ends.append(((2 * i + 1) * a, r_i))
        max_c = (2 * a) * (d // (2 * a))
        if d != max_c:
            ends.append((d, r_i / (2 * (d - max_c))))
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        cs, rs = turn.dot(np.array(ends).T)
        cs, rs = cs + c0, rs + r0
        thickness = THICKNESS * px * self.strength(severity)
        x = image.copy()
        for i in range(1, len(cs)):
            segment = line_from_points(cs[i - 1], rs[i - 1], cs[i], rs[i], (h, w), thickness)
            x = np.clip(x + segment[..., np.newaxis], 0, 1)
        return x


def canny(image: np.ndarray, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """``skimage.feature.canny`` of a float ``(H, W)`` image: Gaussian smoothing (zero outside,
    renormalised by the smoothed mask), Sobel gradients, non-maximum suppression along the
    gradient interpolated between neighbours, hysteresis between ``low`` and ``high``."""
    h, w = image.shape
    gauss = dict(sigma=sigma, mode="constant", cval=0.0, truncate=4.0)
    bleed = ndimage.gaussian_filter(np.ones_like(image), **gauss) + np.finfo(np.float64).eps
    smooth = ndimage.gaussian_filter(image, **gauss) / bleed
    jsobel, isobel = ndimage.sobel(smooth, axis=1), ndimage.sobel(smooth, axis=0)
    magnitude = np.hypot(isobel, jsobel)
    inner = np.zeros((h, w), dtype=bool)
    inner[1:-1, 1:-1] = True
    pad = np.pad(magnitude, 1)

    def at(di: int, dj: int) -> np.ndarray:
        return pad[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]

    ai, aj = np.abs(isobel), np.abs(jsobel)
    same = isobel * jsobel >= 0  # the components agree in sign (or one is 0)
    other = isobel * jsobel <= 0
    maxima = np.zeros((h, w), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        # (sector of directions, weight, forward neighbours, backward neighbours)
        sectors = (
            (same & (ai >= aj), aj / ai, ((1, 0), (1, 1)), ((-1, 0), (-1, -1))),
            (same & (ai <= aj), ai / aj, ((0, 1), (1, 1)), ((0, -1), (-1, -1))),
            (other & (ai <= aj), ai / aj, ((0, 1), (-1, 1)), ((0, -1), (1, -1))),
            (other & (ai >= aj), aj / ai, ((-1, 0), (-1, 1)), ((1, 0), (1, -1))),
        )
        for sector, weight, ahead, behind in sectors:
            plus = at(*ahead[1]) * weight + at(*ahead[0]) * (1 - weight) <= magnitude
            minus = at(*behind[1]) * weight + at(*behind[0]) * (1 - weight) <= magnitude
            chosen = sector & inner
            maxima[chosen] = (plus & minus)[chosen]
    low_mask = maxima & (magnitude >= low)
    labels, count = ndimage.label(low_mask, np.ones((3, 3), dtype=bool))
    if count == 0:
        return low_mask
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[low_mask & (magnitude >= high)])] = True
    keep[0] = False
    return keep[labels]


@CORRUPTIONS.register("mnist_c_canny_edges")
class MnistCannyEdges(MnistC):
    """The image replaced by its Canny edges (smoothing sigma 1, times the strength:
    smoother edges further from the strokes; thresholds 0.1 and 0.2; a colour image's edges
    of its grey, on every channel)."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        grey = image[..., 0] if image.shape[2] == 1 else luma(image)
        edges = canny(grey, sigma=self.strength(severity) * self.pixels(image))
        return edges.astype(np.float64)[..., np.newaxis] * np.ones(image.shape[2])
