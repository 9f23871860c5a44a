"""The binarization test: does an attack find an adversarial example known to exist?

Zimmermann, Brendel, Tramer and Carlini, "Increasing Confidence in Adversarial Robustness
Evaluations", NeurIPS 2022 (https://arxiv.org/abs/2206.13991). For each test point ``x``
and budget ``eps`` the model's penultimate features are kept and its head replaced by a
linear readout with two logits, fitted to separate "inner" points (``x`` and random points
within ``eta * eps`` of it, label 0) from "boundary" points (random points at distance
``eps``, label 1). The new binary classifier calls ``x`` class 0 and a point inside the
ball class 1, so an adversarial example exists; an attack that misses it fails the test.
A sample whose readout cannot separate its points perfectly (the paper's "perfect"
goodness) is invalid and left out of the pass rate.

Defaults here are small, to run in seconds on a CPU; the paper (and its reference code,
google-research/active-adversarial-tests) uses ``n_inner=999``, ``n_boundary=1``,
``eta=0.95`` and an unpenalized logistic regression (scikit-learn's), whose logits it
rescales to a range of 1 ("fixed"). The readout here is the same logistic regression,
fitted in torch (full-batch L-BFGS, class-balanced) until it separates the points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks.base import Attack
from ..errors import UserError
from ..utils import eval_mode, model_device, torch_generator

PASSED, FAILED, INVALID, MISCLASSIFIED = "passed", "failed", "invalid", "misclassified"
#: how far past eps (relative, plus absolute) an attack's point may lie and still count
TOLERANCE = 1e-5
PAPER_DEFAULTS = {"n_inner": 999, "n_boundary": 1, "eta": 0.95}


@dataclass(frozen=True)
class BinarizationResult:
    """Per-sample outcomes of one attack at one budget.

    Attributes:
        eps, norm: the budget and its norm (``linf`` or ``l2``).
        outcomes: per sample, ``passed`` (the attack found a class-1 point in the ball),
            ``failed``, ``invalid`` (no perfect readout: excluded) or ``misclassified``
            (the model got the clean sample wrong: excluded).
        adv: ``(N, C, H, W)``: the attack's point per sample (the clean image where the
            attack did not run).
    """

    eps: float
    norm: str
    outcomes: tuple[str, ...]
    adv: Tensor

    def count(self, outcome: str) -> int:
        return sum(o == outcome for o in self.outcomes)

    @property
    def passed(self) -> int:
        return self.count(PASSED)

    @property
    def invalid(self) -> int:
        return self.count(INVALID)

    @property
    def valid(self) -> int:
        return self.count(PASSED) + self.count(FAILED)

    @property
    def pass_rate(self) -> float:
        """passed / valid samples; NaN without valid samples."""
        return self.passed / self.valid if self.valid else math.nan


class Binarized(nn.Module):
    """``model.features`` followed by a linear readout with two logits."""

    def __init__(self, model: nn.Module, readout: nn.Linear) -> None:
        super().__init__()
        self.model = model
        self.readout = readout

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.model.features(x).flatten(1))


def distances(a: Tensor, b: Tensor, norm: str) -> Tensor:
    """Per-row Linf or L2 distance between two batches."""
    diff = (a - b).flatten(1)
    return diff.abs().amax(1) if norm == "linf" else diff.norm(dim=1)


def _directions(n: int, x: Tensor, norm: str, gen: torch.Generator) -> Tensor:
    """``n`` random directions of unit norm: uniform in the Linf box (rescaled to touch its
    surface) or uniform on the L2 sphere."""
    if norm == "linf":
        d = torch.rand((n, *x.shape), generator=gen) * 2 - 1
    else:
        d = torch.randn((n, *x.shape), generator=gen)
    return d / distances(d, torch.zeros_like(d), norm).clamp_min(1e-12).view(-1, *[1] * x.dim())


def inner_points(x: Tensor, n: int, radius: float, norm: str, gen: torch.Generator) -> Tensor:
    """``x`` and ``n`` random points within ``radius`` of it (Linf: uniform in the box; L2:
    uniform in the ball), clipped to [0, 1]."""
    if norm == "linf":
        delta = (torch.rand((n, *x.shape), generator=gen) * 2 - 1) * radius
    else:
        scale = torch.rand(n, generator=gen) ** (1.0 / x.numel()) * radius
        delta = _directions(n, x, norm, gen) * scale.view(-1, *[1] * x.dim())
    return torch.cat([x.unsqueeze(0), (x + delta).clamp(0, 1)])


def boundary_points(x: Tensor, n: int, eps: float, norm: str, gen: torch.Generator) -> Tensor:
    """``n`` random points at distance ``eps`` from ``x`` after clipping to [0, 1]: a random
    direction, stretched (bisection) until its clipped point lies at ``eps``, or as far as
    the [0, 1] box allows along it (then nearer than ``eps``, still in the ball)."""
    d = _directions(n, x, norm, gen)
    x = x.unsqueeze(0)
    shape = (-1, *[1] * (x.dim() - 1))

    def dist(scale: Tensor) -> Tensor:
        return distances((x + d * scale.view(shape)).clamp(0, 1), x, norm)

    lo = torch.full((n,), float(eps))  # clipping only shortens: the answer is >= eps
    hi = lo.clone()
    for _ in range(40):  # grow until past eps (or saturated)
        short = dist(hi) < eps
        if not short.any():
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(50):
        mid = (lo + hi) / 2
        inside = dist(mid) <= eps
        lo, hi = torch.where(inside, mid, lo), torch.where(inside, hi, mid)
    return (x + d * lo.view(shape)).clamp(0, 1)


def fit_readout(features: Tensor, labels: Tensor, *, rounds: int = 20) -> nn.Linear | None:
    """A 2-logit linear readout separating label 0 from label 1 perfectly, or None.

    Unpenalized, class-balanced logistic regression by full-batch L-BFGS (deterministic),
    stopped once every point is on its side; the logits are then rescaled to a range of 1
    (the reference's "fixed" rescaling), so softmax losses do not saturate.
    """
    f = features.double()
    mean, std = f.mean(0), f.std(0).clamp_min(1e-8) if len(f) > 1 else torch.ones(f.shape[1])
    z = (f - mean) / std
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    target = labels.double()
    pos = float(target.sum())
    weight = torch.where(
        target > 0, len(target) / (2 * pos), len(target) / (2 * (len(target) - pos))
    )
    opt = torch.optim.LBFGS([w, b], max_iter=50, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, target, weight=weight)
        loss.backward()
        return loss

    for _ in range(rounds):
        opt.step(closure)
        with torch.no_grad():
            score = z @ w + b
        if bool(((score > 0) == (target > 0)).all()):
            break
    else:
        return None
    with torch.no_grad():
        w_raw, b_raw = w / std, b - (mean / std) @ w  # undo the standardization
        score = f @ w_raw + b_raw
        scale = float(score.max() - score.min()) or 1.0  # logits -s/2, +s/2: range s
        readout = nn.Linear(f.shape[1], 2)
        readout.weight.copy_(torch.stack([-w_raw, w_raw]) / (2 * scale))
        readout.bias.copy_(torch.stack([-b_raw, b_raw]) / (2 * scale))
    return readout


def _features(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    device = model_device(model)
    with torch.no_grad():
        parts = [model.features(x[i : i + batch_size].to(device)).flatten(1).cpu()
                 for i in range(0, len(x), batch_size)]  # fmt: skip
    return torch.cat(parts)


def check_inputs(model: nn.Module, attack: Attack, norm: str) -> None:
    """UserErrors for a model without penultimate features and for an attack that cannot
    run on a 2-class readout or works in another norm."""
    from ..models.pretrained import has_features

    if not has_features(model):
        raise UserError(
            f"the binarization test needs the model's penultimate features, and "
            f"{type(model).__name__} has no features(x) method"
        )
    name = type(attack).__name__
    if attack.min_classes > 2:
        raise UserError(
            f"{name} needs at least {attack.min_classes} classes (min_classes), "
            "the binarization test's readout has 2"
        )
    if getattr(attack, "norm", norm) != norm:
        raise UserError(f"{name} attacks in norm {attack.norm}, the test's threat model is {norm}")


def binarization_test(
    model: nn.Module,
    attack: Attack,
    x: Tensor,
    y: Tensor,
    eps: float,
    norm: str = "linf",
    *,
    n_inner: int = 99,
    n_boundary: int = 1,
    eta: float = 0.95,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> BinarizationResult:
    """Run ``attack`` on each sample's binarized classifier at budget ``eps``.

    ``x``: ``(N, C, H, W)`` in [0, 1]; ``y``: their labels (misclassified samples are
    skipped). Seeded: the same ``seed`` (and attack seed) gives the same result.
    """
    norm = norm.lower()
    if norm not in ("linf", "l2"):
        raise UserError(f"unknown norm {norm!r}; choose linf or l2")
    if not eps > 0:
        raise UserError(f"eps must be > 0, got {eps}")
    if n_inner < 0 or n_boundary < 1 or not 0 < eta < 1:
        raise UserError(
            f"want n_inner >= 0, n_boundary >= 1, 0 < eta < 1; got {n_inner}, {n_boundary}, {eta}"
        )
    check_inputs(model, attack, norm)
    from tqdm.auto import tqdm

    gen = torch_generator(seed)
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    outcomes: list[str] = []
    adv = x.clone()
    with eval_mode(model):
        device = model_device(model)
        with torch.no_grad():
            pred = torch.cat([model(x[i : i + batch_size].to(device)).argmax(1).cpu()
                              for i in range(0, len(x), batch_size)])  # fmt: skip
        for i in tqdm(range(len(x)), desc="binarization", unit="image", disable=not progress):
            inner = inner_points(x[i], n_inner, eta * eps, norm, gen)
            boundary = boundary_points(x[i], n_boundary, eps, norm, gen)
            if pred[i] != y[i]:
                outcomes.append(MISCLASSIFIED)
                continue
            points = torch.cat([inner, boundary])
            labels = torch.cat([torch.zeros(len(inner)), torch.ones(len(boundary))]).long()
            readout = fit_readout(_features(model, points, batch_size), labels)
            if readout is None:
                outcomes.append(INVALID)
                continue
            binary = Binarized(model, readout.to(device))
            with torch.no_grad():  # as the float32 module sees them
                sides = torch.cat([binary(points[j : j + batch_size].to(device)).argmax(1).cpu()
                                   for j in range(0, len(points), batch_size)])  # fmt: skip
            if not bool((sides == labels).all()):
                outcomes.append(INVALID)
                continue
            result = attack(binary, x[i : i + 1], torch.zeros(1, dtype=torch.long), [eps])
            point = result.adv[0]
            with torch.no_grad():
                label = int(binary(point.to(device)).argmax(1)[0])
            within = float(distances(point, x[i : i + 1], norm)[0]) <= eps * (1 + TOLERANCE) + 1e-6
            boxed = bool((point >= 0).all() and (point <= 1).all())
            outcomes.append(PASSED if label == 1 and within and boxed else FAILED)
            adv[i] = point[0]
    return BinarizationResult(eps=float(eps), norm=norm, outcomes=tuple(outcomes), adv=adv)
