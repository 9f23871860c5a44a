"""The remedies of the ``adaptive`` attack: which to run for the indicators that fired, and
the views of the model each one attacks.

Each indicator of attack failure names a remedy (robustbench_gan/indicators/scheme.py); the
remedy is a list of attacks of the catalog run against a view of the model:

- ``margin``: APGD on the DLR loss, scale-invariant (Croce & Hein 2020), for saturated or
  probability outputs (Carlini & Wagner 2017: attack a margin, not the cross-entropy);
- ``bpda``: APGD-CE and APGD-T through :class:`BPDA`, the true forward with the gradient of
  the model's differentiable stand-in (Athalye, Carlini and Wagner, ICML 2018);
- ``eot``: APGD-CE, then 100 steps of PGD kept to the last iterate, on :class:`Expectation`,
  the model's logits averaged over 20 draws of its own randomness (Expectation over
  Transformation, Athalye et al. 2018): the gradients are averaged, and an attack's own
  success check no longer stops at one lucky draw. The PGD runs on every image, fooled or
  not, as a hand-written EOT attack does, and keeps the candidate fewer draws classify
  right;
- ``smoothing``: on a deterministic model whose predictions are unstable (a rugged loss, such
  as k-winners-take-all's), APGD-CE on the Gaussian-smoothed gradient estimated by finite
  differences (:class:`FiniteDifferences`, as Tramèr et al. 2020 broke k-WTA);
- ``surrogate``: APGD-CE and APGD-T crafted on the stand-in alone and judged on the model
  (a transfer attack, Papernot et al. 2017; Tramèr et al. 2020);
- ``restarts``: APGD-CE and APGD-DLR with 5 restarts (AutoAttack's ``plus`` settings), where
  the optimization was incomplete or an attack kept the wrong iterate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..indicators.scheme import INDICATORS
from ..utils import torch_generator

#: the order remedies run in: cheap and specific first, the broad search last
ORDER = ("margin", "bpda", "eot", "smoothing", "surrogate", "restarts")
#: draws EOT averages each gradient over (AutoAttack's ``rand`` version: 20)
EOT_DRAWS = 20
#: the remedy part a randomized model's every image gets, fooled or not
#: (adaptive.Adaptive._deepen)
DEEPEN = "eot: pgd"
RESTARTS = 5


def remedy_parts(steps: int, n_target_classes: int) -> list[dict[str, Any]]:
    """Every remedy's attacks, as cascade parts labelled ``remedy: attack`` (``remedy`` is
    read back by :func:`remedy_of`)."""
    apgd = {"steps": steps}
    targeted = {"name": "apgd_dlr", "targeted": True, **apgd}
    return [
        {"name": "apgd_dlr", "label": "margin: apgd-dlr", **apgd},
        {"name": "apgd_ce", "label": "bpda: apgd-ce", **apgd},
        {**targeted, "label": "bpda: apgd-t"},
        {"name": "apgd_ce", "label": "eot: apgd-ce", **apgd},
        {"name": "pgd", "label": DEEPEN, "keep_first_success": False, **apgd},
        {"name": "apgd_ce", "label": "smoothing: apgd-ce", **apgd},
        {"name": "apgd_ce", "label": "surrogate: apgd-ce", **apgd},
        {**targeted, "label": "surrogate: apgd-t"},
        {"name": "apgd_ce", "label": "restarts: apgd-ce", "restarts": RESTARTS, **apgd},
        {"name": "apgd_dlr", "label": "restarts: apgd-dlr", "restarts": RESTARTS, **apgd},
    ]


def remedy_of(part: str) -> str:
    """The remedy a part belongs to (``"bpda: apgd-ce"`` -> ``"bpda"``), "" for none."""
    head, sep, _ = part.partition(": ")
    return head if sep and head in ORDER else ""


def chosen(
    fired: Iterable[str], *, has_stand_in: bool, margin_usable: bool, randomized: bool = True
) -> list[str]:
    """The remedies to run, in :data:`ORDER`, for the indicators that fired.

    BPDA and the surrogate need the model's differentiable stand-in; without one, masked
    cross-entropy gradients with a usable margin gradient get the margin remedy instead. EOT
    averages a randomized model's draws; a deterministic model whose predictions are unstable
    gets the finite-difference smoothing instead.
    """
    wanted = {INDICATORS[name].remedy for name in fired if name in INDICATORS} - {""}
    if "eot" in wanted and not randomized:
        wanted = (wanted - {"eot"}) | {"smoothing"}
    if not has_stand_in and wanted & {"bpda", "surrogate"}:
        wanted -= {"bpda", "surrogate"}
        if margin_usable:
            wanted.add("margin")
    return [name for name in ORDER if name in wanted]


class Majority(nn.Module):
    """A randomized model judged over ``draws`` forward passes: its outputs are the vote
    counts (the majority class wins), and :meth:`fooled` holds an image fooled only where no
    draw classifies it right. One lucky draw is no success (Athalye et al. 2018 evaluate
    randomized defenses in expectation); an image the attack leaves right on some draws is
    attacked further, and keeps the candidate with the fewest :meth:`correct_votes` so far."""

    def __init__(self, model: nn.Module, draws: int) -> None:
        super().__init__()
        self.model, self.draws = model, draws

    def forward(self, x: Tensor) -> Tensor:
        votes = torch.stack([self.model(x).argmax(1) for _ in range(self.draws)])
        counts = torch.zeros(len(x), self.num_classes(x, votes), device=x.device)
        return counts.scatter_add_(1, votes.T, torch.ones_like(votes.T, dtype=counts.dtype))

    def fooled(self, x: Tensor, y: Tensor) -> Tensor:
        """Per image: every draw misclassifies it."""
        return self.correct_votes(x, y) == 0

    def correct_votes(self, x: Tensor, y: Tensor) -> Tensor:
        """Per image: how many of the draws classify it right."""
        return torch.stack([self.model(x).argmax(1) == y for _ in range(self.draws)]).sum(0)

    def num_classes(self, x: Tensor, votes: Tensor) -> int:
        known = getattr(self.model, "num_classes", None)
        return int(known) if known else int(votes.max()) + 1


class Expectation(nn.Module):
    """A randomized model's logits averaged over ``draws`` forward passes, each in the
    graph: the gradient is the average of the draws' gradients (EOT), and the prediction
    is that of the expected logits."""

    def __init__(self, model: nn.Module, draws: int) -> None:
        super().__init__()
        self.model, self.draws = model, draws

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([self.model(x) for _ in range(self.draws)]).mean(0)


class BPDA(nn.Module):
    """The model's outputs, with the gradient of ``stand_in`` (Backward Pass Differentiable
    Approximation): ``model(x) + stand_in(x) - stand_in(x)``, the difference kept out of the
    values (exactly zero) and in the graph, so the values are the model's to the bit."""

    def __init__(self, model: nn.Module, stand_in: nn.Module) -> None:
        super().__init__()
        self.model, self.stand_in = model, stand_in

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():  # the deployed forward (a model may answer a gradient
            exact = self.model(x)  # request with another one: Defense-GAN's naive mode)
        if not (torch.is_grad_enabled() and x.requires_grad):
            return exact
        soft = self.stand_in(x)
        return exact.detach() + (soft - soft.detach())


class _SmoothedVJP(torch.autograd.Function):
    """Forward: the model's outputs. Backward: the vector-Jacobian product of the model
    smoothed by Gaussian noise, estimated from forward passes only (antithetic pairs)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, view: FiniteDifferences) -> Tensor:  # type: ignore[override]
        ctx.view = view
        ctx.save_for_backward(x)
        with torch.no_grad():
            return view.model(x)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        view: FiniteDifferences = ctx.view
        total = torch.zeros_like(x)
        with torch.no_grad():
            for _ in range(view.pairs):
                u = torch.randn(x.shape, generator=view.rng(x.device), device=x.device)
                up = view.model((x + view.sigma * u).clamp(0.0, 1.0))
                down = view.model((x - view.sigma * u).clamp(0.0, 1.0))
                slope = ((up - down) * grad_out).flatten(1).sum(1) / (2 * view.sigma)
                total += slope.view(-1, *[1] * (x.dim() - 1)) * u
        return total / view.pairs, None


class FiniteDifferences(nn.Module):
    """The model's outputs, with gradients estimated from forward passes: the Gaussian-smoothed
    gradient, ``E[(f(x + s u) - f(x - s u)) u] / 2s`` over ``pairs`` antithetic draws
    (Tramèr et al. 2020 broke k-winners-take-all this way, with ``s`` = eps): for a model
    whose own gradient is useless because the function jumps at small scales."""

    def __init__(self, model: nn.Module, sigma: float, pairs: int, seed: int) -> None:
        super().__init__()
        self.model, self.sigma, self.pairs, self.seed = model, sigma, pairs, seed
        self._rng: torch.Generator | None = None

    def rng(self, device: torch.device) -> torch.Generator:
        if self._rng is None or self._rng.device != device:
            self._rng = torch_generator(self.seed, device)
        return self._rng

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return self.model(x)
        return _SmoothedVJP.apply(x, self)
