"""GAN objectives: the discriminator's and generator's losses for each supported ``loss``.

All take raw discriminator outputs (logits / critic values), one per image:

- ``nonsaturating`` (Goodfellow et al. 2014, Sec. 3): D minimises binary cross-entropy,
  G maximises log D(G(z)) instead of minimising log(1 - D(G(z))), which has strong
  gradients early in training;
- ``saturating``: the minimax value function V(D, G) as written, G minimises
  log(1 - D(G(z))) = -softplus(logit);
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018; BigGAN): D minimises
  relu(1 - D(x)) + relu(1 + D(G(z))), G minimises -D(G(z));
- ``lsgan`` (Mao et al. 2017, a = 0, b = c = 1): least squares, halved;
- ``wgan_gp`` (Gulrajani et al. 2017): the critic minimises D(G(z)) - D(x) plus
  ``gp_weight`` (E[(|grad D(x_hat)| - 1)^2]) at random interpolates x_hat, plus
  ``drift`` E[D(x)^2] (ProGAN's epsilon_drift, 0.001 there; 0 by default); G minimises -D(G(z)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ..contract.configs import GAN_LOSSES

LOSSES = GAN_LOSSES  # the names GanTrainConfig accepts


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; choose one of {', '.join(LOSSES)}")
    return name


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(name: str, real: Tensor, fake: Tensor) -> Tensor:
    """D's loss on one real and one fake minibatch (without the gradient penalty)."""
    if name in ("nonsaturating", "saturating"):
        return _bce(real, 1.0) + _bce(fake, 0.0)
    if name == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if name == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    if name == "wgan_gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss {name!r}")


def generator_loss(name: str, fake: Tensor) -> Tensor:
    """G's loss on D's outputs for a fake minibatch."""
    if name == "nonsaturating":
        return _bce(fake, 1.0)  # -log D(G(z))
    if name == "saturating":
        return -_bce(fake, 0.0)  # log(1 - D(G(z)))
    if name in ("hinge", "wgan_gp"):
        return -fake.mean()
    if name == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    raise ValueError(f"unknown GAN loss {name!r}")


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, *, generator=None
) -> Tensor:
    """E[(|grad_x critic(x_hat)|_2 - 1)^2] at x_hat = t real + (1 - t) fake, t ~ U(0, 1)."""
    t = torch.rand(len(real), 1, 1, 1, generator=generator).to(real)
    x_hat = (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def reconstruction_error(kind: str, x: Tensor, target: Tensor) -> Tensor:
    """Mean L1 (``"l1"``) or squared (``"l2"``) distance of ``x`` to ``target``: the cycle
    losses of the translators (CycleGAN, StarGAN)."""
    diff = (x - target).float()
    return diff.abs().mean() if kind == "l1" else diff.pow(2).mean()
