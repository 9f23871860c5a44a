"""StarGAN's losses and training loop (Choi et al. 2018, Sec. 3 and 4.1).

With x a real image of domain c', c a target domain drawn at random, G(x, c) its translation:

- adversarial loss, WGAN-GP (Gulrajani et al. 2017) on D_src's patch map: the critic
  minimises E[D_src(G(x, c))] - E[D_src(x)] + lambda_gp E[(|grad D_src(x_hat)|_2 - 1)^2]
  at random interpolates x_hat (lambda_gp = 10, the suite's ``gp_weight``), G minimises
  -E[D_src(G(x, c))]; another ``loss`` of ``gans.losses`` may replace it (``train``);
- domain classification loss: D minimises the cross-entropy of D_cls(x) against the real
  domain c' (``L_cls^r``), G that of D_cls(G(x, c)) against the target c (``L_cls^f``),
  both weighted by lambda_cls = 1 (``cls_weight``);
- reconstruction (cycle) loss: G minimises |x - G(G(x, c), c')|_1 with weight
  lambda_rec = 10 (``rec_weight``).

So L_D = L_adv^D + lambda_cls L_cls^r and L_G = L_adv^G + lambda_cls L_cls^f +
lambda_rec L_rec. Each step makes ``d_steps`` critic updates (n_critic = 5 in the paper) and
one generator update, each on a fresh minibatch. The target domain is drawn uniformly among
the domains other than the image's own (the paper draws it at random; translating an image
into its own domain teaches G nothing the reconstruction does not). ``history`` holds the
critic's and the generator's losses and ``series["cycle_error"]``: the mean L1 distance, in
[0, 1] units, of the reconstruction G(G(x, c), c') to x -- the same series CycleGAN writes.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm.auto import trange

from ..contract.configs import GanTrainConfig
from .losses import discriminator_loss, generator_loss, gradient_penalty, reconstruction_error
from .train import GanHistory, Monitor, accumulated_update, autocast, record_translation_step

if TYPE_CHECKING:
    from .stargan import StarGAN

# the paper's training settings, as ``train_gan`` options
PAPER_TRAINING: dict[str, Any] = {
    "loss": "wgan_gp",
    "gp_weight": 10.0,
    "d_steps": 5,
    "lr": 1e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "batch_size": 16,
}


def random_targets(source: Tensor, n_domains: int, rng: torch.Generator) -> Tensor:
    """For each domain label in ``source``, another of the ``n_domains``, uniformly."""
    shift = torch.randint(1, n_domains, source.shape, generator=rng)
    return (source + shift) % n_domains


def critic_objective(
    gan: StarGAN,
    real: Tensor,
    source: Tensor,
    target: Tensor,
    c: GanTrainConfig,
    rng: torch.Generator,
    amp: bool,
) -> Tensor:
    """L_D: the adversarial loss on real images and translations (plus the gradient
    penalty) and the domain classification loss on the real images."""
    with torch.no_grad(), autocast(real.device, amp):
        fake = gan.generator(real, gan.onehot(target)).float()
    with autocast(real.device, amp):
        src_real, cls_real = gan.discriminator(real)
        src_fake, _ = gan.discriminator(fake)
        loss = discriminator_loss(c.loss, src_real.float(), src_fake.float())
        loss = loss + gan.cls_weight * F.cross_entropy(cls_real.float(), source)
    if c.loss == "wgan_gp" and c.gp_weight:
        critic = lambda v: gan.discriminator(v)[0]  # noqa: E731
        loss = loss + c.gp_weight * gradient_penalty(critic, real, fake, generator=rng)
    return loss


def generator_objective(
    gan: StarGAN, real: Tensor, source: Tensor, target: Tensor, loss: str, amp: bool
) -> tuple[Tensor, float]:
    """L_G: adversarial, domain classification and reconstruction losses of G(x, c), and
    the reconstruction error in [0, 1] units."""
    with autocast(real.device, amp):
        fake = gan.generator(real, gan.onehot(target))
        src_fake, cls_fake = gan.discriminator(fake)
        back = gan.generator(fake, gan.onehot(source))
        cycle = reconstruction_error("l1", back, real)
        total = generator_loss(loss, src_fake.float())
        total = total + gan.cls_weight * F.cross_entropy(cls_fake.float(), target)
        total = total + gan.rec_weight * cycle
    return total, float(cycle.detach()) / 2  # halve the [-1, 1] distance


def fit_stargan(
    gan: StarGAN,
    x: Tensor,
    *,
    config: GanTrainConfig,
    rng: torch.Generator,
    device: str | torch.device,
    progress: bool,
    amp: bool,
    monitor: Monitor | None,
) -> GanHistory:
    """Train ``gan`` on the images ``x`` in [0, 1] (``StarGAN.fit``, called by
    ``train_gan``); see the module docstring."""
    c = config
    device = torch.device(device)
    images, labels = gan.training_domains(x, rng)
    real_all = images * 2 - 1
    betas = (c.beta1, c.beta2)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=c.lr, betas=betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=c.d_lr or c.lr, betas=betas)
    cycle_errors: list[float] = []

    def minibatch() -> tuple[Tensor, Tensor, Tensor]:
        idx = torch.randint(len(real_all), (c.batch_size,), generator=rng)
        source = labels[idx]
        target = random_targets(source, gan.n_domains, rng)
        return real_all[idx].to(device), source.to(device), target.to(device)

    def d_loss() -> Tensor:
        return critic_objective(gan, *minibatch(), c, rng, amp)

    def g_loss() -> Tensor:
        loss, error = generator_objective(gan, *minibatch(), c.loss, amp)
        cycle_errors.append(error)
        return loss

    history = GanHistory(steps=c.steps, options=_options(gan, c))
    start = time.perf_counter()
    gan.train()
    bar = trange(c.steps, desc="stargan", disable=not progress, leave=False)
    try:
        for step in bar:
            d_total = sum(accumulated_update(opt_d, d_loss, c.accumulate) for _ in range(c.d_steps))
            history.d_loss.append(d_total / c.d_steps)
            history.g_loss.append(accumulated_update(opt_g, g_loss, c.accumulate))
            record_translation_step(history, gan, step, c, monitor, bar, cycle_errors)
    finally:
        gan.eval()
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


def _options(gan: StarGAN, c: GanTrainConfig) -> dict[str, Any]:
    return {
        **dataclasses.asdict(c),
        "domains": list(gan.translated_domains),
        "cls_weight": gan.cls_weight,
        "rec_weight": gan.rec_weight,
    }
