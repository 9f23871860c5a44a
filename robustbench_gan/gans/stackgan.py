"""StackGAN: Zhang et al., "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks", ICCV 2017.

Two GANs in sequence. Stage I sketches a low-resolution image from the condition and z;
stage II reads that image and the condition again and draws the full-resolution image.
The paper conditions on a sentence embedding from a pretrained text encoder; here a
learned class embedding (one per stage) stands in for it, so the generator is
class-conditional.

- Conditioning augmentation (Section 3.1): the embedding gives a mean mu and a log standard
  deviation by a linear layer; the condition is c = mu + sigma * eps with eps ~ N(0, I),
  and G is regularised by ``kl_weight`` * KL(N(mu, sigma^2) || N(0, I)) (lambda = 1 in
  the paper; averaged over the condition's dimensions, as in the authors' code), returned
  as the extra generator loss of ``train_forward``.
- Stage-I G: [c, z] -> linear to an s0 x s0 map with batch norm and ReLU -> (nearest 2x
  upsampling, 3x3 conv, batch norm, ReLU) blocks -> 3x3 conv, tanh, at half the side.
- Stage-II G: the stage-I image -> encoder (3x3 conv, ReLU, then up to two stride-2
  convolutions with batch norm) -> the stage's own condition replicated spatially and
  concatenated -> 3x3 conv -> residual blocks -> upsampling blocks to the full side.
- Both D: a 3x3 stem, stride-2 convolutions with batch norm and LeakyReLU(0.2) down to an
  s0 x s0 map, the compressed condition (a class embedding) replicated and concatenated,
  a 1x1 conv, and a conv over the whole map to one logit. Stage-I D sees images at half
  resolution (real ones downsampled by 2x2 averaging), stage-II D at the full one.

Schedule: stage I trains for the first ``stage1_share`` of the steps; then stage II trains
with stage I frozen (run without gradients and in eval mode, so neither its weights nor its
batch-norm statistics change). The current stage is a buffer, so a reloaded state dict
knows it. The latent a sample draws holds z and both stages' conditioning noise
(``gan.nz = nz + 2 * c_dim``), so a seed fixes the whole sample.

Not here: the paper's matching-aware discriminator term (real images with mismatched
text) needs wrong-condition pairs that the shared loop does not draw.

Paper defaults: z of 100, condition of 128 (``c_dim``), D's compressed condition of 128
(``d_cond_dim``), 4 residual blocks (the authors' code), Adam lr 0.0002, beta1 0.5,
minibatches of 64, 64x64 stage-I and 256x256 stage-II images. For small images the
stage-I side is half the full side (8 -> 4, 28 -> 14, 32 -> 16), so the side must be even
with a half of at least 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config
from .dcgan import LEAK, _width, init_dcgan_weights, stage_plan

MAX_ENCODER_STAGES = 2  # the paper's stage-II encoder downsamples 64 -> 16


def _conv_bn(c_in: int, c_out: int, *, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2 if stride == 1 else 1, bias=False),
        nn.BatchNorm2d(c_out),
    ]


def _up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """Nearest 2x upsampling, 3x3 conv, batch norm, ReLU."""
    return [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_bn(c_in, c_out), nn.ReLU(True)]


def _encode_block(c_in: int, c_out: int) -> list[nn.Module]:
    """4x4 stride-2 conv, batch norm, ReLU (stage-II G's encoder)."""
    return [*_conv_bn(c_in, c_out, kernel=4, stride=2), nn.ReLU(True)]


def _down_block(c_in: int, c_out: int) -> list[nn.Module]:
    """4x4 stride-2 conv, batch norm, LeakyReLU(0.2) (the discriminators)."""
    return [*_conv_bn(c_in, c_out, kernel=4, stride=2), nn.LeakyReLU(LEAK, True)]


def _chain(block: Callable[[int, int], list[nn.Module]], widths: list[int]) -> list[nn.Module]:
    """``block`` between each pair of consecutive widths, flattened into one list."""
    return [m for w_in, w_out in pairwise(widths) for m in block(w_in, w_out)]


def _replicate(code: Tensor, like: Tensor) -> Tensor:
    return code[:, :, None, None].expand(-1, -1, *like.shape[2:])


def kl_to_standard_normal(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), averaged over the batch and the dimensions."""
    return (0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1) - log_sigma).mean()


class ConditioningAugmentation(nn.Module):
    """Class -> embedding (the text embedding's stand-in) -> (mu, log sigma) -> c."""

    def __init__(self, num_classes: int, c_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, c_dim)
        self.moments = nn.Linear(c_dim, 2 * c_dim)

    def forward(self, labels: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
        """The condition ``mu + sigma * eps`` and its KL term."""
        mu, log_sigma = self.moments(self.embed(labels)).chunk(2, dim=1)
        return mu + log_sigma.exp() * eps, kl_to_standard_normal(mu, log_sigma)


class StageOneGenerator(nn.Module):
    """(z, eps, class) -> (image at ``side`` in [-1, 1], KL term)."""

    def __init__(
        self, *, nz: int, c_dim: int, num_classes: int, channels: int, side: int, ngf: int
    ) -> None:
        super().__init__()
        k, self.s0 = stage_plan(side)
        widths = [_width(ngf, stage) for stage in reversed(range(k + 1))]
        self.augment = ConditioningAugmentation(num_classes, c_dim)
        self.project = nn.Sequential(
            nn.Linear(nz + c_dim, widths[0] * self.s0**2, bias=False),
            nn.BatchNorm1d(widths[0] * self.s0**2),
            nn.ReLU(True),
        )
        self.draw = nn.Sequential(
            *_chain(_up_block, widths), nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: Tensor, eps: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        c, kl = self.augment(labels, eps)
        h = self.project(torch.cat([z, c], dim=1)).view(len(z), -1, self.s0, self.s0)
        return self.draw(h), kl


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(width, width), nn.ReLU(True), *_conv_bn(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageTwoGenerator(nn.Module):
    """(stage-I image at ``side // 2``, eps, class) -> (image at ``side``, KL term)."""

    def __init__(
        self, *, c_dim: int, num_classes: int, channels: int, side: int, ngf: int, res_blocks: int
    ) -> None:
        super().__init__()
        downs = min(stage_plan(side // 2)[0], MAX_ENCODER_STAGES)
        enc = [_width(ngf, stage) for stage in range(downs + 1)]
        self.augment = ConditioningAugmentation(num_classes, c_dim)
        self.encode = nn.Sequential(
            nn.Conv2d(channels, enc[0], 3, 1, 1),
            nn.ReLU(True),
            *_chain(_encode_block, enc),
        )
        self.joint = nn.Sequential(
            *_conv_bn(enc[-1] + c_dim, enc[-1]),
            nn.ReLU(True),
            *[ResidualBlock(enc[-1]) for _ in range(res_blocks)],
        )
        dec = [*reversed(enc), max(ngf // 2, 1)]  # one more upsampling than downsamplings
        self.draw = nn.Sequential(
            *_chain(_up_block, dec), nn.Conv2d(dec[-1], channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, image: Tensor, eps: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        c, kl = self.augment(labels, eps)
        h = self.encode(image)
        return self.draw(self.joint(torch.cat([h, _replicate(c, h)], dim=1))), kl


class StackedGenerator(nn.ModuleDict):
    """Both generators; called as ``G(z, labels)`` it runs the two stages (full side).

    The latent ``z`` holds [noise (nz), stage-I eps (c_dim), stage-II eps (c_dim)]."""

    def __init__(
        self, stage1: StageOneGenerator, stage2: StageTwoGenerator, *, nz: int, c_dim: int
    ):
        super().__init__({"stage1": stage1, "stage2": stage2})
        self.split = (nz, c_dim, c_dim)

    def first(self, z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        noise, eps1, _ = z.split(self.split, dim=1)
        return self["stage1"](noise, eps1, labels)

    def second(self, image: Tensor, z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return self["stage2"](image, z.split(self.split, dim=1)[2], labels)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.second(self.first(z, labels)[0], z, labels)[0]


class ConditionalDiscriminator(nn.Module):
    """Image at ``side`` in [-1, 1] and class -> one logit per image."""

    def __init__(
        self, *, channels: int, side: int, ndf: int, num_classes: int, cond_dim: int
    ) -> None:
        super().__init__()
        k, s0 = stage_plan(side)
        widths = [_width(ndf, stage) for stage in range(k + 1)]
        self.features = nn.Sequential(
            nn.Conv2d(channels, widths[0], 3, 1, 1),
            nn.LeakyReLU(LEAK, True),
            *_chain(_down_block, widths),
        )
        self.embed = nn.Embedding(num_classes, cond_dim)
        self.judge = nn.Sequential(
            *_conv_bn(widths[-1] + cond_dim, widths[-1], kernel=1),
            nn.LeakyReLU(LEAK, True),
            nn.Conv2d(widths[-1], 1, s0),
        )

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        return self.judge(torch.cat([h, _replicate(self.embed(labels), h)], dim=1)).flatten()


class StackGAN(GAN):
    """Two stacked conditional GANs trained one after the other (see the module docstring)."""

    def __init__(self, *args, kl_weight: float, stage1_share: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kl_weight = float(kl_weight)
        self.stage1_share = float(stage1_share)
        self.register_buffer("stage", torch.tensor(1))

    @property
    def current_stage(self) -> int:
        return int(self.stage)

    def stage1_steps(self, steps: int) -> int:
        return round(self.stage1_share * steps)

    def begin_step(self, step: int, steps: int, images_seen: int) -> None:
        stage = 1 if step < self.stage1_steps(steps) else 2
        if stage != self.current_stage:
            self.stage.fill_(stage)
            self.train(self.training)

    def train(self, mode: bool = True) -> StackGAN:
        super().train(mode)
        if mode and self.current_stage == 2:  # stage I is frozen, batch-norm statistics too
            self.generator["stage1"].eval()
            self.discriminator["stage1"].eval()
        return self

    def train_forward(self, z: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.current_stage == 1:
            image, kl = self.generator.first(z, labels)
        else:
            with torch.no_grad():
                sketch, _ = self.generator.first(z, labels)
            image, kl = self.generator.second(sketch, z, labels)
        return image, self.kl_weight * kl

    def discriminate(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, None]:
        return self.discriminator[f"stage{self.current_stage}"](x, labels), None

    def prepare_real(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.current_stage == 1 else x


@GENERATORS.register("stackgan")
@records_config
def stackgan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    nz: int = 100,
    c_dim: int = 128,
    d_cond_dim: int = 128,
    ngf: int = 64,
    ndf: int = 64,
    res_blocks: int = 4,
    kl_weight: float = 1.0,
    stage1_share: float = 0.5,
) -> StackGAN:
    """Class-conditional two-stage StackGAN (Zhang et al. 2017); see the module docstring.

    Paper defaults: ``nz`` 100, ``c_dim`` 128, ``d_cond_dim`` 128, 4 residual blocks,
    ``kl_weight`` 1; ``stage1_share`` 0.5 of the steps for stage I (the paper trains each
    stage for 600 epochs); ``train_defaults``: the non-saturating loss, Adam lr 0.0002,
    beta1 0.5, one D step.
    """
    channels, height, width = (int(s) for s in in_shape)
    if height != width or height % 2 or height // 2 < 4:
        raise UserError(
            f"StackGAN needs square images with an even side of at least 8 (e.g. 8, 28, 32), "
            f"got {height}x{width}"
        )
    if min(nz, c_dim, d_cond_dim, ngf, ndf, num_classes) < 1 or res_blocks < 0:
        raise UserError("nz, c_dim, d_cond_dim, ngf, ndf and num_classes must be positive")
    if kl_weight < 0 or not 0 <= stage1_share <= 1:
        raise UserError("kl_weight must be >= 0 and stage1_share in [0, 1]")
    half = height // 2
    stage1 = StageOneGenerator(
        nz=nz, c_dim=c_dim, num_classes=num_classes, channels=channels, side=half, ngf=ngf
    )
    stage2 = StageTwoGenerator(
        c_dim=c_dim,
        num_classes=num_classes,
        channels=channels,
        side=height,
        ngf=ngf,
        res_blocks=res_blocks,
    )
    discriminators = nn.ModuleDict(
        {
            f"stage{i}": ConditionalDiscriminator(
                channels=channels, side=side, ndf=ndf, num_classes=num_classes, cond_dim=d_cond_dim
            )
            for i, side in ((1, half), (2, height))
        }
    )
    gan = StackGAN(
        StackedGenerator(stage1, stage2, nz=nz, c_dim=c_dim),
        discriminators,
        nz=nz + 2 * c_dim,
        num_classes=num_classes,
        conditional=True,
        out_shape=(channels, height, width),
        train_defaults=dict(loss="nonsaturating", d_steps=1, lr=2e-4, beta1=0.5),
        kl_weight=kl_weight,
        stage1_share=stage1_share,
    )
    gan.apply(init_dcgan_weights)
    return gan
