"""The GAN container every generator family returns: a generator, a discriminator, sampling,
and the hooks through which a family adapts the shared training loop (``gans.train``).

Hooks a family may override (the defaults suit a plain GAN):

- ``train_forward(z, labels)``: fakes at the *training* resolution in [-1, 1] and an extra
  generator loss term (StackGAN's conditioning-augmentation KL) or None;
- ``discriminate(x, labels)``: D's logits and auxiliary class logits (ACGAN) or None;
- ``prepare_real(x)``: a real minibatch in [-1, 1] brought to the training resolution
  (ProGAN's current resolution and fade-in);
- ``begin_step(step, steps, images_seen)``: schedules (ProGAN's growth, StackGAN's stages);
- ``end_step()``: after each generator update (BigGAN's moving average of G);
- ``generate(z, labels)``: differentiable full-resolution samples in [0, 1];
- ``metric_samples`` and ``grid_images``: what the metrics and the sample grid look at
  (CycleGAN translates test images rather than sampling z);
- ``fit``: a family with its own training scheme (CycleGAN) defines it and ``train_gan``
  hands over to it.

A translator (an image-to-image family) names the domains it translates the suite's images
into in ``translated_domains`` (empty for a sampler) and defines ``translate_to(x, domain)``,
``domain_counterparts(x, domain, split=...)`` (the real images of that domain: the true
transform of ``x``, or attached images of another dataset), ``is_transform_domain(domain)``
and ``attach_domain_images(domain, train, test)``; its registered factory declares
``translates_domains = True`` and ``translation_domains(params)``, the domains a suite
entry asks for, so the runner can plan per domain without building it.

A registered factory is decorated with ``records_config``, which stores the arguments it
was called with (defaults included) as ``gan.config``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch
from torch import Tensor, nn

from ..utils import batch_slices, torch_generator

Factory = TypeVar("Factory", bound=Callable[..., "GAN"])
ConfigNormalizer = Callable[[dict[str, Any]], dict[str, Any]]


class GAN(nn.Module):
    """A generator/discriminator pair plus what a caller needs to sample from it.

    ``generator(z, labels)`` returns images in [-1, 1] (tanh) and
    ``discriminator(x, labels)`` takes images in [-1, 1] and returns one logit per
    image; ``labels`` is ``None`` for an unconditional GAN. ``config`` holds the
    keyword arguments of the registered factory that built this GAN, so
    ``GENERATORS.create(name, **gan.config)`` rebuilds it (e.g. to load a checkpoint); the
    factory's ``records_config`` decorator sets it, a GAN built otherwise may pass it.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        nz: int,
        num_classes: int,
        conditional: bool,
        out_shape: tuple[int, int, int],
        config: dict[str, Any] | None = None,
        train_defaults: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.nz = int(nz)
        self.num_classes = int(num_classes)
        self.conditional = bool(conditional)
        self.out_shape = tuple(int(s) for s in out_shape)
        self.config: dict[str, Any] = dict(config or {})
        # the family's paper defaults for ``train_gan`` options (loss, d_steps, lr, ...)
        self.train_defaults: dict[str, Any] = dict(train_defaults or {})

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sample_z(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latent codes from the prior N(0, I), drawn on the CPU, on the GAN's device."""
        return torch.randn(n, self.nz, generator=generator).to(self.device)

    def default_labels(self, n: int) -> Tensor:
        """A balanced cycle 0, 1, ..., K-1, 0, 1, ... of length ``n``."""
        return torch.arange(n) % self.num_classes

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Differentiable images in [0, 1] for latent codes ``z`` (mode left as it is)."""
        labels = self._check_labels(labels, len(z))
        return (self.generator(z, labels) + 1) / 2

    # -- training hooks (see the module docstring) ---------------------------
    def train_forward(self, z: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return self.generator(z, labels), None

    def discriminate(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return self.discriminator(x, labels), None

    def prepare_real(self, x: Tensor) -> Tensor:
        return x

    def begin_step(self, step: int, steps: int, images_seen: int) -> None:
        """Called before training step ``step`` (0-based) of ``steps``."""

    def end_step(self) -> None:
        """Called after each generator update."""

    # -- translators (see the module docstring) -----------------------------------
    @property
    def translated_domains(self) -> tuple[str, ...]:
        """The domains this GAN translates the suite's images into (none: a sampler)."""
        return ()

    def translate_to(self, x: Tensor, domain: str) -> Tensor:
        """Images ``x`` in [0, 1] translated into ``domain``, in [0, 1], on the CPU."""
        raise TypeError(f"{type(self).__name__} samples from z and translates no images")

    def domain_counterparts(self, x: Tensor, domain: str, *, split: str) -> Tensor:
        """Real images of ``domain`` for the images ``x`` (``split``: "train" or "test")."""
        raise TypeError(f"{type(self).__name__} has no domains")

    def is_transform_domain(self, domain: str) -> bool:
        """Whether ``domain`` is a transform of the suite's images (else a dataset)."""
        raise TypeError(f"{type(self).__name__} has no domains")

    def attach_domain_images(self, domain: str, train_images: Tensor, test_images: Tensor) -> None:
        """The images of a dataset ``domain`` (kept as plain attributes, not in the state)."""
        raise TypeError(f"{type(self).__name__} has no domains")

    # -- what metrics and grids look at -----------------------------------------
    def metric_samples(
        self, x: Tensor, y: Tensor | None, *, seed: int
    ) -> tuple[Tensor, Tensor | None]:
        """Generated images to compare with the real images ``x`` (and the labels they were
        generated for, or None): as many samples, with ``y``'s classes when conditional."""
        labels = None
        if self.conditional:
            labels = self.default_labels(len(x)) if y is None else y.long().cpu()
        return self.sample(len(x), labels=labels, seed=seed), labels

    def grid_images(
        self, x: Tensor | None, *, per_class: int, n: int, seed: int
    ) -> tuple[Tensor, int]:
        """Images for the sample grid and the number per row (``x``: real test images)."""
        if self.conditional:
            labels = torch.arange(self.num_classes).repeat_interleave(per_class)
            return self.sample(len(labels), labels=labels, seed=seed), per_class
        return self.sample(n, seed=seed), math.ceil(math.sqrt(n))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: Tensor | None = None,
        seed: int | None = None,
        batch_size: int = 512,
    ) -> Tensor:
        """``n`` images in [0, 1] on the CPU, generated in eval mode (mode restored after).

        A conditional GAN draws ``labels`` (default: a balanced cycle over the
        classes); ``seed`` makes the draw reproducible without touching the global
        random state.
        """
        if self.conditional and labels is None:
            labels = self.default_labels(n)
        labels = self._check_labels(labels, n)
        rng = torch_generator(seed) if seed is not None else None
        was_training = self.training
        self.eval()
        try:
            out = [
                self.generate(
                    self.sample_z(s.stop - s.start, generator=rng),
                    None if labels is None else labels[s],
                ).cpu()
                for s in batch_slices(n, batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.out_shape)

    def _check_labels(self, labels: Tensor | None, n: int) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ValueError("an unconditional GAN takes no labels")
            return None
        if labels is None:
            raise ValueError("a conditional GAN needs labels")
        labels = torch.as_tensor(labels, dtype=torch.long).to(self.device)
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {tuple(labels.shape)}")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")
        return labels


@overload
def records_config(factory: Factory, /) -> Factory: ...


@overload
def records_config(
    *, normalize: ConfigNormalizer | None = None
) -> Callable[[Factory], Factory]: ...


def records_config(
    factory: Factory | None = None, /, *, normalize: ConfigNormalizer | None = None
) -> Factory | Callable[[Factory], Factory]:
    """Decorator for a registered generator factory (``@records_config`` or
    ``@records_config(normalize=...)``): the GAN it returns gets as ``config`` the arguments
    of the call, bound to the factory's signature with the defaults filled in, so that
    ``GENERATORS.create(name, **gan.config)`` rebuilds the same GAN and no argument can be
    left out.

    ``in_shape`` is stored as a tuple of ints. ``normalize`` maps the bound arguments to the
    values the factory actually built with (e.g. a variant's paper values for arguments
    left as None), so the config reads the same however the GAN was asked for; it must not
    change what the factory builds from them. The call itself is passed on unchanged.
    """

    def decorate(factory: Factory) -> Factory:
        signature = inspect.signature(factory)
        kinds = {p.kind for p in signature.parameters.values()}
        if inspect.Parameter.VAR_POSITIONAL in kinds:
            raise TypeError(f"{factory.__name__}: a recorded factory takes no *args")

        @functools.wraps(factory)
        def build(*args: Any, **kwargs: Any) -> GAN:
            gan = factory(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            config: dict[str, Any] = {}
            for name, value in bound.arguments.items():
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    config.update(value)
                else:
                    config[name] = value
            if "in_shape" in config:
                config["in_shape"] = tuple(int(s) for s in config["in_shape"])
            gan.config = normalize(config) if normalize is not None else config
            return gan

        return build  # type: ignore[return-value]

    return decorate if factory is None else decorate(factory)
