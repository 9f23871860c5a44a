"""CycleGAN's own training scheme: the variants' losses and optimizers, and the fit loop.

Losses and paper defaults per ``variant`` (the nets are the same for all three; the
original DualGAN used a U-Net and DiscoGAN an encoder-decoder, which we do not copy):

- ``cyclegan``: least-squares GAN loss (``loss = "lsgan"``; D's loss halved), L1 cycle
  loss with weight lambda = 10, identity loss ``|G_AB(b) - b|_1 + |G_BA(a) - a|_1`` with
  weight 0.5 lambda (``identity_weight = 0.5``), D fed from a history of the 50 latest
  fakes (``pool_size = 50``, Shrivastava et al. 2017), Adam lr 2e-4, beta1 0.5. The paper
  uses batches of 1 and decays the learning rate linearly to 0 over the second half of
  training; we keep it constant;
- ``dualgan``: the Wasserstein GAN objective with weight clipping (the critic's weights
  clamped to [-c, c] after each update; the paper sets c in [0.01, 0.1], we default to
  ``weight_clip = 0.01``), n_critic = 2 critic updates per generator update, RMSProp
  (lr 5e-5, WGAN's), an L1 reconstruction loss, no identity loss and no history pool. The
  paper's reconstruction weights lambda_U, lambda_V lie in [100, 1000]; we default to 100
  (on 8x8 digits this leaves the critic's signal too weak within a CPU budget: cycle
  weight 2 and lr 5e-4 train well there). Here the objective is the ``"wgan_gp"`` loss
  with ``gp_weight = 0`` (a positive ``gp_weight`` adds the gradient penalty on top of the
  clipping);
- ``discogan``: the standard GAN loss (binary cross-entropy, ``loss = "nonsaturating"``),
  a squared-error (L2 / MSE) reconstruction loss with weight 1 (the paper's
  L_G = L_GAN + L_CONST for each direction), no identity loss and no pool, Adam lr 2e-4,
  betas (0.5, 0.999).

The training loss can be overridden with the suite's ``train = {loss = ...}``; the
reconstruction distance and optimizer stay the variant's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from tqdm.auto import trange

from ..contract.configs import GanTrainConfig
from .image_pool import ImagePool
from .losses import discriminator_loss, generator_loss, gradient_penalty, reconstruction_error
from .train import GanHistory, Monitor, accumulated_update, autocast, record_translation_step

if TYPE_CHECKING:
    from .cyclegan import CycleGAN


@dataclass(frozen=True)
class Variant:
    """What a variant changes: reconstruction distance, optimizer and paper defaults."""

    reconstruction: str  # "l1" | "l2"
    optimizer: str  # "adam" | "rmsprop"
    cycle_weight: float
    identity_weight: float  # times cycle_weight
    pool_size: int
    weight_clip: float  # 0: none
    train_defaults: dict[str, Any]


VARIANTS: dict[str, Variant] = {
    "cyclegan": Variant(
        reconstruction="l1",
        optimizer="adam",
        cycle_weight=10.0,
        identity_weight=0.5,
        pool_size=50,
        weight_clip=0.0,
        train_defaults={"loss": "lsgan", "beta1": 0.5},
    ),
    "dualgan": Variant(
        reconstruction="l1",
        optimizer="rmsprop",
        cycle_weight=100.0,
        identity_weight=0.0,
        pool_size=0,
        weight_clip=0.01,
        train_defaults={"loss": "wgan_gp", "gp_weight": 0.0, "d_steps": 2, "lr": 5e-5},
    ),
    "discogan": Variant(
        reconstruction="l2",
        optimizer="adam",
        cycle_weight=1.0,
        identity_weight=0.0,
        pool_size=0,
        weight_clip=0.0,
        train_defaults={"loss": "nonsaturating", "beta1": 0.5},
    ),
}


# the settings a variant gives a value when left as None, and their types
VARIANT_SETTINGS: dict[str, type] = {
    "pool_size": int,
    "cycle_weight": float,
    "identity_weight": float,
    "weight_clip": float,
}


def variant_settings(variant: str, **values: Any) -> dict[str, Any]:
    """The ``VARIANT_SETTINGS`` ``values``, each left as None replaced by the variant's
    paper value."""
    spec = VARIANTS[variant]
    return {
        name: kind(getattr(spec, name) if values[name] is None else values[name])
        for name, kind in VARIANT_SETTINGS.items()
    }


def fit_translator(
    gan: CycleGAN,
    x: Tensor,
    *,
    config: GanTrainConfig,
    rng: torch.Generator,
    device: str | torch.device,
    progress: bool,
    amp: bool,
    monitor: Monitor | None,
) -> GanHistory:
    """Train ``gan`` on the images ``x`` (``CycleGAN.fit``, called by ``train_gan``).

    Each step makes ``d_steps`` updates of both discriminators (on fresh minibatches,
    fakes through the history pools) and one update of both generators. ``history``
    holds D_A + D_B, the total generator objective and ``series["cycle_error"]``: the
    mean L1 distance, in [0, 1] units, of A -> B -> A and B -> A -> B to the input.
    """
    c = config
    device = torch.device(device)
    domain_a, domain_b = (d.float() * 2 - 1 for d in gan._training_domains(x, rng))
    pools = {"a": ImagePool(gan.pool_size), "b": ImagePool(gan.pool_size)}
    opt_g = _optimizer(gan, gan.generator.parameters(), c.lr, c)
    opt_d = _optimizer(gan, gan.discriminator.parameters(), c.d_lr or c.lr, c)
    cycle_errors: list[float] = []

    def minibatch() -> tuple[Tensor, Tensor]:
        ia = torch.randint(len(domain_a), (c.batch_size,), generator=rng)
        ib = torch.randint(len(domain_b), (c.batch_size,), generator=rng)
        return domain_a[ia].to(device), domain_b[ib].to(device)

    def d_loss() -> Tensor:
        a, b = minibatch()
        with torch.no_grad(), autocast(device, amp):
            fake_b, fake_a = gan.generator["ab"](a), gan.generator["ba"](b)
        fake_a, fake_b = pools["a"].query(fake_a, rng), pools["b"].query(fake_b, rng)
        return _critic_loss(gan, "a", a, fake_a.float(), c, rng, amp) + _critic_loss(
            gan, "b", b, fake_b.float(), c, rng, amp
        )

    def g_loss() -> Tensor:
        loss, cycle_error = generator_objective(gan, *minibatch(), c.loss, amp)
        cycle_errors.append(cycle_error)
        return loss

    history = GanHistory(steps=c.steps, options=_options(gan, c))
    start = time.perf_counter()
    gan.train()
    bar = trange(c.steps, desc=gan.variant, disable=not progress, leave=False)
    try:
        for step in bar:
            d_total = 0.0
            for _ in range(c.d_steps):
                d_total += accumulated_update(opt_d, d_loss, c.accumulate)
                _clip_critics(gan)
            history.d_loss.append(d_total / c.d_steps)
            history.g_loss.append(accumulated_update(opt_g, g_loss, c.accumulate))
            record_translation_step(history, gan, step, c, monitor, bar, cycle_errors)
    finally:
        gan.eval()
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


def generator_objective(
    gan: CycleGAN, a: Tensor, b: Tensor, loss: str, amp: bool
) -> tuple[Tensor, float]:
    """Adversarial + cycle (+ identity) loss of both generators, and the cycle error."""
    g_ab, g_ba = gan.generator["ab"], gan.generator["ba"]
    with autocast(a.device, amp):
        fake_b, fake_a = g_ab(a), g_ba(b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        total = generator_loss(loss, gan.discriminator["b"](fake_b).float())
        total = total + generator_loss(loss, gan.discriminator["a"](fake_a).float())
        cycle = reconstruction_error(gan.reconstruction, rec_a, a)
        cycle = cycle + reconstruction_error(gan.reconstruction, rec_b, b)
        total = total + gan.cycle_weight * cycle
        if gan.identity_weight:
            same = (g_ab(b) - b).float().abs().mean() + (g_ba(a) - a).float().abs().mean()
            total = total + gan.cycle_weight * gan.identity_weight * same
    with torch.no_grad():  # mean L1 in [0, 1] units: halve the [-1, 1] distance
        error = ((rec_a - a).abs().mean() + (rec_b - b).abs().mean()) / 4
    return total, float(error)


def _optimizer(
    gan: CycleGAN, params: Iterable[nn.Parameter], lr: float, c: GanTrainConfig
) -> torch.optim.Optimizer:
    if gan.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(c.beta1, c.beta2))


def _options(gan: CycleGAN, c: GanTrainConfig) -> dict[str, Any]:
    return {
        **dataclasses.asdict(c),
        "variant": gan.variant,
        "domain": gan.domain,
        "reconstruction": gan.reconstruction,
        "optimizer": gan.optimizer,
        "cycle_weight": gan.cycle_weight,
        "identity_weight": gan.identity_weight,
        "pool_size": gan.pool_size,
        "weight_clip": gan.weight_clip,
    }


def _critic_loss(
    gan: CycleGAN,
    side: str,
    real: Tensor,
    fake: Tensor,
    c: GanTrainConfig,
    rng: torch.Generator,
    amp: bool,
) -> Tensor:
    critic = gan.discriminator[side]
    with autocast(real.device, amp):
        loss = discriminator_loss(c.loss, critic(real).float(), critic(fake).float())
    if c.loss == "wgan_gp" and c.gp_weight:
        loss = loss + c.gp_weight * gradient_penalty(critic, real, fake, generator=rng)
    return loss


def _clip_critics(gan: CycleGAN) -> None:
    if gan.weight_clip:
        with torch.no_grad():
            for p in gan.discriminator.parameters():
                p.clamp_(-gan.weight_clip, gan.weight_clip)
