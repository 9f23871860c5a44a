"""The alternating discriminator/generator loop (non-saturating GAN loss)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm.auto import trange

from ..errors import UserError
from ..utils import torch_generator
from .base import GAN


@dataclass
class GanHistory:
    """Losses per step (the D loss is the mean over that step's ``d_steps`` updates)."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def train_gan(
    gan: GAN,
    x: Tensor,
    y: Tensor | None,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    d_steps: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> GanHistory:
    """Train ``gan`` on images ``x`` in [0, 1] (labels ``y`` for a conditional GAN).

    Each step makes ``d_steps`` discriminator updates (real and fake minibatches
    scored separately, BCE with logits) and one generator update with the
    non-saturating loss -log D(G(z)). Minibatches, latents and fake labels come
    from one private random stream seeded by ``seed``, so a CPU run is
    reproducible. The GAN stays on ``device`` and is left in eval mode.
    """
    _check_inputs(gan, x, y, steps=steps, batch_size=batch_size, d_steps=d_steps)
    rng = torch_generator(seed)
    gan.to(device)
    real_all = x.float() * 2 - 1
    labels_all = y.long() if (gan.conditional and y is not None) else None
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)

    def minibatch() -> tuple[Tensor, Tensor | None]:
        idx = torch.randint(len(real_all), (batch_size,), generator=rng)
        labels = None if labels_all is None else labels_all[idx].to(device)
        return real_all[idx].to(device), labels

    def fakes(labels: Tensor | None) -> Tensor:
        return gan.generator(gan.sample_z(batch_size, generator=rng), labels)

    history = GanHistory(steps=steps)
    start = time.perf_counter()
    gan.train()
    bar = trange(steps, desc="gan", disable=not progress, leave=False)
    try:
        for _ in bar:
            d_total = 0.0
            for _ in range(d_steps):
                real, labels = minibatch()
                with torch.no_grad():
                    fake = fakes(labels)
                loss_d = _bce(gan.discriminator(real, labels), 1.0) + _bce(
                    gan.discriminator(fake, labels), 0.0
                )
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                d_total += loss_d.item()

            _, labels = minibatch()  # fake labels follow the data's class frequencies
            loss_g = _bce(gan.discriminator(fakes(labels), labels), 1.0)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            history.d_loss.append(d_total / d_steps)
            history.g_loss.append(loss_g.item())
            bar.set_postfix(
                d=f"{history.d_loss[-1]:.3f}", g=f"{history.g_loss[-1]:.3f}", refresh=False
            )
    finally:
        gan.eval()
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


def _check_inputs(
    gan: GAN, x: Tensor, y: Tensor | None, *, steps: int, batch_size: int, d_steps: int
) -> None:
    if steps < 1 or batch_size < 1 or d_steps < 1:
        raise UserError(
            f"steps, batch_size and d_steps must be >= 1, got {steps}, {batch_size}, {d_steps}"
        )
    if x.ndim != 4 or tuple(x.shape[1:]) != gan.out_shape:
        raise UserError(f"GAN expects images of shape {gan.out_shape}, got {tuple(x.shape[1:])}")
    if len(x) == 0:
        raise UserError("cannot train a GAN on an empty dataset")
    if gan.conditional:
        if y is None or len(y) != len(x):
            raise UserError("a conditional GAN needs one label per image")
        if y.min() < 0 or y.max() >= gan.num_classes:
            raise UserError(f"labels must lie in [0, {gan.num_classes})")
