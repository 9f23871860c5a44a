"""The original GAN: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.

Architecture of the paper's MNIST model (the authors' pylearn2 configuration):

- generator: z -> fully connected ReLU layers (1200, 1200) -> one fully connected layer
  to every pixel; the paper ends in a sigmoid for pixels in [0, 1], here a tanh for [-1, 1]
  (the project's convention; ``GAN.generate`` maps back to [0, 1]); weights are drawn
  for ReLU (He et al. 2015: N(0, 2 / fan_in), about the paper's uniform +-0.05 at width
  1200), since PyTorch's default shrinks the signal six-fold per layer and G would start
  with nearly the same image for every z;
- discriminator: the flattened image -> maxout layers (240 units of 5 pieces each, twice)
  -> one logit, with dropout on the input (drop 0.2) and on each maxout layer's output
  (drop 0.5).

Objective (``loss`` of ``train_gan``): the paper's minimax game
V(D, G) = E log D(x) + E log(1 - D(G(z))) is ``loss = "saturating"``: G minimises
log(1 - D(G(z))), whose gradient vanishes when D confidently rejects the fakes (early in
training). The paper therefore recommends training G to maximise log D(G(z)) instead, the
``"nonsaturating"`` loss, which is this family's default. Both have the same fixed point.

Paper training: k = 1 discriminator step per generator step, minibatches of 100, SGD with
momentum (learning rate 0.1 decaying, momentum 0.5 rising to 0.7) and a 100-dimensional
uniform z. The shared loop trains with Adam, so the defaults here are Adam's usual GAN
settings (lr 0.0002, beta1 0.5); z is standard normal. The layer sizes are the paper's
whatever the image size (a fully connected net has no notion of resolution), so every
``(C, H, W)`` works; they are parameters for smaller budgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from torch import Tensor, nn

from ..errors import UserError
from ..registry import GENERATORS
from .base import GAN, records_config


class Maxout(nn.Module):
    """A fully connected maxout layer: ``units`` outputs, each the max over ``pieces``
    affine functions of the input (Goodfellow et al. 2013)."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(len(x), self.units, self.pieces).amax(dim=2)


class MLPGenerator(nn.Module):
    """z -> ReLU hidden layers -> tanh image of ``out_shape``."""

    def __init__(self, *, nz: int, hidden: Sequence[int], out_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.out_shape = out_shape
        widths = [nz, *hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.ReLU(True)]
        layers += [nn.Linear(widths[-1], math.prod(out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class MaxoutDiscriminator(nn.Module):
    """Flattened image -> dropout -> (maxout -> dropout) per hidden layer -> one logit."""

    def __init__(
        self,
        *,
        in_features: int,
        hidden: Sequence[int],
        pieces: int,
        dropout: float,
        input_dropout: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(input_dropout)]
        width = in_features
        for units in hidden:
            layers += [Maxout(width, units, pieces), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x).flatten()


def _int_widths(config: dict[str, Any]) -> dict[str, Any]:
    """The hidden widths as lists of ints (as the nets were built)."""
    return {**config, **{k: [int(w) for w in config[k]] for k in ("g_hidden", "d_hidden")}}


@GENERATORS.register("gan")
@records_config(normalize=_int_widths)
def gan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    nz: int = 100,
    g_hidden: Sequence[int] = (1200, 1200),
    d_hidden: Sequence[int] = (240, 240),
    pieces: int = 5,
    dropout: float = 0.5,
    input_dropout: float = 0.2,
) -> GAN:
    """Unconditional fully connected GAN (Goodfellow et al. 2014); see the module docstring.

    Paper defaults: ``nz`` 100, G hidden layers (1200, 1200), D maxout layers (240, 240) of
    5 pieces, dropout 0.5 (0.2 on the input); ``train_defaults``: the non-saturating loss,
    one D step per G step (Adam lr 0.0002, beta1 0.5 instead of the paper's SGD).
    """
    out_shape = tuple(int(s) for s in in_shape)
    g_hidden, d_hidden = [int(w) for w in g_hidden], [int(w) for w in d_hidden]
    if len(out_shape) != 3 or min(out_shape) < 1:
        raise UserError(f"GAN needs an image shape (C, H, W), got {tuple(in_shape)}")
    if min(nz, num_classes, pieces, *g_hidden, *d_hidden) < 1:
        raise UserError("nz, num_classes, pieces and the hidden widths must be positive")
    if not (0 <= dropout < 1 and 0 <= input_dropout < 1):
        raise UserError("dropout rates must lie in [0, 1)")
    return GAN(
        MLPGenerator(nz=nz, hidden=g_hidden, out_shape=out_shape),
        MaxoutDiscriminator(
            in_features=math.prod(out_shape),
            hidden=d_hidden,
            pieces=pieces,
            dropout=dropout,
            input_dropout=input_dropout,
        ),
        nz=nz,
        num_classes=num_classes,
        conditional=False,
        out_shape=out_shape,
        train_defaults=dict(loss="nonsaturating", d_steps=1, lr=2e-4, beta1=0.5),
    )
