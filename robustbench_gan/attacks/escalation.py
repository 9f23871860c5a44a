"""A cascade in two stages over a budget: a first list of attacks on every batch, one
decision over all the budget's images together, then the parts that decision names, batch by
batch. ``adaptive`` (remedies for the indicators of attack failure) and AutoAttack's ``fast``
version (the expensive parts only where an indicator says they may help) are built on it.

Why over the budget and not per batch: a decision taken on a batch's few images still robust
is no evidence (one image of the ten left robust in a last batch of 28 is 10%), and the
verdict would then depend on the batch size.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..indicators.checks import (
    BudgetChecks,
    ModelChecks,
    budget_checks,
    budget_indicators,
    model_checks,
    model_indicators,
)
from .base import Attack
from .cascade import Cascade


@dataclass
class Staged:
    """One batch between the two stages: its running state (see :meth:`Cascade._start`), the
    model its verdicts are taken on, and the measurements on its images still robust (none
    where the first stage left none)."""

    state: tuple
    judge: nn.Module
    checks: ModelChecks | None = None
    budget: BudgetChecks | None = None


#: draws of the instability metric per image in :meth:`Escalation.measure` (the audit's 100
#: cost more passes than ``adaptive``'s remedies save on an honest model; 32 keep its
#: verdicts on the zoo, and ``fast``'s on the honest models)
DRAWS = 32


class Escalation(Cascade, abc.ABC):
    """Two loops over a budget's batches: :meth:`first_stage` on each, :meth:`decide` once on
    all of them, :meth:`escalate` on each with that decision. The random stream of the second
    loop goes on from the first. Outside a budget's loop (``generate``), a batch is decided
    on its own.

    Per budget of the last call it keeps the indicators that fired (``fired``, those
    :meth:`fired_over` found) and the decision (``decisions``: what the second stage ran)."""

    #: whether this instance runs the two stages (else it is a plain cascade)
    escalates: bool = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._phase: str | None = None
        self._waiting: list[Staged] = []
        self._decision: list[str] = []
        self._resume: torch.Generator | None = None
        self.fired: list[list[str]] | None = None
        self.decisions: list[list[str]] | None = None
        self._fired_now: set[str] | None = None  # while a budget runs

    @abc.abstractmethod
    def first_stage(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Staged:
        """The first list on one batch, and whatever :meth:`decide` needs measured."""

    @abc.abstractmethod
    def decide(self, model: nn.Module, batches: list[Staged]) -> list[str]:
        """What the second stage runs, from the first stage's batches together."""

    @abc.abstractmethod
    def escalate(self, model: nn.Module, batch: Staged, decision: list[str]) -> None:
        """The second stage on one batch (its state is updated in place)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.fired, self.decisions = [], []
        return super().__call__(*args, **kwargs)

    def _attack_budget(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        device: torch.device,
    ) -> Any:
        if not self.escalates:
            return super()._attack_budget(model, x, y, eps, target_class, device)
        rest = (y, eps, target_class, device)
        self._waiting, self._phase, self._decision = [], "first", []
        self._fired_now = set()
        try:
            first = Attack._attack_budget(self, model, x, *rest)  # Cascade records the second
            if not first.clean:
                self._decision = self.decide(model, self._waiting)
                self._resume, self._phase = self.rng, "second"
            out = super()._attack_budget(model, x, *rest)
            fired = sorted(self._fired_now)
        finally:
            self._waiting, self._phase, self._resume, self._fired_now = [], None, None, None
        if self.fired is not None and self.decisions is not None:
            self.fired.append(fired)
            self.decisions.append(list(self._decision))
        if first.clean:
            return out
        return out._replace(
            seconds=first.seconds + out.seconds,
            forward=first.forward + out.forward,
            backward=first.backward + out.backward,
        )

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        if not self.escalates:
            return super().perturb(model, x, y, eps, target_class)
        if self._phase == "second":
            if self._resume is not None:  # the random stream goes on from the first loop
                self.rng, self._resume = self._resume, None
            batch = self._waiting.pop(0)
            self.escalate(model, batch, self._decision)
            return self._finish(batch.state)
        batch = self.first_stage(model, x, y, eps)
        if self._phase == "first":
            self._waiting.append(batch)
            return batch.state[3]
        self.escalate(model, batch, self.decide(model, [batch]))  # one batch on its own
        return self._finish(batch.state)

    def measure(self, model: nn.Module, batch: Staged, draws: int = DRAWS) -> Staged:
        """The indicators' measurements on the batch's images still robust (all correct):
        the model-level checks (``draws`` perturbations per image for the instability
        metric) and the budget's probe; nothing where none is left."""
        x, y, eps = batch.state[:3]
        idx = batch.state[4].nonzero().squeeze(1)
        if len(idx):
            batch.checks = model_checks(model, x[idx], y[idx], seed=self.seed, draws=draws)
            batch.budget = budget_checks(model, x[idx], y[idx], self.norm, eps)
        return batch

    def fired_over(self, batches: list[Staged]) -> tuple[list[str], ModelChecks | None]:
        """The indicators that fire over the batches' measured images together (kept in
        ``fired`` while a budget runs), and their pooled model checks (None where no image
        was measured). The probe breaking an image the first stage did not counts as
        incomplete optimization: a longer search found what the first one missed."""
        measured = [batch for batch in batches if batch.checks is not None]
        if not measured:
            return [], None
        checks = ModelChecks.pooled([batch.checks for batch in measured])
        budget = BudgetChecks.pooled([batch.budget for batch in measured])
        fired = model_indicators(checks) + budget_indicators(budget, checks.correct)
        if budget.white_fooled.any() and "incomplete_optimization" not in fired:
            fired.append("incomplete_optimization")
        if self._fired_now is not None:
            self._fired_now.update(fired)
        return fired, checks
