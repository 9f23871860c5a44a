"""Domain B of an image translator: a transform of the suite's images or another dataset.

Domain A is the suite's data. Domain B (CycleGAN's ``domain``) is ``"invert"`` (B = 1 - A)
or ``"rotate"`` (B = A rotated 90 degrees counter-clockwise), or the name of another
dataset of the same image shape (e.g. ``"fashion_mnist"`` for MNIST), whose images the
runner attaches with ``gan.attach_domain_b(train, test)``. For a transform, training is
unpaired: the training images are split by a seeded permutation into two disjoint halves,
A = the first half and B = T(second half), so no pair (a, T(a)) is ever shown. Metrics look
at ``G_BA`` applied to the B counterparts of the real test images (labels kept for the
class-preserving transforms, so label fidelity asks whether the class survives translation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import UserError
from ..registry import DATASETS

TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "invert": lambda x: 1 - x,
    "rotate": lambda x: torch.rot90(x, 1, dims=(2, 3)),  # counter-clockwise
}


def check_domain(domain: str, shape: tuple[int, int, int]) -> None:
    """A UserError unless ``domain`` is a transform that fits ``shape`` or a dataset name."""
    if domain == "rotate" and shape[1] != shape[2]:
        raise UserError(f"cyclegan domain 'rotate' needs square images, got {shape[1]}x{shape[2]}")
    if domain not in TRANSFORMS and domain not in DATASETS:
        raise UserError(
            f"unknown cyclegan domain {domain!r}: use a transform ({', '.join(TRANSFORMS)}) "
            "or the name of a dataset with the same image shape"
        )


class DomainB:
    """The B images of the domain ``name`` for images of ``shape``: computed from the A
    images for a transform, else attached (kept as plain attributes, not in any state)."""

    def __init__(self, name: str, shape: tuple[int, int, int]) -> None:
        self.name = name
        self.shape = shape
        self._images: dict[str, Tensor] | None = None

    @property
    def is_transform(self) -> bool:
        return self.name in TRANSFORMS

    def attach(self, train_images: Tensor, test_images: Tensor) -> None:
        """The B images of a dataset domain, one tensor per split."""
        if self.is_transform:
            raise UserError(f"cyclegan domain {self.name!r} is a transform; no images to attach")
        for images in (train_images, test_images):
            if images.ndim != 4 or tuple(images.shape[1:]) != self.shape or not len(images):
                raise UserError(
                    f"domain {self.name!r} needs images of shape {self.shape}, "
                    f"got {tuple(images.shape)}"
                )
        self._images = {"train": train_images.float(), "test": test_images.float()}

    def counterparts(self, x: Tensor, *, split: str) -> Tensor:
        """B images for the A images ``x``: T(x) for a transform, else as many attached
        ``split`` images, the first ones in order (cycled when there are fewer)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if self.is_transform:
            return TRANSFORMS[self.name](x)
        images = self.attached(split)
        return images[torch.arange(len(x)) % len(images)]

    def attached(self, split: str) -> Tensor:
        if self._images is None:
            raise UserError(
                f"cyclegan domain {self.name!r} is a dataset: its images must be attached "
                "with gan.attach_domain_b(train_images, test_images) first"
            )
        return self._images[split]

    def unpaired(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unpaired A and B training images in [0, 1] for the training images ``x``."""
        if not self.is_transform:
            return x, self.attached("train")
        if len(x) < 2:
            raise UserError("cyclegan needs at least 2 training images to split into A and B")
        order = torch.randperm(len(x), generator=rng)
        half = len(x) // 2
        return x[order[:half]], TRANSFORMS[self.name](x[order[half:]])
