"""The StarGAN family: one translator for many domains, its registered factory.

StarGAN: Choi, Choi, Kim, Ha, Kim & Choo, "StarGAN: Unified Generative Adversarial Networks
for Multi-Domain Image-to-Image Translation", CVPR 2018 (https://arxiv.org/abs/1711.09020).

Where CycleGAN learns one pair of generators per pair of domains, StarGAN learns a single
generator G(x, c) that translates an image into whichever domain the label c names, and a
single discriminator with two heads: D_src tells real images from translations and D_cls
tells which domain a real image comes from. The domains here are the suite's images
(domain 0, ``"original"``) and ``domains``: transforms of them or other datasets, as
CycleGAN's (``translation_domains``: ``invert``, ``rotate``, ``hflip``, a dataset name).
Training is unpaired: each training image belongs to one domain (the transform that made
it), so no image is ever shown beside its own translation.

The family lives in three modules: ``stargan_nets`` (the networks), ``stargan_training``
(the losses and the training loop) and this one (the translator and the factory). There is
no z (``nz = 0``) and no class conditioning; ``gan.generator`` is G, ``gan.discriminator``
returns D_src's patch map and D_cls's logits.

Metrics: ``metric_samples`` translates the true counterparts of the test images in each
domain back to the suite's domain (labels kept for transforms), as CycleGAN's G_BA does, so
FID and label fidelity compare the two families on the same footing; the sample grid holds
the test images and one row of translations per domain.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from ..contract.configs import GanTrainConfig
from ..errors import UserError
from ..registry import GENERATORS
from ..utils import batch_slices
from .base import GAN, records_config
from .stargan_nets import StarDiscriminator, StarGenerator, discriminator_downsamplings
from .stargan_training import PAPER_TRAINING, fit_stargan
from .train import GanHistory, Monitor
from .translation_domains import DomainB, check_domain, unpaired_domains
from .translation_nets import generator_downsamplings

SOURCE = "original"  # the name of domain 0, the suite's own images
GRID_IMAGES = 8  # test images per row of the sample grid


class StarGAN(GAN):
    """One conditional translator and one two-headed critic; see the module docstring."""

    def __init__(
        self,
        *,
        shape: tuple[int, int, int],
        num_classes: int,
        domains: Sequence[str],
        ngf: int,
        ndf: int,
        n_res: int,
        cls_weight: float,
        rec_weight: float,
        g_down: int | None = None,
    ) -> None:
        side, n_domains = min(shape[1:]), 1 + len(domains)
        super().__init__(
            StarGenerator(
                channels=shape[0],
                n_domains=n_domains,
                ngf=ngf,
                n_down=generator_downsamplings(side) if g_down is None else g_down,
                n_res=n_res,
            ),
            StarDiscriminator(
                shape=shape, n_domains=n_domains, ndf=ndf, n_down=discriminator_downsamplings(side)
            ),
            nz=0,
            num_classes=num_classes,
            conditional=False,
            out_shape=shape,
            train_defaults=PAPER_TRAINING,
        )
        self.domain_names = tuple(domains)
        self.n_domains = n_domains
        self.cls_weight = cls_weight
        self.rec_weight = rec_weight
        self._domains = {d: DomainB(d, self.out_shape) for d in domains}  # not state

    # -- domains -------------------------------------------------------------------------
    @property
    def translated_domains(self) -> tuple[str, ...]:
        return self.domain_names

    def domain_index(self, domain: str) -> int:
        """The label of ``domain``: 0 for the suite's images, i for ``domains[i - 1]``."""
        if domain == SOURCE:
            return 0
        if domain not in self._domains:
            raise ValueError(f"unknown domain {domain!r}; this stargan has {self.domain_names}")
        return 1 + self.domain_names.index(domain)

    def onehot(self, labels: Tensor) -> Tensor:
        """Domain labels as one-hot rows, the condition G takes."""
        return F.one_hot(labels.long(), self.n_domains).float()

    def domain_counterparts(self, x: Tensor, domain: str, *, split: str) -> Tensor:
        return self._domain(domain).counterparts(x, split=split)

    def is_transform_domain(self, domain: str) -> bool:
        return self._domain(domain).is_transform

    def attach_domain_images(self, domain: str, train_images: Tensor, test_images: Tensor) -> None:
        self._domain(domain).attach(train_images, test_images)

    def _domain(self, domain: str) -> DomainB:
        self.domain_index(domain)  # a ValueError for a name we do not know
        return self._domains[domain]

    def training_domains(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unpaired training images in [0, 1] and their domain labels."""
        return unpaired_domains(x, list(self._domains.values()), rng)

    # -- translation ---------------------------------------------------------------------
    def translate(self, x: Tensor, domain: str, batch_size: int = 256) -> Tensor:
        """Images in [0, 1] translated into ``domain`` (``"original"``: the suite's), on the
        CPU, in eval mode without gradients (mode restored after)."""
        index = self.domain_index(domain)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = []
                for s in batch_slices(len(x), batch_size):
                    batch = x[s].float().to(self.device) * 2 - 1
                    target = self.onehot(torch.full((len(batch),), index, device=self.device))
                    out.append((self.generator(batch, target).cpu() + 1) / 2)
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.out_shape)

    def translate_to(self, x: Tensor, domain: str) -> Tensor:
        if domain == SOURCE:
            raise ValueError("translate_to names one of the other domains")
        return self.translate(x, domain)

    def sample(self, n: int, **kwargs: Any) -> Tensor:
        raise TypeError("stargan translates images and has no z to sample: use gan.translate(x, d)")

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        raise TypeError("stargan translates images and has no z to sample: use gan.translate(x, d)")

    # -- what metrics and grids look at --------------------------------------------------
    def metric_samples(
        self, x: Tensor, y: Tensor | None, *, seed: int, domain: str | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The counterparts of the real test images ``x`` in ``domain`` translated back to
        the suite's domain; with no ``domain``, image j comes from domain j mod K. Labels
        ``y`` are kept when every domain used is a (class-preserving) transform."""
        used = [domain] if domain is not None else list(self.domain_names)
        fakes = torch.empty(len(x), *self.out_shape)
        for i, name in enumerate(used):
            idx = torch.arange(i, len(x), len(used))
            back = self.domain_counterparts(x[idx].float(), name, split="test")
            fakes[idx] = self.translate(back, SOURCE)
        keep = y is not None and all(self.is_transform_domain(d) for d in used)
        return fakes, (y.long().cpu() if keep else None)

    def grid_images(
        self, x: Tensor | None, *, per_class: int, n: int, seed: int
    ) -> tuple[Tensor, int]:
        """Rows: 8 real test images, then their translation into each domain in turn."""
        if x is None:
            raise ValueError("stargan's grid translates real test images: pass x")
        a = x[:GRID_IMAGES].float()
        return torch.cat([a, *(self.translate(a, d) for d in self.domain_names)]), len(a)

    # -- training (``stargan_training``) -------------------------------------------------
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
        """Train on the images ``x`` (class labels unused); called by ``train_gan``."""
        return fit_stargan(
            self, x, config=config, rng=rng, device=device, progress=progress, amp=amp,
            monitor=monitor,
        )  # fmt: skip


# -- the registered factory -----------------------------------------------------------

DEFAULT_DOMAINS = ("invert", "rotate", "hflip")


def _as_lists(config: dict[str, Any]) -> dict[str, Any]:
    """The domains as a list of names and the weights as floats (as the GAN was built)."""
    weights = {k: float(config[k]) for k in ("cls_weight", "rec_weight")}
    domains = config["domains"]
    names = [domains] if isinstance(domains, str) else [str(d) for d in domains]
    return {**config, "domains": names, **weights}


@GENERATORS.register("stargan")
@records_config(normalize=_as_lists)
def stargan(
    *,
    in_shape: Sequence[int],
    num_classes: int = 10,
    domains: Sequence[str] = DEFAULT_DOMAINS,
    ngf: int = 64,
    ndf: int = 64,
    n_res: int = 6,
    cls_weight: float = 1.0,
    rec_weight: float = 10.0,
    g_down: int | None = None,
) -> StarGAN:
    """One translator from the suite's images into each of ``domains`` (Choi et al. 2018).

    Paper defaults (128x128 CelebA): ``ngf`` = ``ndf`` = 64, six residual blocks, domain
    classification weight lambda_cls = 1 (``cls_weight``), reconstruction weight
    lambda_rec = 10 (``rec_weight``); ``train_defaults``: WGAN-GP with gradient penalty
    weight 10, five critic updates per generator update (n_critic), Adam lr 1e-4 for both
    nets, betas (0.5, 0.999), batches of 16. Not copied: the paper trains 200,000
    iterations and decays the learning rate linearly to 0 over the last 100,000; we keep it
    constant over the suite's few thousand steps. For small images the nets downsample
    less (``stargan_nets``); on 8x8 digits within a CPU budget of minutes, narrower nets
    (``ngf`` = ``ndf`` = 32, two residual blocks), a larger learning rate (1e-3) and fewer
    critic updates per step train it in time (see suites/digits-gans.toml). ``g_down``
    sets how many times G halves the image (None: by image size, as ``stargan_nets`` says);
    on 8x8 digits 0 keeps the digit through blur where one halving learned a permutation of
    the classes (the suite's comment has the numbers).
    """
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3:
        raise UserError(f"stargan needs a (C, H, W) shape, got {shape}")
    names = [domains] if isinstance(domains, str) else list(domains)
    if not names or len(set(names)) != len(names) or SOURCE in names:
        raise UserError(
            f"stargan needs a list of distinct domains other than {SOURCE!r}, got {domains!r}"
        )
    for name in names:
        check_domain(name, shape)
    if g_down is not None and not (type(g_down) is int and g_down >= 0):
        raise UserError(f"stargan's g_down is a number of downsamplings >= 0, got {g_down!r}")
    factor = 2 ** (generator_downsamplings(min(shape[1:])) if g_down is None else g_down)
    if min(shape[1:]) < 8 or shape[1] % factor or shape[2] % factor:
        raise UserError(
            f"stargan needs sides of at least 8 that divide by {factor}, got {shape[1]}x{shape[2]}"
        )
    if min(ngf, ndf, num_classes) < 1 or n_res < 0 or min(cls_weight, rec_weight) < 0:
        raise UserError("ngf, ndf and num_classes must be positive, n_res and weights >= 0")
    return StarGAN(
        shape=shape,
        num_classes=num_classes,
        domains=names,
        ngf=ngf,
        ndf=ndf,
        n_res=n_res,
        cls_weight=float(cls_weight),
        rec_weight=float(rec_weight),
        g_down=g_down,
    )


def _planned_domains(params: dict[str, Any]) -> tuple[str, ...]:
    """The domains a suite entry asks for (the factory's default when not set)."""
    default = inspect.signature(stargan).parameters["domains"].default
    domains = params.get("domains", default)
    return (domains,) if isinstance(domains, str) else tuple(str(d) for d in domains)


# the runner plans domain-shift rows, one per domain, for translating families
stargan.translates_domains = True  # type: ignore[attr-defined]
stargan.translation_domains = _planned_domains  # type: ignore[attr-defined]
