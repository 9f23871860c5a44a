"""The alternating discriminator/generator loop shared by every generator family.

One *step* (a "generation" of G and D) makes ``d_steps`` discriminator updates and
one generator update. Options (``GanTrainConfig``) come from the suite's
``train = {...}`` over the family's paper defaults (``GAN.train_defaults``) over the
defaults here. Families adapt the loop through the hooks of ``gans.base.GAN``; a
family with its own scheme (CycleGAN) defines ``fit`` and the loop hands over to it.

``g_ema`` > 0 keeps an exponential moving average of G's weights (Yazici et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training"), updated after every G step with
the decay ``min(g_ema, (1 + n) / (10 + n))`` after n updates (the warm-up of
``progan.MovingAverage``). The monitor measures the average and G ends with its weights;
batch-norm running statistics are re-estimated for the averaged weights each time, on
``EMA_BN_BATCHES`` minibatches of fakes from a stream of their own that restarts from one
seed each time (training draws the same minibatches and latents with or without the monitor,
and the monitor's last values are those of the trained G).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import trange

from ..contract.configs import GanTrainConfig
from ..errors import UserError
from ..utils import torch_generator
from .base import GAN
from .losses import discriminator_loss, generator_loss, gradient_penalty

Monitor = Callable[[GAN], dict[str, float]]
EMA_BN_BATCHES = 16  # minibatches that re-estimate batch-norm statistics of the averaged G


def resolve_config(gan: GAN, options: dict[str, Any]) -> GanTrainConfig:
    """The options for ``gan``: ``options`` over the family's defaults over GanTrainConfig's."""
    merged = {**gan.train_defaults, **options}
    known = {f.name for f in dataclasses.fields(GanTrainConfig)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ValueError(f"unknown GAN training option(s) {unknown}; known: {sorted(known)}")
    return GanTrainConfig(**merged)


@dataclass
class GanHistory:
    """Losses per step (the D loss is the mean over that step's ``d_steps`` updates), extra
    per-step series of a family (e.g. CycleGAN's ``cycle_error``), monitor rows
    ``{"step": s, <metric>: value}`` and the options used."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    series: dict[str, list[float]] = field(default_factory=dict)
    monitor: list[dict[str, float]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


def train_gan(
    gan: GAN,
    x: Tensor,
    y: Tensor | None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    amp: bool = False,
    monitor: Monitor | None = None,
    **options: Any,
) -> GanHistory:
    """Train ``gan`` on images ``x`` in [0, 1] (labels ``y`` for a conditional GAN).

    ``options`` are ``GanTrainConfig`` fields. Minibatches, latents and fake labels
    come from one private random stream seeded by ``seed``, so a CPU run is
    reproducible. ``amp`` runs the forward passes under bfloat16 autocast. The GAN
    stays on ``device`` and is left in eval mode.
    """
    try:
        config = resolve_config(gan, options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"GAN training options: {exc}") from None
    _check_inputs(gan, x, y)
    rng = torch_generator(seed)
    gan.to(device)
    fit = getattr(gan, "fit", None)
    if fit is not None:
        return fit(
            x, y, config=config, rng=rng, device=device, progress=progress, amp=amp, monitor=monitor
        )
    return _alternate(gan, x, y, config, rng, torch.device(device), progress, amp, monitor)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _alternate(
    gan: GAN,
    x: Tensor,
    y: Tensor | None,
    config: GanTrainConfig,
    rng: torch.Generator,
    device: torch.device,
    progress: bool,
    amp: bool,
    monitor: Monitor | None,
) -> GanHistory:
    c = config
    real_all = x.float() * 2 - 1
    labels_all = y.long() if (gan.conditional and y is not None) else None
    betas = (c.beta1, c.beta2)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=c.d_lr or c.lr, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=c.lr, betas=betas)

    def minibatch() -> tuple[Tensor, Tensor | None]:
        idx = torch.randint(len(real_all), (c.batch_size,), generator=rng)
        labels = None if labels_all is None else labels_all[idx].to(device)
        return real_all[idx].to(device), labels

    def fakes(labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return gan.train_forward(gan.sample_z(c.batch_size, generator=rng), labels)

    def d_loss() -> Tensor:
        real, labels = minibatch()
        real = gan.prepare_real(real)
        with torch.no_grad(), autocast(device, amp):
            fake, _ = fakes(labels)
        with autocast(device, amp):
            real_out, real_aux = gan.discriminate(real, labels)
            fake_out, fake_aux = gan.discriminate(fake, labels)
            loss = discriminator_loss(c.loss, real_out.float(), fake_out.float())
            if real_aux is not None:  # ACGAN: D also classifies real and fake images
                loss = loss + F.cross_entropy(real_aux.float(), labels)
                loss = loss + F.cross_entropy(fake_aux.float(), labels)
        if c.loss == "wgan_gp":
            critic = lambda v: gan.discriminate(v, labels)[0]  # noqa: E731
            loss = loss + c.gp_weight * gradient_penalty(critic, real, fake, generator=rng)
            if c.drift:
                loss = loss + c.drift * real_out.float().pow(2).mean()
        return loss

    def g_loss() -> Tensor:
        _, labels = minibatch()  # fake labels follow the data's class frequencies
        with autocast(device, amp):
            fake, extra = fakes(labels)
            out, aux = gan.discriminate(fake, labels)
            loss = generator_loss(c.loss, out.float())
            if aux is not None:
                loss = loss + F.cross_entropy(aux.float(), labels)
        return loss if extra is None else loss + extra

    average = None
    if c.g_ema:
        seed = int(torch.randint(2**62, (1,), generator=rng))
        average = GeneratorAverage(gan.generator, c.g_ema, seed)

    def refresh_average() -> None:
        """Batch-norm statistics of the averaged G, from fakes of its own stream."""
        assert average is not None
        stream = average.begin_statistics()
        with average.swapped_in(gan):
            for _ in range(EMA_BN_BATCHES):
                idx = torch.randint(len(real_all), (c.batch_size,), generator=stream)
                labels = None if labels_all is None else labels_all[idx].to(device)
                z = gan.sample_z(c.batch_size, generator=stream)
                with autocast(device, amp):
                    gan.train_forward(z, labels)

    def measure() -> dict[str, float]:
        assert monitor is not None
        if average is None:
            return monitor(gan)
        refresh_average()
        with average.swapped_in(gan):
            values = monitor(gan)
        gan.train()
        return values

    history = GanHistory(steps=c.steps, options=dataclasses.asdict(c))
    start = time.perf_counter()
    gan.train()
    bar = trange(c.steps, desc="gan", disable=not progress, leave=False)
    try:
        for step in bar:
            gan.begin_step(step, c.steps, step * c.batch_size * c.accumulate)
            d_total = 0.0
            for _ in range(c.d_steps):
                d_total += accumulated_update(opt_d, d_loss, c.accumulate)
            g_value = accumulated_update(opt_g, g_loss, c.accumulate)
            if average is not None:
                average.update(gan.generator)
            gan.end_step()
            history.d_loss.append(d_total / c.d_steps)
            history.g_loss.append(g_value)
            if (
                monitor is not None
                and c.fid_every
                and ((step + 1) % c.fid_every == 0 or step + 1 == c.steps)
            ):
                history.monitor.append({"step": step + 1, **measure()})
            bar.set_postfix(
                d=f"{history.d_loss[-1]:.3f}", g=f"{history.g_loss[-1]:.3f}", refresh=False
            )
        if average is not None:  # G ends with the averaged weights
            refresh_average()
            gan.generator.load_state_dict(average.network.state_dict())
    finally:
        gan.eval()
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


class GeneratorAverage:
    """The moving average of G for ``g_ema`` (see the module docstring): ``network`` is a
    frozen copy of G, ``update(g)`` moves its weights towards ``g``'s, ``swapped_in(gan)``
    puts it in the place of ``gan.generator`` for a while."""

    def __init__(self, generator: nn.Module, decay: float, seed: int) -> None:
        self.network = copy.deepcopy(generator).requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self.seed = seed

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        weight = 1 - self.current_decay()
        for mine, theirs in zip(self.network.parameters(), generator.parameters(), strict=True):
            mine.lerp_(theirs, weight)
        self.updates += 1

    def begin_statistics(self) -> torch.Generator:
        """Batch norms forget their statistics and average the next batches (in train mode)
        equally; returns the random stream for those batches, restarted."""
        self.network.train()
        for module in self.network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None
        return torch.Generator().manual_seed(self.seed)

    @contextlib.contextmanager
    def swapped_in(self, gan: GAN) -> Iterator[None]:
        live = gan.generator
        gan.generator = self.network
        try:
            with torch.no_grad():
                yield
        finally:
            gan.generator = live


def accumulated_update(
    optimizer: torch.optim.Optimizer, loss_fn: Callable[[], Tensor], accumulate: int
) -> float:
    """One optimizer step on gradients summed over ``accumulate`` calls of ``loss_fn``
    (each scaled by 1 / accumulate, so the step sees the mean); returns the mean loss."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for _ in range(accumulate):
        loss = loss_fn()
        (loss / accumulate if accumulate > 1 else loss).backward()
        total += loss.item()
    optimizer.step()
    return total / accumulate


def _check_inputs(gan: GAN, x: Tensor, y: Tensor | None) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != gan.out_shape:
        raise UserError(f"GAN expects images of shape {gan.out_shape}, got {tuple(x.shape[1:])}")
    if len(x) == 0:
        raise UserError("cannot train a GAN on an empty dataset")
    if gan.conditional:
        if y is None or len(y) != len(x):
            raise UserError("a conditional GAN needs one label per image")
        if y.min() < 0 or y.max() >= gan.num_classes:
            raise UserError(f"labels must lie in [0, {gan.num_classes})")


def record_translation_step(
    history: GanHistory,
    gan: nn.Module,
    step: int,
    config: GanTrainConfig,
    monitor: Monitor | None,
    bar: Any,
    cycle_errors: list[float],
) -> None:
    """After one step of a translator's loop (CycleGAN, StarGAN): the step's mean cycle
    error into ``history.series["cycle_error"]`` (``cycle_errors`` is emptied), the monitor
    every ``fid_every`` steps and at the last, and the progress bar's losses."""
    history.series.setdefault("cycle_error", []).append(sum(cycle_errors) / len(cycle_errors))
    cycle_errors.clear()
    if (
        monitor is not None
        and config.fid_every
        and ((step + 1) % config.fid_every == 0 or step + 1 == config.steps)
    ):
        history.monitor.append({"step": step + 1, **monitor(gan)})
    bar.set_postfix(
        d=f"{history.d_loss[-1]:.3f}",
        g=f"{history.g_loss[-1]:.3f}",
        cycle=f"{history.series['cycle_error'][-1]:.3f}",
        refresh=False,
    )
