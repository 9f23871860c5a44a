"""The domains of an image translator: transforms of the suite's images or other datasets.

Domain A is the suite's data. Another domain (CycleGAN's ``domain``, each of a multi-domain
translator's ``domains``) is a transform: ``"invert"`` (1 - A), ``"rotate"`` (A rotated 90
degrees counter-clockwise), ``"hflip"`` (A mirrored left to right), ``"blur"`` (a 3x3 box
blur, averaged over the pixels inside the image) or ``"shift"`` (moved one pixel right and
down, the vacated row and column black); or the name of another
dataset of the same image shape (e.g. ``"fashion_mnist"`` for MNIST), whose images the
runner attaches with ``gan.attach_domain_images(domain, train, test)``. For transforms,
training is unpaired: the training images are split by a seeded permutation into disjoint
parts, one per domain (A and B = T(second half) for two), so no pair (a, T(a)) is ever
shown. Metrics look at the translation back to A of the other domain's counterparts of the
real test images (labels kept for the class-preserving transforms, so label fidelity asks
whether the class survives translation); ``INVERSES`` undo a transform, so a translation
into a domain can also be judged by the suite's classifier after undoing it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ..errors import UserError
from ..registry import DATASETS

TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "invert": lambda x: 1 - x,
    "rotate": lambda x: torch.rot90(x, 1, dims=(2, 3)),  # counter-clockwise
    "hflip": lambda x: torch.flip(x, dims=(3,)),  # mirrored left to right
    "blur": lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
    "shift": lambda x: F.pad(x, (1, 0, 1, 0))[:, :, : x.shape[2], : x.shape[3]],
}

# the transform that undoes each invertible transform: T^-1(T(x)) = x
INVERSES: dict[str, Callable[[Tensor], Tensor]] = {
    "invert": TRANSFORMS["invert"],
    "rotate": lambda x: torch.rot90(x, -1, dims=(2, 3)),
    "hflip": TRANSFORMS["hflip"],
}
SQUARE_ONLY = ("rotate",)


def check_domain(domain: str, shape: tuple[int, int, int]) -> None:
    """A UserError unless ``domain`` is a transform that fits ``shape`` or a dataset name."""
    if domain in SQUARE_ONLY and shape[1] != shape[2]:
        raise UserError(f"domain {domain!r} needs square images, got {shape[1]}x{shape[2]}")
    if domain not in TRANSFORMS and domain not in DATASETS:
        raise UserError(
            f"unknown domain {domain!r}: use a transform ({', '.join(TRANSFORMS)}) "
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
            raise UserError(f"domain {self.name!r} is a transform; no images to attach")
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
                f"domain {self.name!r} is a dataset: its images must be attached "
                "with gan.attach_domain_images(domain, train_images, test_images) first"
            )
        return self._images[split]

    def unpaired(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unpaired A and B training images in [0, 1] for the training images ``x``."""
        if not self.is_transform:
            return x, self.attached("train")
        if len(x) < 2:
            raise UserError("a translator needs at least 2 training images to split into A and B")
        order = torch.randperm(len(x), generator=rng)
        half = len(x) // 2
        return x[order[:half]], TRANSFORMS[self.name](x[order[half:]])


def unpaired_domains(
    x: Tensor, domains: list[DomainB], rng: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Training images in [0, 1] and their domain labels (0: A, i: ``domains[i - 1]``) for
    the training images ``x``: a seeded permutation splits ``x`` into ``1 + len(domains)``
    near-equal parts, part 0 stays A and part i becomes the transform of domain i; a dataset
    domain contributes its attached training images instead of a part."""
    made = [d for d in domains if d.is_transform]
    if len(x) < 1 + len(made):
        raise UserError(f"a translator needs at least {1 + len(made)} training images")
    parts = torch.tensor_split(torch.randperm(len(x), generator=rng), 1 + len(made))
    images, labels = [x[parts[0]]], [torch.zeros(len(parts[0]), dtype=torch.long)]
    taken = 1
    for i, domain in enumerate(domains, start=1):
        if domain.is_transform:
            part = x[parts[taken]]
            taken += 1
            images.append(TRANSFORMS[domain.name](part))
        else:
            images.append(domain.attached("train"))
        labels.append(torch.full((len(images[-1]),), i, dtype=torch.long))
    return torch.cat(images).float(), torch.cat(labels)
