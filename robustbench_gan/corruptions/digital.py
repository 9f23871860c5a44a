"""Digital: brightness, contrast, elastic transform, pixelate and JPEG compression.

Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, https://arxiv.org/abs/1903.12261. Constants: CIFAR-10-C's from
``make_cifar_c.py`` for small images, ImageNet-C's (``imagecorruptions``) above (see
:mod:`~robustbench_gan.corruptions.base`). (The paper files brightness under weather.)
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from ..registry import CORRUPTIONS
from .base import Corruption
from .ops import affine_transform, gaussian, warp_affine


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2hsv`` of ``(H, W, 3)`` values in [0, 1]."""
    out = np.empty_like(rgb)
    v = rgb.max(-1)
    delta = np.ptp(rgb, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = delta / v
        s[delta == 0.0] = 0.0
        for channel, offset in ((0, 0.0), (1, 2.0), (2, 4.0)):
            top = rgb[..., channel] == v
            a, b = rgb[..., (channel + 1) % 3], rgb[..., (channel + 2) % 3]
            out[top, 0] = offset + (a[top] - b[top]) / delta[top]
    h = (out[..., 0] / 6.0) % 1.0
    h[delta == 0.0] = 0.0
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """``skimage.color.hsv2rgb``."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    sector = np.stack([sector] * 3, axis=-1).astype(np.uint8) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.choose(sector, np.stack([np.stack(c, axis=-1) for c in choices]))


@CORRUPTIONS.register("brightness")
class Brightness(Corruption):
    """``c`` added to the value channel in HSV (to a grey image itself), capped at 1."""

    CIFAR = (0.05, 0.1, 0.15, 0.2, 0.3)
    IMAGENET = (0.1, 0.2, 0.3, 0.4, 0.5)

    def amount(self, severity: int, image: np.ndarray) -> float:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = self.amount(severity, image)
        if image.shape[2] == 1:
            return np.clip(image + c, 0, 1)
        hsv = rgb_to_hsv(image)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        return hsv_to_rgb(hsv)


@CORRUPTIONS.register("contrast")
class Contrast(Corruption):
    """Each channel pulled towards its mean: ``(x - mean) * c + mean``."""

    CIFAR = (0.75, 0.5, 0.4, 0.3, 0.15)
    IMAGENET = (0.4, 0.3, 0.2, 0.1, 0.05)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        means = np.mean(image, axis=(0, 1), keepdims=True)
        return (image - means) * c + means


@CORRUPTIONS.register("elastic_transform")
class ElasticTransform(Corruption):
    """A smooth random displacement field (Simard et al. 2003), bilinear, reflected borders.

    CIFAR-10-C: a random affine map first (three points moved by up to ``a``), then a field
    of strength ``alpha`` and smoothness ``sigma``: ``(alpha, sigma, a)`` in units of the
    image's side (the reference's 32; the shorter side here). ImageNet-C: only the field,
    ``alpha`` by severity, ``sigma`` 1% of the side.
    """

    CIFAR = (
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    )
    IMAGENET = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        x = np.round(image * 255.0).astype(np.float32) / np.float32(255.0)
        h, w, channels = x.shape
        if self.constant_set(h, w) == "cifar":
            side = min(h, w)
            alpha, sigma, affine = (side * v for v in self.CIFAR[severity - 1])
            centre = np.float32((h, w)) // 2
            third = min(h, w) // 3
            corner = [centre[0] + third, centre[1] - third]
            pts1 = np.float32([centre + third, corner, centre - third])
            pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
            x = warp_affine(x, affine_transform(pts1, pts2)).astype(np.float32)
            low, high, sigmas = -1.0, 1.0, (sigma, sigma)
        else:
            alpha = self.IMAGENET[severity - 1]
            sigmas = tuple(np.array((h, w)) * 0.01)
            high = h * 0.005
            low = -high
        dx, dy = (
            (
                gaussian(rng.uniform(low, high, size=(h, w)), sigmas, mode="reflect", truncate=3)
                * alpha
            ).astype(np.float32)[..., np.newaxis]
            for _ in range(2)
        )
        cols, rows, depth = np.meshgrid(np.arange(w), np.arange(h), np.arange(channels))
        coords = [np.reshape(rows + dy, -1), np.reshape(cols + dx, -1), np.reshape(depth, -1)]
        return ndimage.map_coordinates(x, coords, order=1, mode="reflect").reshape(x.shape)


def _pil(image: np.ndarray) -> Image.Image:
    u8 = np.round(image * 255.0).astype(np.uint8)
    return Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8)


def _array(picture: Image.Image, channels: int) -> np.ndarray:
    out = np.asarray(picture, dtype=np.float64) / 255.0
    return out.reshape(out.shape[0], out.shape[1], channels)


@CORRUPTIONS.register("pixelate")
class Pixelate(Corruption):
    """Shrunk to a share ``c`` of its size by box filtering and enlarged back: by box
    filtering (CIFAR-10-C) or nearest neighbours (ImageNet-C)."""

    CIFAR = (0.95, 0.9, 0.85, 0.75, 0.65)
    IMAGENET = (0.6, 0.5, 0.4, 0.3, 0.25)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        c = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        h, w = image.shape[:2]
        cifar = self.constant_set(h, w) == "cifar"
        picture = _pil(image).resize((int(w * c), int(h * c)), Image.BOX)
        picture = picture.resize((w, h), Image.BOX if cifar else Image.NEAREST)
        return _array(picture, image.shape[2])


@CORRUPTIONS.register("jpeg_compression")
class JpegCompression(Corruption):
    """Saved as JPEG at quality ``c`` with Pillow and read back (grey images as RGB, as
    ``imagecorruptions`` does, then turned grey again)."""

    CIFAR = (80, 65, 58, 50, 40)
    IMAGENET = (25, 18, 15, 10, 7)

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        quality = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        picture = _pil(image)
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, "JPEG", quality=quality)
        with Image.open(buffer) as decoded:
            back = decoded.convert("L") if image.shape[2] == 1 else decoded.convert("RGB")
            return _array(back, image.shape[2])
