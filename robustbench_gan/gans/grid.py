"""A PNG grid of generated samples (one row per class for a conditional GAN)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from .base import GAN

MIN_SIDE = 32  # pixels per image in the grid


def save_sample_grid(
    gan: GAN,
    path: str | os.PathLike[str],
    *,
    per_class: int = 8,
    n: int = 64,
    seed: int = 0,
    x: Tensor | None = None,
) -> Path:
    """Write a grid of seeded samples to ``path`` (PNG, written atomically) and return it.

    A conditional GAN draws ``per_class`` samples of each class, one row per class;
    an unconditional one draws ``n`` samples in a near-square grid; a family may show
    something else (``GAN.grid_images``; CycleGAN translates the test images ``x``).
    """
    images, nrow = gan.grid_images(x, per_class=per_class, n=n, seed=seed)
    return save_image_grid(images, path, nrow=nrow)


def save_image_grid(images: Tensor, path: str | os.PathLike[str], *, nrow: int) -> Path:
    """Images in [0, 1] as a PNG grid of ``nrow`` per row (tiny ones enlarged), atomically."""
    side = images.shape[-1]
    if side < MIN_SIDE:  # tiny images (8x8 digits): enlarge with nearest neighbours to stay crisp
        images = F.interpolate(images, scale_factor=math.ceil(MIN_SIDE / side), mode="nearest")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    from torchvision.utils import save_image  # here: importing torchvision takes a second

    try:
        save_image(images, tmp, nrow=nrow, padding=1, pad_value=1.0, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
