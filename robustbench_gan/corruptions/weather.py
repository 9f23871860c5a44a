"""Weather: snow, frost and fog.

Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, https://arxiv.org/abs/1903.12261. Constants: CIFAR-10-C's from
``make_cifar_c.py`` for small images, ImageNet-C's (``imagecorruptions``) above (see
:mod:`~robustbench_gan.corruptions.base`).

Frost overlays photographs of frost that the ``imagecorruptions`` package ships (the six of
Hendrycks' repository); they are read from its folder without importing it, and frost alone
needs the package installed (a UserError says so).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..registry import CORRUPTIONS
from .base import Corruption
from .ops import (
    clipped_zoom_cifar,
    clipped_zoom_imagenet,
    luma,
    motion_blur,
    next_power_of_2,
    plasma_fractal,
    resize_cubic_window,
    resize_linear,
)

#: the package whose folder holds the frost pictures (found, not imported)
FROST_PACKAGE = "imagecorruptions"
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def _float32(image: np.ndarray) -> np.ndarray:
    """The image as the references read it: ``np.array(x, dtype=np.float32) / 255.``."""
    return np.round(image * 255.0).astype(np.float32) / np.float32(255.0)


@CORRUPTIONS.register("snow")
class Snow(Corruption):
    """Snowflakes: thresholded zoomed noise, motion-blurred along [-135, -45] degrees, added
    twice (the second time turned by 180 degrees) over a whitened image.
    ``(mean, std, zoom, threshold, blur radius, blur sigma, image share)``."""

    CIFAR = (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    )
    IMAGENET = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    )

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        mean, std, factor, threshold, radius, sigma, share = self.pick(
            severity, image, self.CIFAR, self.IMAGENET
        )
        h, w = image.shape[:2]
        cifar = self.constant_set(h, w) == "cifar"
        x = _float32(image)
        layer = rng.normal(size=(h, w), loc=mean, scale=std)[..., np.newaxis]
        layer = clipped_zoom_cifar(layer, factor) if cifar else clipped_zoom_imagenet(layer, factor)
        layer[layer < threshold] = 0
        layer = np.clip(layer[..., 0], 0, 1)
        angle = rng.uniform(-135, -45)
        if cifar:  # an 8-bit grey PNG through ImageMagick, read back as 8 bits
            blurred = motion_blur(np.uint8(layer * 255).astype(np.float64), radius, sigma, angle)
            layer = np.round(blurred) / 255.0
        else:
            layer = (
                np.round(motion_blur(layer, radius, sigma, angle) * 255).astype(np.uint8) / 255.0
            )
        layer = layer[:h, :w, np.newaxis]
        grey = luma(x)[..., np.newaxis] if x.shape[2] == 3 else x
        x = share * x + (1 - share) * np.maximum(x, grey * 1.5 + 0.5)
        return x + layer + np.rot90(layer, k=2)


@functools.cache
def _frost_folder() -> Path:
    spec = importlib.util.find_spec(FROST_PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        if (Path(folder) / "frost" / FROST_FILES[0]).is_file():
            return Path(folder) / "frost"
    raise UserError(
        "the frost corruption overlays the frost pictures of the imagecorruptions package, "
        "which is not installed: pip install imagecorruptions"
    )


@functools.cache
def frost_picture(index: int) -> np.ndarray:
    """Frost picture ``index`` (0..5) as uint8 RGB ``(H, W, 3)`` (an alpha channel dropped)."""
    with Image.open(_frost_folder() / FROST_FILES[index]) as picture:
        return np.asarray(picture.convert("RGB"))


@functools.cache
def _frost_small(index: int, factor: float) -> np.ndarray:
    return resize_linear(frost_picture(index), factor)


@CORRUPTIONS.register("frost")
class Frost(Corruption):
    """A random crop of one of the first five frost pictures blended in:
    ``share * x + weight * frost``, ``(share, weight)``.

    CIFAR-10-C shrinks the pictures to a fifth (bilinear) before cropping 32x32; for a larger
    image (up to 64 px) the shrink is ``0.2 * side / 32``, so the frost keeps its size relative
    to the image. ImageNet-C enlarges them by 1.1 (bicubic; more where a picture is smaller
    than the image). A grey image takes the ITU-R 601 grey of the frost (``imagecorruptions``
    weighs its BGR array with RGB's weights; left alone there).
    """

    CIFAR = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
    IMAGENET = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        share, weight = self.pick(severity, image, self.CIFAR, self.IMAGENET)
        h, w = image.shape[:2]
        index = rng.randint(5)
        if self.constant_set(h, w) == "cifar":
            small = _frost_small(index, 0.2 * max(1.0, max(h, w) / 32))
            top, left = rng.randint(0, small.shape[0] - h), rng.randint(0, small.shape[1] - w)
            frost = small[top : top + h, left : left + w]
        else:
            frost = self._imagenet_crop(frost_picture(index), h, w, rng)
        frost = frost.astype(np.float64)
        if image.shape[2] == 1:
            frost = luma(frost)[..., np.newaxis]
        return (share * np.round(image * 255.0) + weight * frost) / 255.0

    @staticmethod
    def _imagenet_crop(
        picture: np.ndarray, h: int, w: int, rng: np.random.RandomState
    ) -> np.ndarray:
        fh, fw = picture.shape[:2]
        factor: float = 1
        if fh < h and fw < w:
            factor = max(h / fh, w / fw)
        elif fh < h:
            factor = h / fh
        elif fw < w:
            factor = w / fw
        factor *= 1.1
        size = (math.ceil(fh * factor), math.ceil(fw * factor))
        top, left = rng.randint(0, size[0] - h), rng.randint(0, size[1] - w)
        return resize_cubic_window(picture, size, top, left, h, w)


@CORRUPTIONS.register("fog")
class Fog(Corruption):
    """A plasma fractal of thickness ``t`` (roughness decay ``d``) added, the image then
    scaled back by ``max / (max + t)``: ``(t, d)``. The fractal's map is the next power of
    two above the image's longer side (CIFAR-10-C: 32)."""

    CIFAR = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))
    IMAGENET = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))

    def parameters(self, severity: int, image: np.ndarray) -> tuple[float, float]:
        return self.pick(severity, image, self.CIFAR, self.IMAGENET)

    def mapsize(self, height: int, width: int) -> int:
        return next_power_of_2(max(height, width, 3))

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        thickness, decay = self.parameters(severity, image)
        h, w = image.shape[:2]
        top = image.max()
        fractal = plasma_fractal(self.mapsize(h, w), decay, rng)[:h, :w, np.newaxis]
        return (image + thickness * fractal) * top / (top + thickness)
