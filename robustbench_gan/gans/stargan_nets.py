"""The networks of StarGAN: a generator conditioned on a target domain, a two-headed critic.

Architecture of Choi et al. 2018 ("StarGAN: Unified Generative Adversarial Networks for
Multi-Domain Image-to-Image Translation", CVPR 2018, Appendix, Tables 4 and 5):

- generator G(x, c): the target domain's one-hot c is tiled to the image size and stacked
  onto the image as extra channels; a 7x7 convolution to ``ngf`` channels, stride-2 4x4
  convolutions doubling the width (two in the paper, for 128x128), ``n_res`` residual
  blocks (six in the paper), stride-2 4x4 transposed convolutions back up, a 7x7
  convolution to the image channels and tanh; instance norm (with affine parameters) and
  ReLU after every inner convolution; zero padding throughout, which also lets the tiled
  label through the instance norm near the borders (a constant channel alone would be
  normalised away);
- discriminator D(x): stride-2 4x4 convolutions with LeakyReLU(0.01) and no normalisation
  (six for 128x128, down to a 2x2 map), then two heads on the same features: D_src, a 3x3
  convolution to one critic value per patch (PatchGAN), and D_cls, a convolution over the
  whole remaining map to one logit per domain (the auxiliary domain classifier).

For small images we downsample less: G once for sides under 16 (8x8 digits: 8 -> 4, as
CycleGAN's ``translation_nets`` does) and twice otherwise, unless the factory's ``g_down``
sets the count; D until the shorter side is about 2 (two stride-2 layers for 8x8, at most
the paper's six). Widths double per layer without the paper's 2,048-channel top (which six
layers from 64 give), capped at 16 ndf.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LEAK = 0.01  # the paper's LeakyReLU slope in D
MAX_WIDTH_MULTIPLIER = 16
MAX_D_DOWNSAMPLINGS = 6


def _norm(width: int) -> nn.Module:
    # affine as in the paper; per-image statistics in training and evaluation alike
    return nn.InstanceNorm2d(width, affine=True)


class StarResidualBlock(nn.Module):
    """Two 3x3 convolutions (instance norm, ReLU between) added to the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            _norm(width),
            nn.ReLU(True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            _norm(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class StarGenerator(nn.Module):
    """Image in [-1, 1] and target one-hots (N, n_domains) -> image in [-1, 1]."""

    def __init__(self, *, channels: int, n_domains: int, ngf: int, n_down: int, n_res: int):
        super().__init__()
        self.n_domains = n_domains
        layers: list[nn.Module] = [
            nn.Conv2d(channels + n_domains, ngf, 7, 1, 3, bias=False),
            _norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_down):
            w = ngf * 2**i
            layers += [nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), _norm(2 * w), nn.ReLU(True)]
        layers += [StarResidualBlock(ngf * 2**n_down) for _ in range(n_res)]
        for i in reversed(range(n_down)):
            w = ngf * 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False),
                _norm(w // 2),
                nn.ReLU(True),
            ]
        layers += [nn.Conv2d(ngf, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return self.net(torch.cat([x, tile_domains(target, x)], dim=1))


def tile_domains(onehot: Tensor, x: Tensor) -> Tensor:
    """One-hot rows (N, K) as K constant channels of the size of the images ``x``."""
    if onehot.shape != (len(x), onehot.shape[1]):
        raise ValueError(f"expected {len(x)} one-hot rows, got shape {tuple(onehot.shape)}")
    return onehot.to(x)[:, :, None, None].expand(-1, -1, *x.shape[2:])


class StarDiscriminator(nn.Module):
    """Image in [-1, 1] -> (patch critic values (N, 1, h, w), domain logits (N, n_domains))."""

    def __init__(
        self, *, shape: tuple[int, int, int], n_domains: int, ndf: int, n_down: int
    ) -> None:
        super().__init__()
        widths = [ndf * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(n_down)]
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(widths[i - 1] if i else shape[0], w, 4, 2, 1), nn.LeakyReLU(LEAK)]
        self.body = nn.Sequential(*layers)
        h, w = shape[1] >> n_down, shape[2] >> n_down  # each 4x4 stride-2 layer halves (floor)
        self.src = nn.Conv2d(widths[-1], 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(widths[-1], n_domains, (h, w), bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.src(h), self.cls(h).flatten(1)


def discriminator_downsamplings(side: int) -> int:
    """Stride-2 layers until the shorter side is about 2 (8 -> 2, 128 -> 6), at most 6."""
    return max(1, min(MAX_D_DOWNSAMPLINGS, int(math.log2(side)) - 1))
