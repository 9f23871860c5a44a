"""BigGAN: Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis", ICLR 2019 -- a small, class-conditional version.

Architecture (the paper's Appendix B, at small widths):

- a class embedding shared by all of G's conditional batch norms;
- hierarchical latent: z is split into one chunk for G's first (linear) layer and one per
  up-block; each block's conditional batch norms get gains (1 + linear) and biases (linear)
  of the concatenation [shared embedding, z chunk];
- G: linear to an s0 x s0 map (``dcgan.stage_plan``), residual up-blocks
  (BN, ReLU, nearest x2, 3x3 conv, BN, ReLU, 3x3 conv; skip: x2 and 1x1 conv), then
  BN, ReLU, a 3x3 conv to the image and tanh;
- D: residual down-blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pooling; skip: 1x1
  conv and pooling) plus one block without pooling, ReLU, a sum over positions, and the
  projection head of Miyato & Koyama (2018): ``logit = linear(h) + <embed(y), h>``;
- spectral norm (``torch.nn.utils.parametrizations.spectral_norm``) on every conv, linear and
  embedding of G and D except G's shared embedding; orthogonal initialisation;
- an exponential moving average of G's weights (``ema_decay``; batch-norm running statistics
  and spectral-norm vectors copied; ``progan.MovingAverage``) updated after every generator
  step; ``generate`` and ``sample`` use it;
- the truncation trick at sampling only: with ``truncation`` set, components of z beyond
  +-truncation are redrawn (``sample_z`` in eval mode).

Paper defaults for training (see ``gans.train.train_gan``): hinge loss, two D steps per
G step, Adam with betas (0, 0.999), lr 5e-5 for G and 2e-4 for D, z of 120 dimensions, a
128-dimensional shared embedding, batch 2048 (use the ``accumulate`` option to reach large
effective batches), EMA decay 0.9999 (after 20k iterations).

What we changed for small images: widths follow ``ngf`` / ``ndf`` (doubling per level going
down, capped at 8x, as in ``dcgan``); no self-attention block and no orthogonal
regularisation; ``ema_decay`` defaults to 0.999 with a warm-up
``min(ema_decay, (1 + n) / (10 + n))`` after n updates, so that a run of a few thousand steps
forgets the initial weights instead of waiting 20k steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config
from .dcgan import square_stages
from .progan import MovingAverage, level_widths

SN_EPS = 1e-6


def _sn(module: nn.Module) -> nn.Module:
    """Orthogonal initial weights (zero biases) under spectral norm."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module, eps=SN_EPS)


def sn_conv(in_ch: int, out_ch: int, kernel: int) -> nn.Module:
    return _sn(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2))


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class ConditionalBatchNorm(nn.Module):
    """Batch norm without own affine parameters; gain ``1 + W_g c`` and bias ``W_b c``."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = _sn(nn.Linear(cond_dim, channels, bias=False))
        self.bias = _sn(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gain = 1 + self.gain(cond)[:, :, None, None]
        return self.bn(x) * gain + self.bias(cond)[:, :, None, None]


class UpBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(in_ch, cond_dim)
        self.conv1 = sn_conv(in_ch, out_ch, 3)
        self.bn2 = ConditionalBatchNorm(out_ch, cond_dim)
        self.conv2 = sn_conv(out_ch, out_ch, 3)
        self.skip = sn_conv(in_ch, out_ch, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(_upsample(F.relu(self.bn1(x, cond))))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self.skip(_upsample(x))


class DownBlock(nn.Module):
    """The first block skips the leading ReLU (its input is the image)."""

    def __init__(self, in_ch: int, out_ch: int, *, downsample: bool, first: bool) -> None:
        super().__init__()
        self.conv1 = sn_conv(in_ch, out_ch, 3)
        self.conv2 = sn_conv(out_ch, out_ch, 3)
        self.skip = sn_conv(in_ch, out_ch, 1) if (in_ch != out_ch or downsample) else None
        self.downsample, self.first = downsample, first

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = x if self.skip is None else self.skip(x)
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


def z_chunks(nz: int, parts: int) -> list[int]:
    """Sizes of the ``parts`` chunks of z (the first ones one larger when uneven)."""
    return [len(part) for part in torch.arange(nz).tensor_split(parts)]


class BigGenerator(nn.Module):
    """(z, label) -> image in [-1, 1]."""

    def __init__(
        self,
        *,
        nz: int,
        channels: int,
        s0: int,
        widths: Sequence[int],
        num_classes: int,
        shared_dim: int,
    ) -> None:
        super().__init__()
        self.s0, self.chunks = s0, z_chunks(nz, len(widths))
        self.shared = nn.Embedding(num_classes, shared_dim)
        nn.init.orthogonal_(self.shared.weight)
        self.stem = _sn(nn.Linear(self.chunks[0], widths[0] * s0 * s0))
        self.blocks = nn.ModuleList(
            UpBlock(w_in, w_out, shared_dim + chunk)
            for w_in, w_out, chunk in zip(widths[:-1], widths[1:], self.chunks[1:], strict=True)
        )
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), sn_conv(widths[-1], channels, 3), nn.Tanh()
        )

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        first, *rest = z.split(self.chunks, dim=1)
        shared = self.shared(labels)
        h = self.stem(first).view(len(z), -1, self.s0, self.s0)
        for block, chunk in zip(self.blocks, rest, strict=True):
            h = block(h, torch.cat([shared, chunk], dim=1))
        return self.out(h)


class ProjectionDiscriminator(nn.Module):
    """(image in [-1, 1], label) -> ``linear(h) + <embed(label), h>``, h the pooled features."""

    def __init__(self, *, channels: int, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        ins = [channels, *widths[:-1]]
        last = len(widths) - 1
        self.blocks = nn.Sequential(
            *(
                DownBlock(i, o, downsample=n < last, first=n == 0)
                for n, (i, o) in enumerate(zip(ins, widths, strict=True))
            )
        )
        self.linear = _sn(nn.Linear(widths[-1], 1))
        self.embed = _sn(nn.Embedding(num_classes, widths[-1]))

    def features(self, x: Tensor) -> Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        return self.linear(h).flatten() + (self.embed(labels) * h).sum(dim=1)


class BigGAN(GAN):
    """Adds the moving average of G (``generator_ema``, outside ``generator`` so that the
    optimizer does not see it) and truncated sampling."""

    def __init__(
        self,
        generator: BigGenerator,
        discriminator: ProjectionDiscriminator,
        *,
        ema_decay: float,
        truncation: float | None,
        **kwargs,
    ) -> None:
        super().__init__(generator, discriminator, **kwargs)
        self.generator_ema = MovingAverage(generator, ema_decay)
        self.truncation = truncation

    def end_step(self) -> None:
        self.generator_ema.update(self.generator)

    def sample_z(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """N(0, I) codes; in eval mode with ``truncation`` set, components outside
        [-truncation, truncation] are redrawn until none is left."""
        z = torch.randn(n, self.nz, generator=generator)
        if self.truncation is not None and not self.training:
            outside = z.abs() > self.truncation
            while outside.any():
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
                outside = z.abs() > self.truncation
        return z.to(self.device)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Differentiable images in [0, 1] from the moving-average generator."""
        labels = self._check_labels(labels, len(z))
        return (self.generator_ema(z, labels) + 1) / 2


@GENERATORS.register("biggan")
@records_config
def biggan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    nz: int = 120,
    ngf: int = 64,
    ndf: int = 64,
    shared_dim: int = 128,
    ema_decay: float = 0.999,
    truncation: float | None = None,
) -> GAN:
    """Small class-conditional BigGAN (Brock et al. 2019); see the module docstring."""
    channels, height, top, s0 = square_stages(in_shape, "BigGAN")
    if min(ngf, ndf, num_classes, shared_dim) < 1 or nz < top + 1:
        raise UserError(
            f"ngf, ndf, num_classes and shared_dim must be positive and nz >= {top + 1}"
        )
    if not 0 <= ema_decay < 1 or (truncation is not None and truncation <= 0):
        raise UserError("ema_decay must lie in [0, 1) and truncation be positive")
    generator = BigGenerator(
        nz=nz,
        channels=channels,
        s0=s0,
        widths=level_widths(ngf, top),
        num_classes=num_classes,
        shared_dim=shared_dim,
    )
    discriminator = ProjectionDiscriminator(
        channels=channels, widths=level_widths(ndf, top)[::-1], num_classes=num_classes
    )
    return BigGAN(
        generator,
        discriminator,
        ema_decay=ema_decay,
        truncation=truncation,
        nz=nz,
        num_classes=num_classes,
        conditional=True,
        out_shape=(channels, height, height),
        train_defaults=dict(loss="hinge", d_steps=2, lr=5e-5, d_lr=2e-4, beta1=0.0, beta2=0.999),
    )
