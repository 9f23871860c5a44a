"""AutoAttack, then the remedy for every indicator of attack failure that fires.

Croce & Hein's AutoAttack (ICML 2020) is the field's standard, and it is not enough against a
defense that masks its gradients: Athalye, Carlini and Wagner (ICML 2018) and Tramèr,
Carlini, Brendel and Madry ("On Adaptive Attacks to Adversarial Example Defenses", NeurIPS
2020) broke published defenses that strong attacks had not, and Pintor et al. ("Indicators of
Attack Failure", NeurIPS 2022) showed the failures can be detected and the attack patched.
This attack does both: it runs AutoAttack's standard list, measures the indicators
(robustbench_gan/indicators) on the images still robust, decides which fire over all the
images of the budget, and runs the remedy each fired indicator names (attacks/remedies.py) on
the images still robust after it. It keeps per image
the first adversarial example found, so its robust accuracy is the worst case over all of it;
``parts`` and ``fooled_by`` say which part broke each image, ``ran`` which remedies ran.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, Seed
from ..contract.norms import NormName
from ..contract.surface import declares_randomized, deployed_draws, gradient_approximation
from ..indicators.checks import SHARE, share
from ..registry import ATTACKS
from .autoattack import autoattack_list
from .escalation import DRAWS, Escalation, Staged
from .remedies import (
    BPDA,
    DEEPEN,
    EOT_DRAWS,
    Expectation,
    FiniteDifferences,
    Majority,
    chosen,
    remedy_of,
    remedy_parts,
)

#: images two passes are compared on to tell a randomized model
SEEN = 8
#: forward passes a randomized model's verdict is the majority of (odd: no ties of two)
VOTES = 5
#: the finite-difference gradient of a deterministic model: noise scale as a share of eps
#: (Tramèr et al. 2020: eps) and antithetic pairs per gradient
NOISE_SHARE, PAIRS = 1.0, 16


@ATTACKS.register("adaptive", presets={"adaptive": {}})  # benchmark(attacks="adaptive")
class Adaptive(Escalation):
    """AutoAttack's standard version, then the indicators of attack failure on the images it
    left robust, then for each indicator that fired its remedy (margin loss, BPDA, EOT,
    smoothing, transfer from a surrogate, more restarts) on the images still robust.

    Args:
        norm: ``"linf"`` (default) or ``"l2"``.
        steps: iterations of every APGD and FAB part (AutoAttack: 100).
        n_queries: Square's iterations (AutoAttack: 5,000).
        n_target_classes: target classes of the targeted parts (AutoAttack: 9).
        draws: random perturbations per image of the instability metric.
        batch_size: images per batch (default 256). The indicators are measured per batch,
            on the images AutoAttack left robust in it, and decided over the budget's images
            together, so the verdict does not depend on the batch size.

    BPDA and the surrogate need a differentiable stand-in the model declares
    (``gradient_approximation``, contract/surface.py); without one their indicators fall
    back to the margin remedy where the margin's gradient is usable.
    """

    targeted_supported: ClassVar[bool] = False
    #: 1: AutoAttack's FAB stops on an image fooled within the budget; the indicators are
    #: decided over the budget's images; 2: FAB stops on an image within a run too: results
    #: stored before are computed again
    revision: ClassVar[int] = 2

    def __init__(
        self,
        *,
        norm: NormName = "linf",
        steps: Count = 100,
        n_queries: Count = 5000,
        n_target_classes: Count = 9,
        draws: Count = DRAWS,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        standard = autoattack_list("standard", norm, steps=steps, n_queries=n_queries, eot_iter=20)
        super().__init__(
            attacks=[*standard, *remedy_parts(steps, n_target_classes)],
            norm=norm,
            n_target_classes=n_target_classes,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.n_standard = len(standard)
        self.draws = int(draws)

    @property
    def ran(self) -> list[list[str]] | None:
        """Per budget of the last call: the remedies that ran, in ``remedies.ORDER``
        (``fired``: the indicators that called for them)."""
        return self.decisions

    def first_stage(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Staged:
        return self.standard(model, x, y, eps)

    def escalate(self, model: nn.Module, batch: Staged, decision: list[str]) -> None:
        self.remedy(model, batch, decision)

    def standard(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Staged:
        """AutoAttack's list on one batch, and the indicators' measurements on the images it
        left robust (all correct)."""
        state = self._start(model, x, y, eps)
        for index in range(self.n_standard):
            self._run_part(index, model, model, *state)
        judge = self.rejudged(model, state) if self.randomized(model, x) else model
        return self.measure(model, Staged(state, judge), self.draws)

    def decide(self, model: nn.Module, batches: list[Staged]) -> list[str]:
        """The remedies to run, for the indicators that fire over the batches' measured
        images together (:meth:`Escalation.fired`)."""
        fired, checks = self.fired_over(batches)
        if checks is None:
            return []
        return chosen(  # in ORDER
            fired,
            has_stand_in=gradient_approximation(model) is not None,
            margin_usable=share(checks.margin_zero, checks.correct) <= SHARE,
            randomized=checks.nondeterministic,
        )

    def remedy(self, model: nn.Module, batch: Staged, remedies: list[str]) -> None:
        """Each remedy's parts on the batch's images still robust, judged on the model (a
        randomized one by its :class:`Majority`), the EOT deepening last on every image."""
        stand_in = gradient_approximation(model)
        deepen = None
        for name in remedies:
            craft = self.view(name, model, stand_in, batch.state[2])
            for index in self.parts_of(name):
                if self.parts[index] == DEEPEN:  # last: nothing after may undo it
                    deepen = (index, craft)
                else:
                    self._run_part(index, craft, batch.judge, *batch.state)
        if deepen is not None:
            self._deepen(*deepen, model, batch.state)

    def _deepen(self, index: int, craft: nn.Module, model: nn.Module, state: tuple) -> None:
        """Part ``index`` on every image, fooled or not, as a hand-written EOT attack runs:
        a randomized model's judge holds an image fooled when its few draws all miss, which
        a candidate still classified right on a few percent of draws passes, and one draw
        on the clean image decided which images were attacked at all; the final verdict is
        one more draw. It runs after every other remedy, and the candidate with fewer
        correct draws of :data:`EOT_DRAWS` is kept (the judge's few would often tie, and a
        later part could swap a deep example for a shallow one); an image stays credited to
        the part that first fooled it."""
        x, y, eps, adv, robust, _, fooled_by = state
        pending, before = torch.ones_like(robust), robust.clone()
        judge = Majority(model, EOT_DRAWS)
        self._attack_robust(self.attacks[index], craft, x, y, eps, adv, pending, None, judge)
        robust &= pending
        fooled_by[(before & ~robust).cpu()] = index

    @staticmethod
    def randomized(model: nn.Module, x: Tensor) -> bool:
        """The model declares it draws at every pass, or two passes on the batch's first
        :data:`SEEN` images differ (on the whole batch the check cost an honest model, whose
        images AutoAttack breaks in 5 passes, 40% more passes)."""
        if declares_randomized(model):
            return True
        with torch.no_grad():
            return not torch.equal(model(x[:SEEN]), model(x[:SEEN]))

    def rejudged(self, model: nn.Module, state: tuple) -> nn.Module:
        """A randomized model's judge (:class:`Majority`); the images the standard list
        counted as fooled on one draw but some of the judge's draws classify right go back to
        the robust ones, for the remedies."""
        x, y, _, adv, robust, _, fooled_by = state
        judge = Majority(model, VOTES)
        done = (~robust).nonzero().squeeze(1)
        if len(done):
            with torch.no_grad():
                lucky = ~judge.fooled(adv[done], y[done])
            robust[done[lucky]] = True
            fooled_by[done[lucky].cpu()] = -1
        return judge

    def view(
        self,
        remedy: str,
        model: nn.Module,
        stand_in: nn.Module | None,
        eps: float,
    ) -> nn.Module:
        """The model a remedy's attacks craft on (they are always judged on the model). A
        stand-in whose outputs are the deployed model's (``deployed_draws``) is crafted on
        alone: BPDA around it would run the model once more for the same values."""
        own = deployed_draws(stand_in) if stand_in is not None else 0
        through = stand_in if own else BPDA(model, stand_in) if stand_in is not None else None
        if remedy == "bpda" and through is not None:
            return through
        if remedy == "surrogate" and stand_in is not None:
            return stand_in
        if remedy == "eot":  # through the stand-in where the model's own gradient is masked
            if through is None:
                return Expectation(model, EOT_DRAWS)
            return Expectation(through, -(-EOT_DRAWS // max(own, 1)))
        if remedy == "smoothing":
            return FiniteDifferences(model, NOISE_SHARE * eps, PAIRS, self.seed)
        return model

    def parts_of(self, remedy: str) -> list[int]:
        return [i for i, name in enumerate(self.parts) if remedy_of(name) == remedy]
