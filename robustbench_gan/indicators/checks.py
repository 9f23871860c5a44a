"""The indicators measured on a model: once per model, and once per threat model (norm, eps).

Per model (:func:`model_checks`): unavailable gradients, unstable predictions, unconstrained
attack failure (Pintor et al. 2022), and the sanity checks that need the model (probabilities
out, non-finite outputs, a naive purifier evaluation). Per budget (:func:`budget_checks`):
incomplete optimization of the traced probe and, where the model declares a differentiable
stand-in (contract/surface.py), the images a transfer from it fools.

Every per-image result is a bool tensor over the images given; the model-level verdicts
(:func:`model_indicators`) apply the thresholds of :mod:`.scheme` to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..contract.surface import gradient_approximation
from ..utils import batch_slices, eval_mode, torch_generator, wilson
from .probe import incomplete, margin, probe

#: an indicator that counts images fires above this share of the images it applies to
SHARE = 0.01
UNCONSTRAINED_SHARE = 0.05  # robust accuracy left by PGD at eps 1 (the audit's old bound)
UNCONSTRAINED_EPS, UNCONSTRAINED_STEPS = 1.0, 20
UNSTABLE_RADIUS = 8 / 255  # side of the box the perturbations are drawn from (Pintor et al.)
UNSTABLE_DRAWS = 100  # perturbations per image (their gamma)
UNSTABLE_THRESHOLD = 0.1  # mean relative change of the margin that marks an image unstable


@dataclass
class ModelChecks:
    """Per image (over the images given): clean correctness, a zero or non-finite input
    gradient (cross-entropy, margin), the instability metric, survival of the unbounded
    attack; per model: the rest."""

    correct: Tensor
    ce_zero: Tensor
    margin_zero: Tensor
    instability: Tensor
    unbounded_robust: Tensor
    nondeterministic: bool
    outputs_probabilities: bool
    non_finite: bool
    naive: bool
    graph_error: str = ""

    @property
    def unavailable(self) -> Tensor:
        """Per image: gradients attacks cannot use (either loss)."""
        return self.ce_zero | self.margin_zero

    @property
    def unstable(self) -> Tensor:
        return self.instability > UNSTABLE_THRESHOLD

    @classmethod
    def pooled(cls, parts: list[ModelChecks]) -> ModelChecks:
        """The checks of several batches as those of their images together: the per-image
        tensors joined, a model-level flag raised where any batch raised it (probabilities
        out only where every batch's outputs were)."""

        def joined(name: str) -> Tensor:
            return torch.cat([getattr(part, name) for part in parts])

        return cls(
            correct=joined("correct"),
            ce_zero=joined("ce_zero"),
            margin_zero=joined("margin_zero"),
            instability=joined("instability"),
            unbounded_robust=joined("unbounded_robust"),
            nondeterministic=any(part.nondeterministic for part in parts),
            outputs_probabilities=all(part.outputs_probabilities for part in parts),
            non_finite=any(part.non_finite for part in parts),
            naive=any(part.naive for part in parts),
            graph_error=next((part.graph_error for part in parts if part.graph_error), ""),
        )


def model_checks(
    model: nn.Module, x: Tensor, y: Tensor, *, seed: int, draws: int = UNSTABLE_DRAWS
) -> ModelChecks:
    """Measure the model-level indicators on ``(x, y)`` (on the model's device); ``draws``
    perturbations per image for the instability metric."""
    with eval_mode(model), torch.no_grad():
        logits = torch.cat([model(x[s]) for s in batch_slices(len(x), 256)])
        again = torch.cat([model(x[s]) for s in batch_slices(len(x), 256)])
    correct = logits.argmax(1) == y
    graph_error = ""
    try:
        ce_zero, margin_zero = zero_gradients(model, x, y)
    except RuntimeError as error:  # the graph is cut (a non-differentiable front)
        graph_error = str(error).splitlines()[0][:200]
        ce_zero = margin_zero = torch.ones(len(x), dtype=torch.bool, device=x.device)
    with eval_mode(model):
        unbounded = probe(
            model, x, y, UNCONSTRAINED_EPS, "linf", steps=UNCONSTRAINED_STEPS, loss="ce"
        )
    return ModelChecks(
        correct=correct.cpu(),
        ce_zero=ce_zero.cpu(),
        margin_zero=margin_zero.cpu(),
        instability=instability(model, x, y, seed=seed, draws=draws).cpu(),
        unbounded_robust=(~unbounded.fooled).cpu(),
        nondeterministic=not same_outputs(logits, again),
        outputs_probabilities=bool(
            (logits >= 0).all()
            and torch.allclose(logits.sum(1), torch.ones(len(x), device=x.device), atol=1e-3)
        ),
        non_finite=not bool(torch.isfinite(logits).all()),
        naive=bool(getattr(model, "naive_gradients", False)),
        graph_error=graph_error,
    )


def same_outputs(first: Tensor, second: Tensor) -> bool:
    """Whether two forward passes gave the same outputs, exactly: NaN equals NaN and inf
    equals inf of its sign (``torch.equal`` holds NaN unequal to itself, so a deterministic
    model with some non-finite outputs would pass for a random one)."""
    if first.shape != second.shape or first.dtype != second.dtype:
        return False
    return torch.allclose(first, second, rtol=0, atol=0, equal_nan=True)


def zero_gradients(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: the input gradient of the cross-entropy, and of the margin, is all zero or
    not finite."""
    ce_parts, margin_parts = [], []
    with eval_mode(model):
        for s in batch_slices(len(x), 256):
            xs = x[s].detach().requires_grad_(True)
            with torch.enable_grad():
                logits = model(xs)
                ce = F.cross_entropy(logits, y[s], reduction="sum")
                (ce_grad,) = torch.autograd.grad(ce, xs, retain_graph=True)
                (m_grad,) = torch.autograd.grad(margin(logits, y[s]).sum(), xs)
            ce_parts.append(unusable(ce_grad))
            margin_parts.append(unusable(m_grad))
    return torch.cat(ce_parts), torch.cat(margin_parts)


def unusable(grad: Tensor) -> Tensor:
    flat = grad.flatten(1)
    return (flat.abs().amax(1) == 0) | ~torch.isfinite(flat).all(1)


@torch.no_grad()
def instability(
    model: nn.Module, x: Tensor, y: Tensor, *, seed: int, draws: int = UNSTABLE_DRAWS
) -> Tensor:
    """Per image: the mean relative change of the margin over ``draws`` points
    drawn uniformly from a box of side :data:`UNSTABLE_RADIUS` around it (clipped to
    [0, 1]), capped at 1 (Pintor et al.'s unstable-predictions metric, on the margin).

    Relative to the image's own margin or, where that is smaller, the model's median margin:
    an image on the decision boundary (margin near 0) is not unstable for moving a little,
    and the metric stays scale-free (logits multiplied by a constant give the same value)."""
    rng = torch_generator(seed, x.device)
    with eval_mode(model):
        typical = torch.cat([margin(model(x[s]), y[s]) for s in batch_slices(len(x), 256)])
    floor = typical.abs().median().clamp_min(1e-12)
    out = []
    with eval_mode(model):
        for s in batch_slices(len(x), 256):
            xs, ys = x[s], y[s]
            reference = margin(model(xs), ys)
            scale = torch.maximum(reference.abs(), floor)
            total = torch.zeros_like(reference)
            for _ in range(draws):
                noise = torch.rand(xs.shape, generator=rng, device=xs.device) - 0.5
                moved = margin(model((xs + noise * UNSTABLE_RADIUS).clamp(0, 1)), ys)
                change = (moved - reference).abs() / scale
                # a non-finite margin is not measured here (non_finite_outputs says it)
                total += torch.where(torch.isfinite(change), change, torch.zeros_like(change))
            out.append((total / draws).clamp(max=1.0))
    return torch.cat(out)


def indicators_of(model: nn.Module, x: Tensor, y: Tensor, *, seed: int = 0) -> list[str]:
    """The model-level indicators that fire on ``model`` over ``(x, y)``."""
    return model_indicators(model_checks(model, x, y, seed=seed))


def model_indicators(checks: ModelChecks) -> list[str]:
    """The model-level indicators that fire, by the thresholds of the scheme."""
    correct = checks.correct
    applies = correct if correct.any() else torch.ones_like(correct)
    fired = {
        "unavailable_gradients": bool(checks.graph_error)
        or share(checks.unavailable, applies) > SHARE,
        "unstable_predictions": checks.nondeterministic or above_share(checks.unstable, applies),
        "unconstrained_attack_failure": share(checks.unbounded_robust, None) > UNCONSTRAINED_SHARE,
        "outputs_probabilities": checks.outputs_probabilities,
        "non_finite_outputs": checks.non_finite,
        "naive_evaluation": checks.naive,
    }
    return [name for name, raised in fired.items() if raised]


def wilson_low(count: int, n: int, z: float = 1.96) -> float:
    """The lower end of the 95% Wilson interval of ``count / n`` (utils.wilson; 0 without
    images): the instability metric is a random draw per image, so a share counts as above
    the threshold only when its interval is (1 unstable image of 19 is not evidence of more
    than 1%; 2 are)."""
    return wilson(count, n, z)[0] if n else 0.0


def above_share(mask: Tensor, of: Tensor) -> bool:
    """Whether ``mask`` holds on more than :data:`SHARE` of the images of ``of``, with 95%
    confidence (the Wilson interval's lower end): for a measurement that is itself noisy per
    image (the instability draws, the probe's last steps), 2 images of 186 are not evidence
    of more than 1%."""
    return wilson_low(int((mask & of).sum()), int(of.sum())) > SHARE


def share(mask: Tensor, of: Tensor | None) -> float:
    if of is None:
        return float(mask.float().mean()) if len(mask) else 0.0
    return float((mask & of).sum()) / max(int(of.sum()), 1)


@dataclass
class BudgetChecks:
    """Per image at one (norm, eps): the probe left it robust with its loss still falling
    (``incomplete``), the probe fooled it (``white_fooled``), a transfer from the model's
    stand-in fooled it (``transfer_fooled``; None without a stand-in)."""

    incomplete: Tensor
    white_fooled: Tensor
    transfer_fooled: Tensor | None

    @classmethod
    def pooled(cls, parts: list[BudgetChecks]) -> BudgetChecks:
        """The checks of several batches as those of their images together."""
        transfers = [part.transfer_fooled for part in parts]
        return cls(
            incomplete=torch.cat([part.incomplete for part in parts]),
            white_fooled=torch.cat([part.white_fooled for part in parts]),
            transfer_fooled=None if any(t is None for t in transfers) else torch.cat(transfers),
        )


def budget_indicators(found: BudgetChecks, robust: Tensor) -> list[str]:
    """The budget-level indicators over the images ``robust`` marks (clean-correct and not
    broken): incomplete optimization of the probe, where its share's interval is above
    :data:`SHARE`, and transfer failure, where the stand-in's examples fool more than
    :data:`SHARE` of the images."""
    fired = []
    if above_share(found.incomplete, robust & ~found.white_fooled):
        fired.append("incomplete_optimization")
    if found.transfer_fooled is not None and share(found.transfer_fooled & robust, None) > SHARE:
        fired.append("transfer_failure")
    return fired


def budget_checks(model: nn.Module, x: Tensor, y: Tensor, norm: str, eps: float) -> BudgetChecks:
    with eval_mode(model):
        white = probe(model, x, y, eps, norm)
        stand_in = gradient_approximation(model)
        transfer = None
        if stand_in is not None:
            with eval_mode(stand_in):
                transfer = probe(stand_in, x, y, eps, norm, judge=model).fooled.cpu()
    return BudgetChecks(
        incomplete=(incomplete(white.trace) & ~white.fooled).cpu(),
        white_fooled=white.fooled.cpu(),
        transfer_fooled=transfer,
    )
