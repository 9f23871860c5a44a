"""Class-conditional DCGAN: the conditioning of Mirza & Osindero, "Conditional Generative
Adversarial Nets" (2014), on the DCGAN architecture of Radford et al. (2016).

The generator sees z concatenated with a one-hot label (as extra channels of the
1x1 latent); the discriminator sees the image concatenated with one-hot label maps
broadcast to H x W. Everything else follows ``dcgan`` (same builder, same rules,
same defaults: Adam lr 0.0002, beta1 0.5, batch 128, z of size 100).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..registry import GENERATORS
from .base import GAN, records_config
from .dcgan import build_dcgan


@GENERATORS.register("cdcgan")
@records_config
def cdcgan(
    *, in_shape: Sequence[int], num_classes: int = 10, nz: int = 100, ngf: int = 64, ndf: int = 64
) -> GAN:
    """Class-conditional DCGAN; ``gan.sample(n, labels=...)`` draws images of given classes."""
    return build_dcgan(
        in_shape=in_shape, num_classes=num_classes, nz=nz, ngf=ngf, ndf=ndf, conditional=True
    )
