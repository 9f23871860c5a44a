"""Defense-GAN: classify the generator's closest image instead of the input.

Samangouei, Kabkab and Chellappa, "Defense-GAN: Protecting Classifiers Against Adversarial
Attacks Using Generative Models", ICLR 2018, https://arxiv.org/abs/1805.06605; evaluated
as Athalye, Carlini and Wagner, "Obfuscated Gradients Give a False Sense of Security",
ICML 2018, https://arxiv.org/abs/1802.00420, showed it must be: with BPDA and EOT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..registry import DEFENSES
from ..utils import torch_generator
from .base import ModelDefense

GRADIENTS = ("bpda", "unrolled", "naive")


class DefenseGANModel(nn.Module):
    """``f(G(z*))`` with ``z* = argmin_z |G(z) - x|^2`` found by ``steps`` gradient-descent
    steps of size ``lr`` from each of ``restarts`` random z ~ N(0, I), keeping the best.

    What an attacker's gradient sees (``gradient``):

    - ``"bpda"``: the projection is treated as the identity on the backward pass
      (Backward Pass Differentiable Approximation), and the gradient is the average over
      ``eot`` independent projections (Expectation over Transformation of the random
      restarts);
    - ``"unrolled"``: exact gradients through every descent step (affordable for small
      ``steps`` and generators);
    - ``"naive"``: whenever a gradient is asked for, the bare classifier's output: the
      attacker works on the classifier alone and never sees the projection (the examples
      transfer from the classifier). Its robust accuracy is not a robustness claim (the
      audit flags it).

    Predictions (no gradient asked) always come from one projection, as deployed.
    """

    def __init__(
        self,
        classifier: nn.Module,
        gan: nn.Module,
        *,
        steps: int,
        restarts: int,
        lr: float,
        gradient: str,
        eot: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.classifier, self.gan = classifier, gan
        self.steps, self.restarts, self.lr = steps, restarts, lr
        self.gradient, self.eot = gradient, eot
        self.num_classes = getattr(classifier, "num_classes", None)
        self.naive_gradients = gradient == "naive"  # read by the audit
        self.seed = seed
        self._rng: torch.Generator | None = None

    def _z0(self, n: int, device: torch.device) -> Tensor:
        if self._rng is None or self._rng.device != device:
            self._rng = torch_generator(self.seed, device)
        return torch.randn(n * self.restarts, self.gan.nz, generator=self._rng, device=device)

    def project(self, x: Tensor, *, differentiable: bool = False) -> Tensor:
        """G(z*) for each image of ``x`` (best of the restarts by reconstruction error).
        ``differentiable``: keep the graph through the descent (for ``unrolled``)."""
        n = len(x)
        reference = x.repeat_interleave(self.restarts, dim=0)
        if not differentiable:
            reference = reference.detach()
        z = self._z0(n, x.device).requires_grad_(True)
        with torch.enable_grad():
            for _ in range(self.steps):
                error = (self.gan.generate(z) - reference).pow(2).flatten(1).sum(1)
                (grad,) = torch.autograd.grad(error.sum(), z, create_graph=differentiable)
                z = z - self.lr * grad
                if not differentiable:
                    z = z.detach().requires_grad_(True)
            images = self.gan.generate(z)
        error = (images - reference).pow(2).flatten(1).sum(1).view(n, self.restarts)
        best = error.argmin(1) + torch.arange(n, device=x.device) * self.restarts
        out = images[best]
        return out if differentiable else out.detach()

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return self.classifier(self.project(x))
        if self.gradient == "naive":  # the attacker works on the bare classifier
            return self.classifier(x)
        if self.gradient == "unrolled":
            return self.classifier(self.project(x, differentiable=True))
        return self.bpda(x)

    def bpda(self, x: Tensor) -> Tensor:
        """BPDA + EOT: forward through G(z*), backward as if G(z*) were x, averaged over
        ``eot`` projections."""
        logits = [self.classifier(x + (self.project(x) - x).detach()) for _ in range(self.eot)]
        return torch.stack(logits).mean(0)

    def gradient_approximation(self) -> nn.Module:
        """The differentiable stand-in adaptive attacks use whatever ``gradient`` says
        (contract/surface.py): BPDA + EOT through the projection."""
        return _BPDAView(self)


class _BPDAView(nn.Module):
    """A Defense-GAN model's BPDA + EOT logits, as a module (not registered in the model).
    Its outputs are the deployed ones, f(G(z*)), averaged over ``eot`` projections
    (``deployed_draws``, contract/surface.py)."""

    def __init__(self, model: DefenseGANModel) -> None:
        super().__init__()
        self.model = model
        self.num_classes = model.num_classes
        self.deployed_draws = model.eot

    def forward(self, x: Tensor) -> Tensor:
        return self.model.bpda(x)


@DEFENSES.register("defense_gan")
class DefenseGAN(ModelDefense):
    """Defense-GAN around one classifier (``members = [label]``) with an unconditional
    generator of the suite (``generator = label``).

    Args (paper: L = 200 steps, R = 10 restarts; ours are cut for CPU suites):
        steps: gradient-descent steps on z (default 100).
        restarts: random starting points per image (default 4).
        lr: step size on z (default 0.5; plain gradient descent on |G(z) - x|^2 summed
            over pixels).
        gradient: "bpda" (default), "unrolled" or "naive" (see DefenseGANModel).
        eot: projections averaged per gradient for BPDA (default 4).
        seed: seeds the restarts' random stream.
    """

    needs_generator = True
    purifier = True

    def __init__(
        self,
        *,
        generator: nn.Module | None = None,
        steps: int = 100,
        restarts: int = 4,
        lr: float = 0.5,
        gradient: str = "bpda",
        eot: int = 4,
        seed: int = 0,
    ) -> None:
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        if min(steps, restarts, eot) < 1 or lr <= 0:
            raise ValueError("steps, restarts and eot must be >= 1 and lr > 0")
        if generator is not None and getattr(generator, "conditional", False):
            raise UserError("defense_gan needs an unconditional generator (the label is unknown)")
        self.generator = generator
        self.steps, self.restarts, self.lr = steps, restarts, lr
        self.gradient, self.eot, self.seed = gradient, eot, seed

    @classmethod
    def variant(cls, params: Mapping[str, Any]) -> str:
        """The gradient an attacker sees: ``params["gradient"]``, by default ``"bpda"``."""
        return params.get("gradient", "bpda")

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("defense_gan wraps exactly one classifier (members = [label])")
        if self.generator is None:
            raise UserError("defense_gan needs a generator")
        return DefenseGANModel(
            members[0], self.generator.eval().requires_grad_(False),
            steps=self.steps, restarts=self.restarts, lr=self.lr, gradient=self.gradient,
            eot=self.eot, seed=self.seed,
        )  # fmt: skip
