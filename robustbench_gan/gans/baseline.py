"""``class_means``: the floor a generator must beat, not a GAN from a paper.

Each sample is the mean training image of its class plus isotropic Gaussian pixel noise,
clipped to [0, 1]: ``clamp(mean[y] + sigma * z)`` with z ~ N(0, I) of the image's size
(so ``nz = C * H * W``). ``sigma`` is the within-class pixel standard deviation, averaged
over pixels and classes. It knows the class statistics of the data but nothing of the
shape of a digit beyond its mean, so a trained generator should beat it on FID (lower)
and coverage (higher). ``fit`` computes the means and sigma in one pass (no training
steps); they are buffers, so a saved state dict samples the same after reloading. Works
for any image shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..contract.configs import GanTrainConfig
from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config
from .train import GanHistory, Monitor


class ClassMeans(GAN):
    """Class-conditional "generator": class mean image plus Gaussian noise (see module)."""

    means: Tensor
    sigma: Tensor

    def __init__(self, *, in_shape: Sequence[int], num_classes: int) -> None:
        shape = tuple(int(s) for s in in_shape)
        if len(shape) != 3 or min(shape) < 1 or num_classes < 1:
            raise UserError(f"class_means needs a (C, H, W) shape and classes, got {shape}")
        super().__init__(
            nn.Identity(),
            nn.Identity(),
            nz=shape[0] * shape[1] * shape[2],
            num_classes=num_classes,
            conditional=True,
            out_shape=shape,
        )
        self.register_buffer("means", torch.zeros(num_classes, *shape))
        self.register_buffer("sigma", torch.zeros(()))

    @property
    def device(self) -> torch.device:  # no parameters: the buffers say where it lives
        return self.means.device

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = self._check_labels(labels, len(z))
        return (self.means[labels] + self.sigma * z.view(-1, *self.out_shape)).clamp(0, 1)

    def fit(
        self,
        x: Tensor,
        y: Tensor | None,
        *,
        config: GanTrainConfig,
        rng: torch.Generator,
        device: str | torch.device,
        progress: bool,
        amp: bool,
        monitor: Monitor | None,
    ) -> GanHistory:
        """Class means and the mean within-class pixel std of ``x`` (the loop's options,
        random stream and monitor have nothing to act on)."""
        start = time.perf_counter()
        counts = torch.bincount(y.long().cpu(), minlength=self.num_classes)
        if counts.min() < 2:
            missing = [c for c, count in enumerate(counts.tolist()) if count < 2]
            raise UserError(f"class_means needs 2 or more training images of classes {missing}")
        x, y = x.float().cpu(), y.long().cpu()
        per_class = [x[y == c] for c in range(self.num_classes)]
        self.means.copy_(torch.stack([images.mean(0) for images in per_class]))
        self.sigma.copy_(torch.stack([images.std(0).mean() for images in per_class]).mean())
        self.eval()
        return GanHistory(steps=0, seconds=time.perf_counter() - start)


def _int_classes(config: dict[str, Any]) -> dict[str, Any]:
    """The number of classes as an int (as the buffers were built)."""
    return {**config, "num_classes": int(config["num_classes"])}


@GENERATORS.register("class_means")
@records_config(normalize=_int_classes)
def class_means(*, in_shape: Sequence[int], num_classes: int = 10) -> GAN:
    """The class-mean-plus-noise baseline; ``train_gan`` fits it in one pass."""
    return ClassMeans(in_shape=in_shape, num_classes=num_classes)
