"""ProGAN: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", ICLR 2018.

Unconditional. Training starts at the smallest side of ``dcgan.stage_plan`` (4x4 for sides
8, 32 and 64; 7x7 for 28) and doubles the resolution up to the data's side, one *level* per
doubling:

- generator: pixel norm on z, a linear layer to an s0 x s0 map, then one block per level
  (nearest upsampling x2, two 3x3 convolutions, LeakyReLU 0.2 and pixel norm after each
  convolution) and a 1x1 toRGB per level;
- discriminator: the mirror image, a 1x1 fromRGB per level, blocks of two 3x3 convolutions
  followed by 2x2 average pooling, and a last block that appends the minibatch standard
  deviation (Sec. 3: one value, averaged over features and positions) as an extra feature map
  before a 3x3 convolution and two linear layers;
- equalized learning rate (Sec. 4.1): every weight is drawn from N(0, 1) and multiplied at run
  time by the He constant sqrt(2 / fan_in) (gain 1 for toRGB and the output layer);
- fade-in (Sec. 2): a new level enters linearly, in G
  ``(1 - alpha) * upsample(toRGB_prev(h)) + alpha * toRGB_new(block(h))`` and mirrored in D
  (``fromRGB_prev(avgpool(x))`` blended with ``block(fromRGB_new(x))``), while the real
  images are blended the same way between the current resolution and the upsampled lower one;
- samples come from an exponential moving average of G's weights (Appendix A.1, decay 0.999,
  ``ema_decay``), updated after every generator step.

Schedule, in images shown (``phase_images``, 800k in the paper): the first resolution trains
for one phase, then each new level fades in over one phase (alpha 0 -> 1) and stabilises for
one more; training then stays at the data's resolution. The level and alpha live in buffers
of the GAN, so a reloaded state dict samples at the resolution training reached.

Paper defaults for training (see ``gans.train.train_gan``): WGAN-GP with gp_weight 10 and
drift 0.001, Adam lr 0.001, betas (0, 0.99), one critic update per generator update,
z of size 512 and 512 feature maps at low resolution.

What we changed for small images: widths follow ``ngf`` / ``ndf`` (doubling per level going
down, capped at 8x, as in ``dcgan``) instead of 512, z has 128 dimensions, tanh squashes the
blended output into [-1, 1] (the paper's output is linear and clipped for display), the
moving average warms up over its first updates (``MovingAverage``), and Adam's state is not
reset when a level is added (the shared loop keeps one optimizer).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config
from .dcgan import square_stages

LEAK = 0.2
HE_GAIN = math.sqrt(2)
MAX_WIDTH_MULTIPLIER = 8


class EqualizedConv2d(nn.Module):
    """A convolution whose N(0, 1) weights are scaled at run time by gain / sqrt(fan_in)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, gain: float = HE_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = gain / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A linear layer whose N(0, 1) weights are scaled at run time by gain / sqrt(fan_in)."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = HE_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """Each pixel's feature vector divided by its root mean square (Sec. 4.2)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStddev(nn.Module):
    """Appends one feature map holding the standard deviation over the minibatch, averaged
    over all features and positions (Sec. 3)."""

    def forward(self, x: Tensor) -> Tensor:
        std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
        return torch.cat([x, std.reshape(1, 1, 1, 1).expand(len(x), 1, *x.shape[2:])], dim=1)


def _conv_act(in_ch: int, out_ch: int, *, pixel_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [EqualizedConv2d(in_ch, out_ch, 3), nn.LeakyReLU(LEAK)]
    return [*layers, PixelNorm()] if pixel_norm else layers


def level_widths(base: int, top: int) -> list[int]:
    """Feature maps per level 0..top: ``base`` at the top, doubling per level down, capped."""
    return [base * min(2 ** (top - level), MAX_WIDTH_MULTIPLIER) for level in range(top + 1)]


def growth_at(images_seen: int, phase_images: int, top: int) -> tuple[int, float]:
    """``(level, alpha)`` after ``images_seen`` images: level 0 for one phase, then per new
    level a fade-in phase (alpha rising linearly from 0 to 1) and a stabilisation phase."""
    if images_seen < phase_images:
        return 0, 1.0
    level, into = divmod(images_seen - phase_images, 2 * phase_images)
    level += 1
    if level > top:
        return top, 1.0
    return level, min(into / phase_images, 1.0)


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class ProGenerator(nn.Module):
    """z -> image in [-1, 1] at the resolution of ``level`` (default: the top one)."""

    def __init__(self, *, nz: int, channels: int, s0: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.s0, self.top = s0, len(widths) - 1
        self.stem_linear = EqualizedLinear(nz, widths[0] * s0 * s0)
        self.stem = nn.Sequential(
            nn.LeakyReLU(LEAK), PixelNorm(), *_conv_act(widths[0], widths[0], pixel_norm=True)
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                *_conv_act(w_in, w_out, pixel_norm=True),
                *_conv_act(w_out, w_out, pixel_norm=True),
            )
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1, gain=1.0) for w in widths)
        self.pixel_norm = PixelNorm()

    def forward(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        *,
        level: int | None = None,
        alpha: float = 1.0,
    ) -> Tensor:
        level = self.top if level is None else level
        h = self.stem_linear(self.pixel_norm(z)).view(len(z), -1, self.s0, self.s0)
        h = self.stem(h)
        if level == 0:
            return torch.tanh(self.to_rgb[0](h))
        for block in self.blocks[: level - 1]:
            h = block(h)
        out = self.to_rgb[level](self.blocks[level - 1](h))
        if alpha < 1:
            out = torch.lerp(_upsample(self.to_rgb[level - 1](h)), out, alpha)
        return torch.tanh(out)


class ProDiscriminator(nn.Module):
    """Image in [-1, 1] at the resolution of ``level`` -> one critic value per image."""

    def __init__(self, *, channels: int, s0: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.top = len(widths) - 1
        self.from_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(channels, w, 1), nn.LeakyReLU(LEAK)) for w in widths
        )
        self.blocks = nn.ModuleList(  # blocks[l - 1] takes level l down to level l - 1
            nn.Sequential(
                *_conv_act(w_hi, w_hi, pixel_norm=False),
                *_conv_act(w_hi, w_lo, pixel_norm=False),
                nn.AvgPool2d(2),
            )
            for w_lo, w_hi in zip(widths[:-1], widths[1:], strict=True)
        )
        w0 = widths[0]
        self.head = nn.Sequential(
            MinibatchStddev(),
            *_conv_act(w0 + 1, w0, pixel_norm=False),
            nn.Flatten(),
            EqualizedLinear(w0 * s0 * s0, w0),
            nn.LeakyReLU(LEAK),
            EqualizedLinear(w0, 1, gain=1.0),
        )

    def forward(
        self,
        x: Tensor,
        labels: Tensor | None = None,
        *,
        level: int | None = None,
        alpha: float = 1.0,
    ) -> Tensor:
        level = self.top if level is None else level
        h = self.from_rgb[level](x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1:
                h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), h, alpha)
            for block in reversed(self.blocks[: level - 1]):
                h = block(h)
        return self.head(h).flatten()


class MovingAverage(nn.Module):
    """A frozen copy of a network whose weights follow the network's by an exponential moving
    average (ProGAN's Appendix A.1, BigGAN's Sec. 4). ``update(source)`` sets
    ``w <- d * w + (1 - d) * w_source`` with ``d = min(decay, (1 + n) / (10 + n))`` after n
    updates (a warm-up that forgets the initial weights in short runs) and copies the
    buffers (batch-norm statistics, spectral-norm vectors). Calling it calls the copy."""

    def __init__(self, network: nn.Module, decay: float) -> None:
        super().__init__()
        self.network = copy.deepcopy(network).requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.tensor(0))

    def current_decay(self) -> float:
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        decay = self.current_decay()
        for mine, theirs in zip(self.network.parameters(), source.parameters(), strict=True):
            mine.lerp_(theirs, 1 - decay)
        for mine, theirs in zip(self.network.buffers(), source.buffers(), strict=True):
            mine.copy_(theirs)
        self.updates += 1

    def forward(self, *args, **kwargs) -> Tensor:
        return self.network(*args, **kwargs)


class ProGAN(GAN):
    """A GAN that grows: ``begin_step`` sets the level and alpha (buffers) from the images
    seen; G, D and the real images follow them. Samples come from ``generator_ema``, a moving
    average of G kept outside ``generator`` (the optimizer steps ``generator`` only)."""

    def __init__(
        self,
        generator: ProGenerator,
        discriminator: ProDiscriminator,
        *,
        s0: int,
        phase_images: int,
        ema_decay: float,
        **kwargs,
    ) -> None:
        super().__init__(generator, discriminator, **kwargs)
        self.s0, self.top, self.phase_images = s0, generator.top, phase_images
        self.generator_ema = MovingAverage(generator, ema_decay)
        self.register_buffer("level", torch.tensor(0))
        self.register_buffer("alpha", torch.tensor(1.0))

    def schedule(self) -> tuple[int, float]:
        """The current ``(level, alpha)``."""
        return int(self.level), float(self.alpha)

    def resolution(self, level: int) -> int:
        return self.s0 * 2**level

    def begin_step(self, step: int, steps: int, images_seen: int) -> None:
        level, alpha = growth_at(images_seen, self.phase_images, self.top)
        self.level.fill_(level)
        self.alpha.fill_(alpha)

    def end_step(self) -> None:
        self.generator_ema.update(self.generator)

    def train_forward(self, z: Tensor, labels: Tensor | None) -> tuple[Tensor, None]:
        level, alpha = self.schedule()
        return self.generator(z, labels, level=level, alpha=alpha), None

    def discriminate(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, None]:
        level, alpha = self.schedule()
        return self.discriminator(x, labels, level=level, alpha=alpha), None

    def prepare_real(self, x: Tensor) -> Tensor:
        """Average-pools the real batch to the current resolution; during a fade blends it
        with its upsampled half-resolution version, weight alpha on the current one."""
        level, alpha = self.schedule()
        factor = x.shape[-1] // self.resolution(level)
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if level > 0 and alpha < 1:
            x = torch.lerp(_upsample(F.avg_pool2d(x, 2)), x, alpha)
        return x

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Full-size images in [0, 1] from the moving average of G at the current level and
        alpha; if training stopped before the data's resolution, the images are upsampled
        (nearest) to it."""
        labels = self._check_labels(labels, len(z))
        level, alpha = self.schedule()
        out = self.generator_ema(z, labels, level=level, alpha=alpha)
        factor = self.out_shape[-1] // out.shape[-1]
        if factor > 1:
            out = F.interpolate(out, scale_factor=factor, mode="nearest")
        return (out + 1) / 2


@GENERATORS.register("progan")
@records_config
def progan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    nz: int = 128,
    ngf: int = 64,
    ndf: int = 64,
    phase_images: int = 800_000,
    ema_decay: float = 0.999,
) -> GAN:
    """Unconditional progressive GAN (Karras et al. 2018); ``phase_images`` is the number of
    images per fade-in and per stabilisation phase, ``ema_decay`` that of the moving average
    of G that samples. See the module docstring."""
    channels, height, top, s0 = square_stages(in_shape, "ProGAN")
    if min(nz, ngf, ndf, num_classes, phase_images) < 1:
        raise UserError("nz, ngf, ndf, num_classes and phase_images must be positive")
    if not 0 <= ema_decay < 1:
        raise UserError(f"ema_decay must lie in [0, 1), got {ema_decay}")
    return ProGAN(
        ProGenerator(nz=nz, channels=channels, s0=s0, widths=level_widths(ngf, top)),
        ProDiscriminator(channels=channels, s0=s0, widths=level_widths(ndf, top)),
        s0=s0,
        phase_images=phase_images,
        ema_decay=ema_decay,
        nz=nz,
        num_classes=num_classes,
        conditional=False,
        out_shape=(channels, height, height),
        train_defaults=dict(
            loss="wgan_gp", gp_weight=10.0, drift=0.001, lr=0.001, beta1=0.0, beta2=0.99, d_steps=1
        ),
    )
