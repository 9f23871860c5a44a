"""AC-GAN: Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier
GANs", ICML 2017.

Every fake carries a class c drawn with z; the generator sees both, the discriminator sees
only the image and answers two questions with two heads on a shared trunk: is it real
(one logit) and which class is it (K logits). The objective (Section 3) adds to the GAN
loss the log-likelihood of the correct class, L_C = E log P(C = c | x), which D maximises
on real and fake images and G maximises on fakes; the shared loop does this whenever
``discriminate`` returns class logits (cross-entropy on both for D, on fakes for G).

Architecture (the paper's CIFAR-10 model, DCGAN-like, Appendix), sized for any side by
``dcgan.stage_plan``:

- generator: a learned class embedding (the paper's one-hot class, 10 entries, is the same
  as an embedding of size K) concatenated with z, then the DCGAN generator: a transposed
  convolution from the 1x1 latent to an s0 x s0 map, stride-2 transposed convolutions with
  batch norm and ReLU, tanh at the output;
- discriminator: stride-2 convolutions with LeakyReLU(0.2) and dropout after each (0.5 in
  the paper), batch norm from the second on, then two linear heads on the flattened trunk.

Paper defaults: Adam lr 0.0002, beta1 0.5, minibatches of 100, a 100-dimensional z; the
paper's CIFAR widths are 384/192/96 in G and 16 to 512 in D, here ``ngf``/``ndf`` with the
DCGAN rule (double per stage, at most 8x).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config
from .dcgan import LEAK, DCGenerator, _width, init_dcgan_weights, square_stages


class ACGenerator(nn.Module):
    """(z, class) -> image in [-1, 1]: z concatenated with a class embedding, then DCGAN's G."""

    def __init__(
        self, *, nz: int, embed_dim: int, num_classes: int, channels: int, k: int, s0: int, ngf: int
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = DCGenerator(
            nz=nz + embed_dim, channels=channels, k=k, s0=s0, ngf=ngf, num_classes=None
        )

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.body(torch.cat([z, self.embed(labels)], dim=1))


class ACDiscriminator(nn.Module):
    """Image in [-1, 1] -> (real/fake logit per image, class logits); never sees the label."""

    def __init__(
        self, *, channels: int, k: int, s0: int, ndf: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        widths = [_width(ndf, stage) for stage in range(k)]
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1),
            nn.LeakyReLU(LEAK, True),
            nn.Dropout(dropout),
        ]
        for w_in, w_out in pairwise(widths):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(LEAK, True),
                nn.Dropout(dropout),
            ]
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        features = widths[-1] * s0 * s0
        self.adversarial = nn.Linear(features, 1)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.adversarial(h).flatten(), self.classifier(h)


class ACGAN(GAN):
    """A GAN whose discriminator also returns class logits (the auxiliary classifier)."""

    def discriminate(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        return self.discriminator(x)


@GENERATORS.register("acgan")
@records_config
def acgan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    embed_dim: int = 10,
    dropout: float = 0.5,
) -> ACGAN:
    """Class-conditional AC-GAN (Odena et al. 2017); see the module docstring.

    Paper defaults: ``nz`` 100, a 10-entry class code (``embed_dim``), dropout 0.5 in D;
    ``train_defaults``: the non-saturating loss, Adam lr 0.0002, beta1 0.5, one D step.
    """
    channels, height, k, s0 = square_stages(in_shape, "AC-GAN")
    if min(nz, ngf, ndf, embed_dim, num_classes) < 1:
        raise UserError("nz, ngf, ndf, embed_dim and num_classes must be positive")
    if not 0 <= dropout < 1:
        raise UserError(f"dropout must lie in [0, 1), got {dropout}")
    gan = ACGAN(
        ACGenerator(
            nz=nz,
            embed_dim=embed_dim,
            num_classes=num_classes,
            channels=channels,
            k=k,
            s0=s0,
            ngf=ngf,
        ),
        ACDiscriminator(
            channels=channels, k=k, s0=s0, ndf=ndf, num_classes=num_classes, dropout=dropout
        ),
        nz=nz,
        num_classes=num_classes,
        conditional=True,
        out_shape=(channels, height, height),
        train_defaults=dict(loss="nonsaturating", d_steps=1, lr=2e-4, beta1=0.5),
    )
    gan.apply(init_dcgan_weights)
    return gan
