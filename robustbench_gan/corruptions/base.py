"""The corruption base class: it owns the checks, the per-image random streams and the pixels.

A subclass implements one method, :meth:`Corruption.corrupt`, for one image at one severity,
on a NumPy array ``(H, W, C)`` in [0, 1] with C 1 or 3, drawing from the ``RandomState`` it is
handed. Everything else is done here, once for all corruptions:

- the call is checked (images ``(N, C, H, W)`` floating, C 1 or 3, H and W at least 8, values
  in [0, 1]; severity a whole number 1..5; seed a whole number >= 0): a ValueError otherwise;
- image ``i`` of the batch draws from its own ``numpy.random.RandomState`` seeded by
  ``SeedSequence([seed, start + i])`` (:func:`image_rng`), never from a global generator, so a
  result depends on the seed and the image's index only: not on the batch it is in, the
  other images or the severity (every severity sees the same draws, only scaled);
- pixels are taken to the uint8 grid on the way in (rounded: the references work on 8-bit
  images) and out (truncated, as the reference scripts' ``np.uint8(...)`` that wrote
  CIFAR-10-C, ImageNet-C and MNIST-C), and the output is clipped to [0, 1].

A RandomState (the legacy generator) rather than a ``Generator``: the references draw from
NumPy's global legacy stream, so loading an image's state into it (``np.random.set_state(
image_rng(seed, i).get_state())``) replays the very same draws in the reference, which is how
tests/test_corruptions.py compares the two pixel for pixel.

Constant sets (:attr:`Corruption.constants`): Hendrycks and Dietterich published two sets of
severity constants, ImageNet-C's (224 px; the ``imagecorruptions`` package) and CIFAR-10-C's
(32 px; ``make_cifar_c.py``), and the ImageNet ones destroy a small image (defocus radius 10
on 32 px). ``"auto"`` picks CIFAR-10-C's for images whose longer side is at most
:data:`SMALL_SIDE` (64) pixels and ImageNet-C's above; ``"cifar"`` and ``"imagenet"`` force one.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..bounds import OneOf, checked

#: images whose longer side is at most this many pixels get CIFAR-10-C's constants on "auto"
SMALL_SIDE = 64
#: the smallest height and width a corruption accepts (the 8x8 digits)
MIN_SIDE = 8
SEVERITIES = (1, 2, 3, 4, 5)
#: a value outside [0, 1] by at most this much is clipped, not refused
RANGE_TOLERANCE = 1e-6

Constants = Annotated[str, OneOf(("auto", "cifar", "imagenet"))]
T = TypeVar("T")


def image_rng(seed: int, index: int) -> np.random.RandomState:
    """The random stream of image ``index`` under ``seed``: a legacy RandomState (MT19937)
    seeded from ``SeedSequence([seed, index])``."""
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence([seed, index])))


def to_uint8_grid(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] rounded to the 8-bit grid, as uint8."""
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


class Corruption(abc.ABC):
    """A common corruption of images, called as ``corruption(images, severity, seed)``.

    Args:
        constants: which published severity constants a corruption with two sets uses:
            ``"auto"`` (CIFAR-10-C's for images up to 64 px, ImageNet-C's above), ``"cifar"``
            or ``"imagenet"``. Corruptions with one set (MNIST-C's) ignore it.
    """

    #: "hendrycks" (CIFAR-10-C / ImageNet-C) or "mnist_c": which published set it belongs to
    family: ClassVar[str] = "hendrycks"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's own ``__init__`` checks its arguments against its annotations."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = checked(cls.__init__)  # type: ignore[method-assign]

    @checked
    def __init__(self, *, constants: Constants = "auto") -> None:
        self.constants = constants

    def __repr__(self) -> str:
        return f"{type(self).__name__}(constants={self.constants!r})"

    # -- what a subclass implements ------------------------------------------------
    @abc.abstractmethod
    def corrupt(self, image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
        """One corrupted image.

        ``image``: float64 ``(H, W, C)`` in [0, 1] on the 8-bit grid, C 1 or 3; ``severity``
        1..5; ``rng``: this image's stream. Returns an array of the same shape; values are
        clipped to [0, 1] and truncated to the 8-bit grid afterwards.
        """

    # -- helpers for subclasses ------------------------------------------------------
    def constant_set(self, height: int, width: int) -> Literal["cifar", "imagenet"]:
        """The constant set for an image of this size (see the class docstring)."""
        if self.constants == "auto":
            return "cifar" if max(height, width) <= SMALL_SIDE else "imagenet"
        return "cifar" if self.constants == "cifar" else "imagenet"

    def pick(
        self, severity: int, image: np.ndarray, cifar: Sequence[T], imagenet: Sequence[T]
    ) -> T:
        """The severity's constant from the table of the set that applies to ``image``."""
        table = cifar if self.constant_set(*image.shape[:2]) == "cifar" else imagenet
        return table[severity - 1]

    # -- the call --------------------------------------------------------------------
    def __call__(self, images: Tensor, severity: int, seed: int, *, start: int = 0) -> Tensor:
        """``images`` corrupted at ``severity`` (1..5): same shape, dtype and device, in [0, 1].

        ``start``: the index of the first image in the whole set, so a set corrupted in
        batches gets the draws it gets in one call (image ``i`` draws from
        ``image_rng(seed, start + i)``).
        """
        check_call(images, severity, seed, start)
        array = images.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        grid = to_uint8_grid(array)
        out = np.empty(grid.shape, dtype=np.uint8)
        for i, image in enumerate(grid):
            corrupted = self.corrupt(image / 255.0, int(severity), image_rng(seed, start + i))
            corrupted = np.asarray(corrupted, dtype=np.float64).reshape(image.shape)
            out[i] = np.uint8(np.clip(corrupted, 0.0, 1.0) * 255.0)
        result = torch.from_numpy(out).permute(0, 3, 1, 2).to(images.dtype) / 255.0
        return result.contiguous().to(images.device)


def check_call(images: object, severity: object, seed: object, start: object) -> None:
    """A one-line ValueError for anything a corruption call cannot run on."""
    if not isinstance(images, Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (N, C, H, W), got {got}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {c}")
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {h}x{w}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
    if n and not bool(torch.isfinite(images).all()):
        raise ValueError("images must be finite")
    if n and (images.min() < -RANGE_TOLERANCE or images.max() > 1 + RANGE_TOLERANCE):
        raise ValueError("images must be in [0, 1]")
    if not _whole(severity) or severity not in SEVERITIES:
        raise ValueError(f"severity must be a whole number 1..5, got {severity!r}")
    for name, value in (("seed", seed), ("start", start)):
        if not _whole(value) or value < 0:  # type: ignore[operator]
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")


def _whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
