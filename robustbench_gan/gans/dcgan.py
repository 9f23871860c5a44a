"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016.

The architecture rules of the paper (Section 3):

- no pooling: the generator upsamples with transposed convolutions (kernel 4,
  stride 2, padding 1), the discriminator downsamples with strided convolutions;
- batch norm in both nets, except the generator's output layer and the
  discriminator's input layer;
- no fully connected hidden layers: the generator's first layer is a transposed
  convolution from the 1x1 latent to an s0 x s0 map, the discriminator's last a
  convolution with kernel s0 down to one 1x1 logit;
- ReLU in the generator with tanh at the output, LeakyReLU(0.2) in the discriminator;
- weights from N(0, 0.02) (batch-norm scales from N(1, 0.02), biases 0).

Paper defaults for training (see ``gans.train.train_gan``): Adam with lr 0.0002
and beta1 0.5, minibatches of 128, a 100-dimensional z (uniform in the paper;
here standard normal), ngf = ndf = 64 for 64x64 images.

Any square image works: the number of stride-2 stages is how many times the side
can be halved while it stays even and the result is at least 4 (8 -> 1 stage from
4x4, 28 -> 2 from 7x7, 32 -> 3 from 4x4, 64 -> 4 from 4x4). Widths double per
stage going down into the discriminator and halve going up the generator, with
the multiplier capped at 8 as in the paper.

The class-conditional variant (``cdcgan``) is the same builder with
``conditional=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config

MAX_WIDTH_MULTIPLIER = 8
LEAK = 0.2


def stage_plan(side: int) -> tuple[int, int]:
    """``(k, s0)``: the number of stride-2 stages and the side of the smallest map."""
    k = 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        k += 1
    return k, side


def square_stages(in_shape: Sequence[int], family: str) -> tuple[int, int, int, int]:
    """``(channels, side, k, s0)`` for a convolutional family's square images: the stage
    plan of ``stage_plan``; a shape it cannot halve to at least 4 is the user's to fix."""
    channels, height, width = (int(s) for s in in_shape)
    if height != width:
        raise UserError(f"{family} needs square images, got {height}x{width}")
    k, s0 = stage_plan(height)
    if k == 0:
        raise UserError(
            f"{family} needs a side that halves to at least 4 (e.g. 8, 28, 32), got {height}"
        )
    return channels, height, k, s0


def _width(base: int, stage: int) -> int:
    return base * min(2**stage, MAX_WIDTH_MULTIPLIER)


def _one_hot(labels: Tensor, num_classes: int, like: Tensor) -> Tensor:
    return F.one_hot(labels, num_classes).to(like.dtype)


class DCGenerator(nn.Module):
    """z (and a one-hot label, as extra 1x1 channels) -> image in [-1, 1]."""

    def __init__(
        self, *, nz: int, channels: int, k: int, s0: int, ngf: int, num_classes: int | None
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        in_ch = nz + (num_classes or 0)
        widths = [_width(ngf, stage) for stage in reversed(range(k))]  # e.g. 4ngf, 2ngf, ngf
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_ch, widths[0], s0, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in pairwise(widths):
            layers += [
                nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            z = torch.cat([z, _one_hot(labels, self.num_classes, z)], dim=1)
        return self.net(z[:, :, None, None])


class DCDiscriminator(nn.Module):
    """Image in [-1, 1] (and one-hot label maps as extra channels) -> one logit per image."""

    def __init__(
        self, *, channels: int, k: int, s0: int, ndf: int, num_classes: int | None
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        in_ch = channels + (num_classes or 0)
        widths = [_width(ndf, stage) for stage in range(k)]  # e.g. ndf, 2ndf, 4ndf
        layers: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 4, 2, 1), nn.LeakyReLU(LEAK, True)]
        for w_in, w_out in pairwise(widths):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(LEAK, True),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, s0, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            maps = _one_hot(labels, self.num_classes, x)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1)
        return self.net(x).flatten()


def init_dcgan_weights(module: nn.Module) -> None:
    """Conv weights N(0, 0.02), batch-norm scales N(1, 0.02), all biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def build_dcgan(
    *,
    in_shape: Sequence[int],
    num_classes: int,
    nz: int,
    ngf: int,
    ndf: int,
    conditional: bool,
) -> GAN:
    """A DCGAN for ``in_shape`` (C, H, W); class-conditional when ``conditional``."""
    channels, height, k, s0 = square_stages(in_shape, "DCGAN")
    if min(nz, ngf, ndf, num_classes) < 1:
        raise UserError("nz, ngf, ndf and num_classes must be positive")
    cond_classes = num_classes if conditional else None
    gan = GAN(
        DCGenerator(nz=nz, channels=channels, k=k, s0=s0, ngf=ngf, num_classes=cond_classes),
        DCDiscriminator(channels=channels, k=k, s0=s0, ndf=ndf, num_classes=cond_classes),
        nz=nz,
        num_classes=num_classes,
        conditional=conditional,
        out_shape=(channels, height, height),
    )
    gan.apply(init_dcgan_weights)
    return gan


@GENERATORS.register("dcgan")
@records_config
def dcgan(
    *, in_shape: Sequence[int], num_classes: int = 10, nz: int = 100, ngf: int = 64, ndf: int = 64
) -> GAN:
    """Unconditional DCGAN (Radford et al. 2016); see the module docstring."""
    return build_dcgan(
        in_shape=in_shape, num_classes=num_classes, nz=nz, ngf=ngf, ndf=ndf, conditional=False
    )
