"""The networks of CycleGAN's translator: a ResNet generator and a PatchGAN discriminator.

Architecture (Zhu et al. 2017, Appendix 7.2), shared by the ``cyclegan``, ``dualgan`` and
``discogan`` variants:

- generator (Johnson et al. 2016): reflection padding and a 7x7 convolution to ``ngf``
  channels, stride-2 3x3 convolutions doubling the width, ``n_res`` residual blocks
  (two 3x3 convolutions each), stride-2 transposed convolutions back up, a 7x7
  convolution to the image channels and tanh; instance norm and ReLU after every inner
  convolution. The paper downsamples twice with 6 blocks for 128x128 and 9 for 256x256;
  we downsample once for sides under 16 (8x8 digits: 8 -> 4) and twice otherwise
  (28 -> 7, 32 -> 8);
- discriminator: a PatchGAN of 4x4 convolutions, LeakyReLU(0.2), instance norm except on
  the first layer, widths ``ndf * 2^i`` (capped at 8 ndf), ending in a map of patch
  logits. The paper's 70x70 PatchGAN has three stride-2 layers; we use one for sides
  under 16, two under 64 (receptive fields 16 and 34 pixels), three from 64 up;
- weights from N(0, 0.02), biases 0.
"""

from __future__ import annotations

from torch import Tensor, nn

LEAK = 0.2
MAX_WIDTH_MULTIPLIER = 8


def _norm(width: int) -> nn.Module:
    return nn.InstanceNorm2d(width)  # no affine parameters, no running statistics (paper's code)


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            _norm(width),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            _norm(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image in [-1, 1] -> image in [-1, 1] of the same shape."""

    def __init__(self, *, channels: int, ngf: int, n_down: int, n_res: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7, bias=False),
            _norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_down):
            w = ngf * 2**i
            layers += [nn.Conv2d(w, 2 * w, 3, 2, 1, bias=False), _norm(2 * w), nn.ReLU(True)]
        layers += [ResidualBlock(ngf * 2**n_down) for _ in range(n_res)]
        for i in reversed(range(n_down)):
            w = ngf * 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(w, w // 2, 3, 2, 1, output_padding=1, bias=False),
                _norm(w // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Image in [-1, 1] -> a map of patch logits, shape (N, 1, h, w)."""

    def __init__(self, *, channels: int, ndf: int, n_down: int) -> None:
        super().__init__()
        widths = [ndf * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(n_down + 1)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(LEAK)]
        for i in range(1, n_down + 1):
            stride = 2 if i < n_down else 1  # the last hidden layer keeps the resolution
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=False),
                _norm(widths[i]),
                nn.LeakyReLU(LEAK),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def init_weights(module: nn.Module) -> None:
    """Convolution weights N(0, 0.02), biases 0 (the paper's code)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def generator_downsamplings(side: int) -> int:
    return 1 if side < 16 else 2


def discriminator_downsamplings(side: int) -> int:
    return 1 if side < 16 else 2 if side < 64 else 3
