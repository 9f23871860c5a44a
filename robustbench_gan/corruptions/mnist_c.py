"""MNIST-C's corruptions of grey digits that reuse a Hendrycks corruption, and its spatter and
stripe; the set's severity rule.

Mu and Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", ICML 2019 Workshop on
Uncertainty and Robustness in Deep Learning, https://arxiv.org/abs/1906.02337, and their
``corruptions.py`` (github.com/google-research/mnist-c). MNIST-C applies each corruption at
one strength, the defaults of that file (shot noise at ImageNet-C's severity 5, impulse noise
at 4, ...).

The severity rule of the set: MNIST-C's corruption is severity 3, and severity ``s`` scales
its strength by :data:`STRENGTH` ``[s - 1]`` (x0.5, x0.75, x1, x1.25, x1.5): the noise's
amount, the chance that glass blur moves a pixel, the motion blur's sigma, the fog's
thickness, the brightness's shift, the shear and the rotation's angle, the shrink (1 - scale),
the translation, the stripe's width, the lines' thickness; a strength that is a count goes
the other way (shot noise's photons are divided).
Spatter scales its coverage: the liquid layer's mean moves by 0.01 a severity (0.63..0.67),
which covers about x0.5, x0.7, x1, x1.35, x1.7 of MNIST-C's 14% of the image with mud.
Canny edges scale the smoothing sigma before the edges are found. Each module says what its
corruptions scale.

Sizes: MNIST-C's lengths are pixels of a 28x28 digit; here they are scaled by the image's
shorter side / 28, so the 8x8 digits get the same corruption at their scale. A colour image
gets every channel corrupted alike (spatter's mud is Hendrycks' brown there).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..registry import CORRUPTIONS
from .base import Corruption
from .blur import GlassBlur, MotionBlur
from .digital import Brightness
from .noise import ImpulseNoise, ShotNoise
from .ops import gaussian, next_power_of_2
from .weather import Fog

#: severity s multiplies MNIST-C's strength by STRENGTH[s - 1]; severity 3 is MNIST-C itself
STRENGTH = (0.5, 0.75, 1.0, 1.25, 1.5)
#: the side of an MNIST digit, in which MNIST-C's lengths are given
REFERENCE_SIDE = 28


class MnistC(Corruption):
    """A corruption of the MNIST-C set: one published strength, scaled by severity."""

    family = "mnist_c"

    def __init__(self) -> None:
        super().__init__(constants="auto")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @staticmethod
    def strength(severity: int) -> float:
        return STRENGTH[severity - 1]

    @staticmethod
    def pixels(image: np.ndarray) -> float:
        """MNIST-C's pixels to this image's: its shorter side / 28."""
        return min(image.shape[:2]) / REFERENCE_SIDE


@CORRUPTIONS.register("mnist_c_shot_noise")
class MnistShotNoise(MnistC, ShotNoise):
    """Shot noise with 3 photons per unit of intensity (ImageNet-C's severity 5), divided by
    the strength: 6, 4, 3, 2.4, 2."""

    def photons(self, severity: int, image: np.ndarray) -> float:
        return 3 / self.strength(severity)


@CORRUPTIONS.register("mnist_c_impulse_noise")
class MnistImpulseNoise(MnistC, ImpulseNoise):
    """Salt and pepper on 17% of the values (ImageNet-C's severity 4), times the strength."""

    def amount(self, severity: int, image: np.ndarray) -> float:
        return 0.17 * self.strength(severity)


@CORRUPTIONS.register("mnist_c_glass_blur")
class MnistGlassBlur(MnistC, GlassBlur):
    """Glass blur of sigma 0.7, jitter up to 1 pixel, twice (ImageNet-C's severity 1), each
    pixel moved only if a coin drawn first says so: a fair one in MNIST-C, here of chance
    0.5 times the strength (0.25 .. 0.75).

    The blur runs down the columns only, as it did for MNIST-C's data: its scikit-image's
    ``gaussian(x, multichannel=True)`` took a grey image's last axis for channels."""

    def parameters(self, severity: int, image: np.ndarray) -> tuple[float, int, int]:
        px = self.pixels(image)
        return 0.7 * px, max(1, round(px)), 2

    def blur(self, x: np.ndarray, sigma: float) -> np.ndarray:
        return gaussian(x, (sigma, 0.0))

    def moves(
        self,
        places: list[int],
        iterations: int,
        delta: int,
        severity: int,
        rng: np.random.RandomState,
    ) -> Iterator[tuple[int, int, int]]:
        """The fair coin as MNIST-C draws it, per pixel ``choice([True, False], 1)``
        (``randint(0, 2)``) and the offsets only if it came out True: with ``delta`` 1 every
        draw is the lowest bit of one 32-bit word, so the words are drawn in bulk (an upper
        bound; nothing draws after). Another chance: the coins and every pixel's offsets in
        bulk, an iteration at a time."""
        chance = 0.5 * self.strength(severity)
        if chance != 0.5:
            for _ in range(iterations):
                moved = (rng.random_sample(len(places)) < chance).tolist()
                offsets = rng.randint(-delta, delta, size=(len(places), 2)).tolist()
                yield from ((p, dx, dy) for p, go, (dx, dy) in zip(places, moved, offsets) if go)
        elif delta == 1:
            bits = iter(rng.randint(0, 2, size=3 * len(places) * iterations).tolist())
            for _ in range(iterations):
                for here in places:
                    if next(bits) == 0:
                        yield here, next(bits) - 1, next(bits) - 1
        else:
            for _ in range(iterations):
                for here in places:
                    if rng.randint(0, 2, size=1)[0] == 0:
                        dx, dy = rng.randint(-delta, delta, size=(2,))
                        yield here, int(dx), int(dy)


@CORRUPTIONS.register("mnist_c_motion_blur")
class MnistMotionBlur(MnistC, MotionBlur):
    """Motion blur of radius 10 and sigma 3 (ImageNet-C's severity 1), the sigma times the
    strength."""

    def parameters(self, severity: int, image: np.ndarray) -> tuple[int, float]:
        px = self.pixels(image)
        return max(1, round(10 * px)), 3 * self.strength(severity) * px


@CORRUPTIONS.register("mnist_c_brightness")
class MnistBrightness(MnistC, Brightness):
    """0.5 added to the value (ImageNet-C's severity 5), times the strength."""

    def amount(self, severity: int, image: np.ndarray) -> float:
        return 0.5 * self.strength(severity)


@CORRUPTIONS.register("mnist_c_fog")
class MnistFog(MnistC, Fog):
    """Fog of thickness 3 and decay 1.4 (ImageNet-C's severity 5), the thickness times the
    strength; the fractal is drawn on a 256x256 map and cropped, as in MNIST-C."""

    def parameters(self, severity: int, image: np.ndarray) -> tuple[float, float]:
        return 3.0 * self.strength(severity), 1.4

    def mapsize(self, height: int, width: int) -> int:
        return max(256, next_power_of_2(max(height, width)))


@CORRUPTIONS.register("mnist_c_spatter")
class MnistSpatter(MnistC):
    """Mud spatter (Hendrycks' validation corruption, MNIST-C's severity 4): Gaussian noise
    of mean 0.65 and std 0.3, blurred (sigma 1), thresholded at 0.65, the blobs blurred
    (sigma 1.5) and kept where at least 0.8: there the image turns to mud (63/255; brown
    63, 42, 20 on a colour image). The mean moves by 0.01 a severity (see the module)."""

    MUD = {1: (63 / 255,), 3: (63 / 255, 42 / 255, 20 / 255)}

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        px = self.pixels(image)
        mean = 0.65 + 0.01 * (severity - 3)
        x = np.round(image * 255.0).astype(np.float32) / np.float32(255.0)
        liquid = gaussian(rng.normal(size=image.shape[:2], loc=mean, scale=0.3), 1 * px)
        mask = gaussian((liquid > 0.65).astype(np.float32), 1.5 * px)
        mask[mask < 0.8] = 0
        mud = np.asarray(self.MUD[image.shape[2]], dtype=np.float32)
        return x * (1 - mask[..., np.newaxis]) + mud * mask[..., np.newaxis]


@CORRUPTIONS.register("mnist_c_stripe")
class MnistStripe(MnistC):
    """The left and right quarter of the image inverted (7 of 28 columns each side), the
    width times the strength."""

    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        w = image.shape[1]
        band = min(w // 2, max(1, round(w / 4 * self.strength(severity))))
        x = np.round(image * 255.0)
        x[:, :band] = 255 - x[:, :band]
        x[:, w - band :] = 255 - x[:, w - band :]
        return x / 255.0
