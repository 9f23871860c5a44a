"""The CycleGAN family: the registered translator and its factory.

CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017 -- with the losses of its two
contemporaries as variants: DualGAN (Yi, Zhang, Tan & Gong, ICCV 2017) and DiscoGAN
(Kim, Cha, Kim, Lee & Kim, ICML 2017).

A translator, not a sampler: two generators ``G_AB`` and ``G_BA`` map images between a
domain A (the suite's data) and a domain B, and two discriminators ``D_A`` and ``D_B`` tell
real images of their domain from translated ones. ``gan.generator`` is an
``nn.ModuleDict`` with keys ``"ab"`` and ``"ba"``, ``gan.discriminator`` one with keys
``"a"`` and ``"b"``; there is no z (``nz = 0``) and no class conditioning.

The family lives in four more modules:

- ``translation_nets``: the ResNet generator and PatchGAN discriminator (architecture);
- ``translation_domains``: domain B (``domain``: ``"invert"``, ``"rotate"`` or a dataset
  name) and the unpaired split of the training images;
- ``cyclegan_training``: the variants (``variant``: ``cyclegan``, ``dualgan``,
  ``discogan``), their losses, optimizers and paper defaults, and the fit loop;
- ``image_pool``: the history of fakes the discriminators are fed from.

On the ``invert`` domain the identity loss contradicts the mapping sought (G_AB(b) should
be 1 - b, not b): set ``identity_weight = 0`` there. Cycle consistency alone accepts any
bijection: on 8x8 digits a strong cycle weight (10 or 30) often settles on one that
permutes the classes (label fidelity 0.1-0.4 on some seeds), while weight 2 kept the class
on every seed we tried (fidelity about 0.9).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..contract.configs import GanTrainConfig
from ..errors import UserError
from ..registry import GENERATORS
from ..utils import batch_slices
from .base import GAN, records_config
from .cyclegan_training import (
    VARIANT_SETTINGS,
    VARIANTS,
    Variant,
    fit_translator,
    variant_settings,
)
from .image_pool import ImagePool
from .train import GanHistory, Monitor
from .translation_domains import TRANSFORMS, DomainB, check_domain
from .translation_nets import (
    LEAK,
    MAX_WIDTH_MULTIPLIER,
    PatchDiscriminator,
    ResidualBlock,
    ResnetGenerator,
    discriminator_downsamplings,
    generator_downsamplings,
    init_weights,
)

# the module's public names before it was split keep working from here
__all__ = [
    "GRID_IMAGES",
    "LEAK",
    "MAX_WIDTH_MULTIPLIER",
    "TRANSFORMS",
    "VARIANTS",
    "CycleGAN",
    "ImagePool",
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "Variant",
    "cyclegan",
    "discriminator_downsamplings",
    "generator_downsamplings",
    "init_weights",
]

GRID_IMAGES = 8  # test images per row of the sample grid


class CycleGAN(GAN):
    """Two translators and two discriminators; see the module docstring."""

    def __init__(
        self,
        *,
        shape: tuple[int, int, int],
        num_classes: int,
        domain: str,
        variant: str,
        ngf: int,
        ndf: int,
        n_res: int,
        pool_size: int,
        cycle_weight: float,
        identity_weight: float,
        weight_clip: float,
    ) -> None:
        channels, side = shape[0], min(shape[1:])
        n_g, n_d = generator_downsamplings(side), discriminator_downsamplings(side)

        def translator() -> ResnetGenerator:
            return ResnetGenerator(channels=channels, ngf=ngf, n_down=n_g, n_res=n_res)

        def critic() -> PatchDiscriminator:
            return PatchDiscriminator(channels=channels, ndf=ndf, n_down=n_d)

        spec = VARIANTS[variant]
        super().__init__(
            nn.ModuleDict({"ab": translator(), "ba": translator()}),
            nn.ModuleDict({"a": critic(), "b": critic()}),
            nz=0,
            num_classes=num_classes,
            conditional=False,
            out_shape=shape,
            train_defaults=spec.train_defaults,
        )
        self.domain = domain
        self.variant = variant
        self.reconstruction = spec.reconstruction
        self.optimizer = spec.optimizer
        self.pool_size = pool_size
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight
        self.weight_clip = weight_clip
        self.domain_b_images = DomainB(domain, self.out_shape)  # not state
        self.apply(init_weights)

    # -- domain B (``translation_domains``) ----------------------------------------------
    @property
    def is_transform(self) -> bool:
        return self.domain_b_images.is_transform

    def attach_domain_b(self, train_images: Tensor, test_images: Tensor) -> None:
        """The B images of a dataset domain (kept as plain attributes, not in the state)."""
        self.domain_b_images.attach(train_images, test_images)

    def domain_b(self, x: Tensor, *, split: str) -> Tensor:
        """B images for the A images ``x``: T(x) for a transform, else as many attached
        ``split`` images, the first ones in order (cycled when there are fewer)."""
        return self.domain_b_images.counterparts(x, split=split)

    @property
    def translated_domains(self) -> tuple[str, ...]:
        return (self.domain,)

    def translate_to(self, x: Tensor, domain: str) -> Tensor:
        """``G_AB(x)``: the suite's images into the one domain B."""
        self._check_domain_name(domain)
        return self.translate(x, "ab")

    def domain_counterparts(self, x: Tensor, domain: str, *, split: str) -> Tensor:
        self._check_domain_name(domain)
        return self.domain_b(x, split=split)

    def is_transform_domain(self, domain: str) -> bool:
        self._check_domain_name(domain)
        return self.is_transform

    def attach_domain_images(self, domain: str, train_images: Tensor, test_images: Tensor) -> None:
        self._check_domain_name(domain)
        self.attach_domain_b(train_images, test_images)

    def _check_domain_name(self, domain: str) -> None:
        if domain != self.domain:
            raise ValueError(f"this cyclegan translates into {self.domain!r}, not {domain!r}")

    def _training_domains(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unpaired A and B training images in [0, 1]."""
        return self.domain_b_images.unpaired(x, rng)

    # -- translation -------------------------------------------------------------------
    def translate(self, x: Tensor, direction: str = "ab", batch_size: int = 256) -> Tensor:
        """Images in [0, 1] translated A -> B (``"ab"``) or B -> A (``"ba"``), on the CPU,
        in eval mode without gradients (mode restored after)."""
        if direction not in ("ab", "ba"):
            raise ValueError(f"direction must be 'ab' or 'ba', got {direction!r}")
        net = self.generator[direction]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = [
                    (net(x[s].float().to(self.device) * 2 - 1).cpu() + 1) / 2
                    for s in batch_slices(len(x), batch_size)
                ]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.out_shape)

    def sample(self, n: int, **kwargs: Any) -> Tensor:
        raise TypeError("cyclegan translates images and has no z to sample: use gan.translate(x)")

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        raise TypeError("cyclegan translates images and has no z to sample: use gan.translate(x)")

    # -- what metrics and grids look at --------------------------------------------------
    def metric_samples(
        self, x: Tensor, y: Tensor | None, *, seed: int
    ) -> tuple[Tensor, Tensor | None]:
        """``G_BA`` of the B counterparts of the real test images ``x``, with ``y`` as
        labels for a (class-preserving) transform domain, None for a dataset domain."""
        fakes = self.translate(self.domain_b(x, split="test"), "ba")
        labels = y.long().cpu() if (self.is_transform and y is not None) else None
        return fakes, labels

    def grid_images(
        self, x: Tensor | None, *, per_class: int, n: int, seed: int
    ) -> tuple[Tensor, int]:
        """Rows: real A, G_AB(A), G_BA(G_AB(A)), real B, G_BA(B), for 8 test images."""
        if x is None:
            raise ValueError("cyclegan's grid translates real test images: pass x")
        a = x[:GRID_IMAGES].float()
        b = self.domain_b(a, split="test")
        fake_b = self.translate(a, "ab")
        rows = [a, fake_b, self.translate(fake_b, "ba"), b, self.translate(b, "ba")]
        return torch.cat(rows), len(a)

    # -- training (``cyclegan_training``) ------------------------------------------------
    def fit(
        self,
        x: Tensor,
        y: Tensor | None,
        *,
        config: GanTrainConfig,
        rng: torch.Generator,
        device: str | torch.device,
        progress: bool,
        amp: bool,
        monitor: Monitor | None,
    ) -> GanHistory:
        """Train on the images ``x`` (labels unused); called by ``gans.train.train_gan``.
        See ``cyclegan_training.fit_translator``."""
        return fit_translator(
            self,
            x,
            config=config,
            rng=rng,
            device=device,
            progress=progress,
            amp=amp,
            monitor=monitor,
        )


# -- the registered factory -----------------------------------------------------------


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """The recorded arguments with the settings the translator was built with."""
    settings = variant_settings(config["variant"], **{k: config[k] for k in VARIANT_SETTINGS})
    return {**config, **settings}


@GENERATORS.register("cyclegan")
@records_config(normalize=_resolved)
def cyclegan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    domain: str = "invert",
    variant: str = "cyclegan",
    ngf: int = 64,
    ndf: int = 64,
    n_res: int = 6,
    pool_size: int | None = None,
    cycle_weight: float | None = None,
    identity_weight: float | None = None,
    weight_clip: float | None = None,
) -> CycleGAN:
    """An unpaired translator between the suite's images (A) and ``domain`` (B).

    ``variant`` picks the losses (``cyclegan``, ``dualgan`` or ``discogan``); the weights
    left as None take that variant's paper values (cyclegan: pool 50, cycle weight 10,
    identity weight 0.5 (times the cycle weight); dualgan: cycle weight 100, weight clip
    0.01; discogan: cycle weight 1). See the module docstring.
    """
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3:
        raise UserError(f"cyclegan needs a (C, H, W) shape, got {shape}")
    if variant not in VARIANTS:
        raise UserError(
            f"unknown cyclegan variant {variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    side = min(shape[1:])
    factor = 2 ** generator_downsamplings(side)
    if side < 8 or shape[1] % factor or shape[2] % factor:
        raise UserError(
            f"cyclegan needs sides of at least 8 that divide by {factor}, got {shape[1]}x{shape[2]}"
        )
    if min(ngf, ndf, num_classes) < 1 or n_res < 0:
        raise UserError("ngf, ndf and num_classes must be positive and n_res >= 0")
    check_domain(domain, shape)
    settings = variant_settings(
        variant,
        pool_size=pool_size,
        cycle_weight=cycle_weight,
        identity_weight=identity_weight,
        weight_clip=weight_clip,
    )
    if min(settings.values()) < 0:
        raise UserError(f"cyclegan weights and pool size must be >= 0, got {settings}")
    return CycleGAN(
        shape=shape,
        num_classes=num_classes,
        domain=domain,
        variant=variant,
        ngf=ngf,
        ndf=ndf,
        n_res=n_res,
        **settings,
    )


def _planned_domains(params: dict[str, Any]) -> tuple[str, ...]:
    """The one domain B a suite entry asks for (the factory's default when not set)."""
    return (str(params.get("domain", inspect.signature(cyclegan).parameters["domain"].default)),)


# the runner plans domain-shift rows (accuracy on G_AB(test set)) for translating families
cyclegan.translates_domains = True  # type: ignore[attr-defined]
cyclegan.translation_domains = _planned_domains  # type: ignore[attr-defined]
