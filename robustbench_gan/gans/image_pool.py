"""A history of generated images that a discriminator is fed from (CycleGAN's pool)."""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """The latest ``size`` generated images (Shrivastava et al. 2017; CycleGAN Sec. 4).

    ``query(fakes, rng)`` returns what D sees instead of ``fakes``: while the pool is
    filling, each fake goes in and comes back; once full, each fake is swapped, with
    probability 1/2, for a random stored one (which it replaces). ``size = 0`` passes
    fakes through. The coins and slots come from ``rng``.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0
        self.images: Tensor | None = None

    def __len__(self) -> int:
        return self.count

    def query(self, fakes: Tensor, rng: torch.Generator) -> Tensor:
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        if self.images is None:
            self.images = fakes.new_empty(self.size, *fakes.shape[1:])
        coins = torch.rand(len(fakes), generator=rng).tolist()
        slots = torch.randint(self.size, (len(fakes),), generator=rng).tolist()
        out = fakes.clone()
        for i, (coin, slot) in enumerate(zip(coins, slots)):
            if self.count < self.size:
                self.images[self.count] = fakes[i]
                self.count += 1
            elif coin < 0.5:
                out[i] = self.images[slot]
                self.images[slot] = fakes[i]
        return out
