"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017 -- with the losses of its two
contemporaries as variants: DualGAN (Yi, Zhang, Tan & Gong, ICCV 2017) and DiscoGAN
(Kim, Cha, Kim, Lee & Kim, ICML 2017).

A translator, not a sampler: two generators ``G_AB`` and ``G_BA`` map images between a
domain A (the suite's data) and a domain B, and two discriminators ``D_A`` and ``D_B`` tell
real images of their domain from translated ones. ``gan.generator`` is an
``nn.ModuleDict`` with keys ``"ab"`` and ``"ba"``, ``gan.discriminator`` one with keys
``"a"`` and ``"b"``; there is no z (``nz = 0``) and no class conditioning.

Architecture (paper, Appendix 7.2):

- generator (Johnson et al. 2016): reflection padding and a 7x7 convolution to ``ngf``
  channels, stride-2 3x3 convolutions doubling the width, ``n_res`` residual blocks
  (two 3x3 convolutions each), stride-2 transposed convolutions back up, a 7x7
  convolution to the image channels and tanh; instance norm and ReLU after every inner
  convolution. The paper downsamples twice with 6 blocks for 128x128 and 9 for 256x256;
  we downsample once for sides under 16 (8x8 digits: 8 -> 4) and twice otherwise
  (28 -> 7, 32 -> 8);
- discriminator: a PatchGAN of 4x4 convolutions, LeakyReLU(0.2), instance norm except on
  the first layer, widths ``ndf * 2^i`` (capped at 8 ndf), ending in a map of patch
  logits. The paper's 70x70 PatchGAN has three stride-2 layers; we use one for sides
  under 16, two under 64 (receptive fields 16 and 34 pixels), three from 64 up;
- weights from N(0, 0.02), biases 0.

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
  weight 2 and lr 5e-4 train well there). Here the objective is the ``"wgan_gp"`` loss with ``gp_weight = 0`` (a positive
  ``gp_weight`` adds the gradient penalty on top of the clipping);
- ``discogan``: the standard GAN loss (binary cross-entropy, ``loss = "nonsaturating"``),
  a squared-error (L2 / MSE) reconstruction loss with weight 1 (the paper's
  L_G = L_GAN + L_CONST for each direction), no identity loss and no pool, Adam lr 2e-4,
  betas (0.5, 0.999).

The training loss can be overridden with the suite's ``train = {loss = ...}``; the
reconstruction distance and optimizer stay the variant's.

Domains (``domain``): ``"invert"`` (B = 1 - A) or ``"rotate"`` (B = A rotated 90 degrees
counter-clockwise), or the name of another dataset of the same image shape (e.g.
``"fashion_mnist"`` for MNIST), whose images the runner attaches with
``gan.attach_domain_b(train, test)``. For a transform, training is unpaired: the training
images are split by a seeded permutation into two disjoint halves, A = the first half and
B = T(second half), so no pair (a, T(a)) is ever shown. Metrics look at ``G_BA`` applied to
the B counterparts of the real test images (labels kept for the class-preserving
transforms, so label fidelity asks whether the class survives translation).

On the ``invert`` domain the identity loss contradicts the mapping sought (G_AB(b) should
be 1 - b, not b): set ``identity_weight = 0`` there. Cycle consistency alone accepts any
bijection: on 8x8 digits a strong cycle weight (10 or 30) often settles on one that
permutes the classes (label fidelity 0.1-0.4 on some seeds), while weight 2 kept the class
on every seed we tried (fidelity about 0.9).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import trange

from ..errors import UserError
from ..registry import DATASETS, GENERATORS
from ..utils import batch_slices
from .base import GAN
from .losses import discriminator_loss, generator_loss, gradient_penalty
from .train import GanHistory, GanTrainConfig, Monitor, accumulated_update, autocast

LEAK = 0.2
MAX_WIDTH_MULTIPLIER = 8
GRID_IMAGES = 8  # test images per row of the sample grid

TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "invert": lambda x: 1 - x,
    "rotate": lambda x: torch.rot90(x, 1, dims=(2, 3)),  # counter-clockwise
}


# -- history of generated images ------------------------------------------------------


class ImagePool:
    """The latest ``size`` generated images (Shrivastava et al. 2017; CycleGAN Sec. 4).

    ``query(fakes, rng)`` returns what D sees instead of ``fakes``: while the pool is
    filling, each fake goes in and comes back; once full, each fake is swapped, with
    probability 1/2, for a random stored one (which it replaces). ``size = 0`` passes
    fakes through. The coins and slots come from ``rng``.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0
        self.images: Tensor | None = None

    def __len__(self) -> int:
        return self.count

    def query(self, fakes: Tensor, rng: torch.Generator) -> Tensor:
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        if self.images is None:
            self.images = fakes.new_empty(self.size, *fakes.shape[1:])
        coins = torch.rand(len(fakes), generator=rng).tolist()
        slots = torch.randint(self.size, (len(fakes),), generator=rng).tolist()
        out = fakes.clone()
        for i, (coin, slot) in enumerate(zip(coins, slots)):
            if self.count < self.size:
                self.images[self.count] = fakes[i]
                self.count += 1
            elif coin < 0.5:
                out[i] = self.images[slot]
                self.images[slot] = fakes[i]
        return out


# -- networks ---------------------------------------------------------------------------


def _norm(width: int) -> nn.Module:
    return nn.InstanceNorm2d(width)  # no affine parameters, no running statistics (paper's code)


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            _norm(width),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            _norm(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image in [-1, 1] -> image in [-1, 1] of the same shape."""

    def __init__(self, *, channels: int, ngf: int, n_down: int, n_res: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7, bias=False),
            _norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_down):
            w = ngf * 2**i
            layers += [nn.Conv2d(w, 2 * w, 3, 2, 1, bias=False), _norm(2 * w), nn.ReLU(True)]
        layers += [ResidualBlock(ngf * 2**n_down) for _ in range(n_res)]
        for i in reversed(range(n_down)):
            w = ngf * 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(w, w // 2, 3, 2, 1, output_padding=1, bias=False),
                _norm(w // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Image in [-1, 1] -> a map of patch logits, shape (N, 1, h, w)."""

    def __init__(self, *, channels: int, ndf: int, n_down: int) -> None:
        super().__init__()
        widths = [ndf * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(n_down + 1)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(LEAK)]
        for i in range(1, n_down + 1):
            stride = 2 if i < n_down else 1  # the last hidden layer keeps the resolution
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=False),
                _norm(widths[i]),
                nn.LeakyReLU(LEAK),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def init_weights(module: nn.Module) -> None:
    """Convolution weights N(0, 0.02), biases 0 (the paper's code)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def generator_downsamplings(side: int) -> int:
    return 1 if side < 16 else 2


def discriminator_downsamplings(side: int) -> int:
    return 1 if side < 16 else 2 if side < 64 else 3


# -- variants ---------------------------------------------------------------------------


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


def _reconstruction_error(kind: str, x: Tensor, target: Tensor) -> Tensor:
    diff = (x - target).float()
    return diff.abs().mean() if kind == "l1" else diff.pow(2).mean()


# -- the translator ---------------------------------------------------------------------


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
            config=dict(
                in_shape=shape,
                num_classes=num_classes,
                domain=domain,
                variant=variant,
                ngf=ngf,
                ndf=ndf,
                n_res=n_res,
                pool_size=pool_size,
                cycle_weight=cycle_weight,
                identity_weight=identity_weight,
                weight_clip=weight_clip,
            ),
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
        self._domain_b: dict[str, Tensor] | None = None  # attached images, not state
        self.apply(init_weights)

    # -- domain B ----------------------------------------------------------------------
    @property
    def is_transform(self) -> bool:
        return self.domain in TRANSFORMS

    def attach_domain_b(self, train_images: Tensor, test_images: Tensor) -> None:
        """The B images of a dataset domain (kept as plain attributes, not in the state)."""
        if self.is_transform:
            raise UserError(f"cyclegan domain {self.domain!r} is a transform; no images to attach")
        for images in (train_images, test_images):
            if images.ndim != 4 or tuple(images.shape[1:]) != self.out_shape or not len(images):
                raise UserError(
                    f"domain {self.domain!r} needs images of shape {self.out_shape}, "
                    f"got {tuple(images.shape)}"
                )
        self._domain_b = {"train": train_images.float(), "test": test_images.float()}

    def domain_b(self, x: Tensor, *, split: str) -> Tensor:
        """B images for the A images ``x``: T(x) for a transform, else as many attached
        ``split`` images, the first ones in order (cycled when there are fewer)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if self.is_transform:
            return TRANSFORMS[self.domain](x)
        images = self._attached(split)
        return images[torch.arange(len(x)) % len(images)]

    def _attached(self, split: str) -> Tensor:
        if self._domain_b is None:
            raise UserError(
                f"cyclegan domain {self.domain!r} is a dataset: its images must be attached "
                "with gan.attach_domain_b(train_images, test_images) first"
            )
        return self._domain_b[split]

    def _training_domains(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unpaired A and B training images in [0, 1]."""
        if not self.is_transform:
            return x, self._attached("train")
        if len(x) < 2:
            raise UserError("cyclegan needs at least 2 training images to split into A and B")
        order = torch.randperm(len(x), generator=rng)
        half = len(x) // 2
        return x[order[:half]], TRANSFORMS[self.domain](x[order[half:]])

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

    # -- training ----------------------------------------------------------------------
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

        Each step makes ``d_steps`` updates of both discriminators (on fresh minibatches,
        fakes through the history pools) and one update of both generators. ``history``
        holds D_A + D_B, the total generator objective and ``series["cycle_error"]``: the
        mean L1 distance, in [0, 1] units, of A -> B -> A and B -> A -> B to the input.
        """
        c = config
        device = torch.device(device)
        domain_a, domain_b = (d.float() * 2 - 1 for d in self._training_domains(x, rng))
        pools = {"a": ImagePool(self.pool_size), "b": ImagePool(self.pool_size)}
        opt_g = self._optimizer(self.generator.parameters(), c.lr, c)
        opt_d = self._optimizer(self.discriminator.parameters(), c.d_lr or c.lr, c)
        cycle_errors: list[float] = []

        def minibatch() -> tuple[Tensor, Tensor]:
            ia = torch.randint(len(domain_a), (c.batch_size,), generator=rng)
            ib = torch.randint(len(domain_b), (c.batch_size,), generator=rng)
            return domain_a[ia].to(device), domain_b[ib].to(device)

        def d_loss() -> Tensor:
            a, b = minibatch()
            with torch.no_grad(), autocast(device, amp):
                fake_b, fake_a = self.generator["ab"](a), self.generator["ba"](b)
            fake_a, fake_b = pools["a"].query(fake_a, rng), pools["b"].query(fake_b, rng)
            return self._critic_loss("a", a, fake_a.float(), c, rng, amp) + self._critic_loss(
                "b", b, fake_b.float(), c, rng, amp
            )

        def g_loss() -> Tensor:
            loss, cycle_error = self._generator_objective(*minibatch(), c.loss, amp)
            cycle_errors.append(cycle_error)
            return loss

        history = GanHistory(steps=c.steps, options=self._options(c))
        start = time.perf_counter()
        self.train()
        bar = trange(c.steps, desc=self.variant, disable=not progress, leave=False)
        try:
            for step in bar:
                d_total = 0.0
                for _ in range(c.d_steps):
                    d_total += accumulated_update(opt_d, d_loss, c.accumulate)
                    self._clip_critics()
                history.d_loss.append(d_total / c.d_steps)
                history.g_loss.append(accumulated_update(opt_g, g_loss, c.accumulate))
                history.series.setdefault("cycle_error", []).append(
                    sum(cycle_errors) / len(cycle_errors)
                )
                cycle_errors.clear()
                if (
                    monitor is not None
                    and c.fid_every
                    and ((step + 1) % c.fid_every == 0 or step + 1 == c.steps)
                ):
                    history.monitor.append({"step": step + 1, **monitor(self)})
                bar.set_postfix(
                    d=f"{history.d_loss[-1]:.3f}",
                    g=f"{history.g_loss[-1]:.3f}",
                    cycle=f"{history.series['cycle_error'][-1]:.3f}",
                    refresh=False,
                )
        finally:
            self.eval()
            bar.close()
        history.seconds = time.perf_counter() - start
        return history

    def _optimizer(self, params, lr: float, c: GanTrainConfig) -> torch.optim.Optimizer:
        if self.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=(c.beta1, c.beta2))

    def _options(self, c: GanTrainConfig) -> dict[str, Any]:
        return {
            **dataclasses.asdict(c),
            "variant": self.variant,
            "domain": self.domain,
            "reconstruction": self.reconstruction,
            "optimizer": self.optimizer,
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "weight_clip": self.weight_clip,
        }

    def _critic_loss(
        self,
        side: str,
        real: Tensor,
        fake: Tensor,
        c: GanTrainConfig,
        rng: torch.Generator,
        amp: bool,
    ) -> Tensor:
        critic = self.discriminator[side]
        with autocast(real.device, amp):
            loss = discriminator_loss(c.loss, critic(real).float(), critic(fake).float())
        if c.loss == "wgan_gp" and c.gp_weight:
            loss = loss + c.gp_weight * gradient_penalty(critic, real, fake, generator=rng)
        return loss

    def _generator_objective(
        self, a: Tensor, b: Tensor, loss: str, amp: bool
    ) -> tuple[Tensor, float]:
        """Adversarial + cycle (+ identity) loss of both generators, and the cycle error."""
        g_ab, g_ba = self.generator["ab"], self.generator["ba"]
        with autocast(a.device, amp):
            fake_b, fake_a = g_ab(a), g_ba(b)
            rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
            total = generator_loss(loss, self.discriminator["b"](fake_b).float())
            total = total + generator_loss(loss, self.discriminator["a"](fake_a).float())
            cycle = _reconstruction_error(self.reconstruction, rec_a, a)
            cycle = cycle + _reconstruction_error(self.reconstruction, rec_b, b)
            total = total + self.cycle_weight * cycle
            if self.identity_weight:
                same = (g_ab(b) - b).float().abs().mean() + (g_ba(a) - a).float().abs().mean()
                total = total + self.cycle_weight * self.identity_weight * same
        with torch.no_grad():  # mean L1 in [0, 1] units: halve the [-1, 1] distance
            error = ((rec_a - a).abs().mean() + (rec_b - b).abs().mean()) / 4
        return total, float(error)

    def _clip_critics(self) -> None:
        if self.weight_clip:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.weight_clip, self.weight_clip)


# -- the registered factory -----------------------------------------------------------


def _check_domain(domain: str, shape: tuple[int, int, int]) -> None:
    if domain == "rotate" and shape[1] != shape[2]:
        raise UserError(f"cyclegan domain 'rotate' needs square images, got {shape[1]}x{shape[2]}")
    if domain not in TRANSFORMS and domain not in DATASETS:
        raise UserError(
            f"unknown cyclegan domain {domain!r}: use a transform ({', '.join(TRANSFORMS)}) "
            "or the name of a dataset with the same image shape"
        )


@GENERATORS.register("cyclegan")
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
    _check_domain(domain, shape)
    spec = VARIANTS[variant]
    pick = lambda value, default: default if value is None else value  # noqa: E731
    settings = dict(
        pool_size=int(pick(pool_size, spec.pool_size)),
        cycle_weight=float(pick(cycle_weight, spec.cycle_weight)),
        identity_weight=float(pick(identity_weight, spec.identity_weight)),
        weight_clip=float(pick(weight_clip, spec.weight_clip)),
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


# the runner plans domain-shift rows (accuracy on G_AB(test set)) for translating families
cyclegan.translates_domains = True  # type: ignore[attr-defined]
