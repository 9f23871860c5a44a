"""AutoAttack by name: its standard, plus and rand lists as a preset of ``cascade``.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690 (the lists and defaults
of its reference implementation's ``version`` argument).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from torch import Tensor, nn

from ..bounds import Count, OneOf, Seed, checked
from ..contract.norms import NormName
from ..registry import ATTACKS
from .escalation import Escalation, Staged
from .square import AUTOATTACK_SETTINGS
from .targeting import by_linearized_distance

VERSIONS = ("standard", "plus", "rand", "fast")
#: AutoAttack's ``version``: which list of attacks it runs
Version = Annotated[str, OneOf(VERSIONS)]
#: ``fast``: APGD-T's restarts per target (its 3 targets from 2 starts each found the
#: images AutoAttack's 9 from one start did, on a PGD-trained MNIST CNN; tests/bench/README.md)
FAST_RESTARTS = 2


@checked
def autoattack_list(
    version: Version,
    norm: NormName,
    *,
    steps: Count,
    n_queries: Count,
    eot_iter: Count,
    fast_restarts: Count = FAST_RESTARTS,
) -> list[Mapping[str, Any]]:
    """The attacks AutoAttack's ``version`` runs, in order, with its settings.

    standard: APGD-CE, APGD-T (targeted DLR over the top 9 classes), FAB-T (9 classes),
    Square with 5,000 queries; one restart each. fast: the standard list, staged (see
    :class:`AutoAttack`), APGD-T with ``fast_restarts`` restarts per target. plus: APGD-CE
    and APGD-DLR with 5 restarts, FAB with 5 restarts, Square, then APGD-T and FAB-T. rand (randomized defenses): APGD-CE
    and APGD-DLR with the gradient averaged over 20 draws (EOT). Square is Linf only here,
    so an L2 list leaves it out. Square runs as AutoAttack builds it, in every version
    (:data:`~.square.AUTOATTACK_SETTINGS`: p_init 0.8, p halved on the raw iteration index,
    one window and sign pattern per iteration for the whole batch, ``n_queries`` iterations
    after the start), not with the standalone ``square``'s defaults.
    """
    apgd = {"steps": steps}
    # FAB as the reference runs it inside AutoAttack: at the budget, an image leaving the
    # later targets and restarts once fooled within it (not the minimal search)
    fab = {"name": "fab", "steps": steps, "within_budget": True}
    square = {"name": "square", "label": "square", "n_queries": n_queries, **AUTOATTACK_SETTINGS}
    targeted = [
        {"name": "apgd_dlr", "label": "apgd-t", "targeted": True, **apgd},
        # FAB-T: untargeted to the base, it runs its own 9 target classes (fewer on data of
        # fewer than 10 classes, as APGD-T: the reference code stops there)
        {**fab, "label": "fab-t", "n_target_classes": 9, "clip_targets": True},
    ]
    if version == "fast":  # fewer targets, each tried from more starts
        targeted[0] = {**targeted[0], "restarts": fast_restarts}
    if version in ("standard", "fast"):
        attacks = [{"name": "apgd_ce", "label": "apgd-ce", **apgd}, *targeted, square]
    elif version == "plus":
        attacks = [
            {"name": "apgd_ce", "label": "apgd-ce", "restarts": 5, **apgd},
            {"name": "apgd_dlr", "label": "apgd-dlr", "restarts": 5, **apgd},
            {**fab, "label": "fab", "restarts": 5},
            square,
            *targeted,
        ]
    else:  # rand
        attacks = [
            {"name": "apgd_ce", "label": "apgd-ce", "eot_iter": eot_iter, **apgd},
            {"name": "apgd_dlr", "label": "apgd-dlr", "eot_iter": eot_iter, **apgd},
        ]
    return [a for a in attacks if norm == "linf" or a["name"] != "square"]


@ATTACKS.register(
    "autoattack",
    presets={"standard": {"version": "standard"}, "standard_fast": {"version": "fast"}},
)  # benchmark(attacks="standard") / "standard_fast"
class AutoAttack(Escalation):
    """AutoAttack's lists run as a per-image worst case: each attack only on the images the
    earlier ones left robust, the first adversarial example kept (see ``cascade``).

    Args:
        version: ``"standard"`` (default), ``"plus"``, ``"rand"`` or ``"fast"`` (see
            :func:`autoattack_list`).
        norm: ``"linf"`` (default) or ``"l2"``.
        steps: iterations of APGD and FAB (AutoAttack: 100).
        n_queries: Square's iterations after its start (AutoAttack: 5,000).
        n_target_classes: target classes of APGD-T (AutoAttack: 9; FAB-T always 9; both at
            most C - 1 on data of C classes).
        eot_iter: draws the gradient is averaged over in ``rand`` (AutoAttack: 20).
        fast_targets: ``fast``: APGD-T's targets in the first stage.
        fast_restarts: ``fast``: APGD-T's restarts per target (later restarts attack only
            the images earlier ones left robust).

    The parts are named as AutoAttack logs them (apgd-ce, apgd-t, fab-t, square, ...), and
    ``cascade`` reports which part broke each image (samples.csv), so the per-attack
    counts AutoAttack prints are in attack_contributions.csv and the report.

    ``fast`` runs the standard list in two stages (:class:`~.escalation.Escalation`). First,
    on every batch: APGD-CE, then APGD-T from ``fast_restarts`` starts on each of the
    ``fast_targets`` wrong classes nearest by MALT's linearized distance
    (:mod:`~.targeting`, measured on the images APGD-CE left robust), then the indicators of attack failure on the images still robust (as
    ``adaptive`` measures them). Then, where any indicator fires over the budget's images
    together (``fired``, per budget), the rest of the standard list on the images still
    robust: APGD-T's other targets, FAB-T and Square. On a model whose gradients work, the
    expensive parts do not run; on one that masks them, the standard list runs whole.
    """

    #: 1: Square runs with AutoAttack's own settings (raw-iteration schedule, one window per
    #: batch step, n_queries + 1 queries); 2: FAB stops on an image fooled within the budget
    #: (the reference's cost); 3: and within a run (below it; the same verdicts, other
    #: examples): results stored before are computed again
    revision: ClassVar[int] = 3

    def __init__(
        self,
        *,
        version: Version = "standard",
        norm: NormName = "linf",
        steps: Count = 100,
        n_queries: Count = 5000,
        n_target_classes: Count = 9,
        eot_iter: Count = 20,
        fast_targets: Count = 3,
        fast_restarts: Count = FAST_RESTARTS,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        attacks = autoattack_list(
            version,
            norm,
            steps=steps,
            n_queries=n_queries,
            eot_iter=eot_iter,
            fast_restarts=fast_restarts,
        )
        super().__init__(
            attacks=attacks,
            norm=norm,
            n_target_classes=n_target_classes,
            targeted=targeted,  # refused: AutoAttack is untargeted (FAB-T, APGD-T choose)
            seed=seed,
            batch_size=batch_size,
        )
        self.version = version
        self.escalates = version == "fast"
        self.fast_targets = int(fast_targets)

    def first_stage(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Staged:
        """APGD-CE, APGD-T on MALT's nearest targets, the indicators' measurements."""
        state = self._start(model, x, y, eps)
        self._run_part(0, model, model, *state)
        robust, ranked = state[4], state[5]
        idx = robust.nonzero().squeeze(1)
        if len(idx):
            ranked[idx] = by_linearized_distance(
                model, x[idx], y[idx], self.norm, self.n_target_classes
            )
        self._run_part(1, model, model, *state, ranks=range(self.fast_targets))
        return self.measure(model, Staged(state, model))

    def decide(self, model: nn.Module, batches: list[Staged]) -> list[str]:
        fired, _ = self.fired_over(batches)
        return ["standard"] if fired else []

    def escalate(self, model: nn.Module, batch: Staged, decision: list[str]) -> None:
        """The standard list's rest, where an indicator fired."""
        if not decision:
            return
        later = range(self.fast_targets, self.n_target_classes)
        self._run_part(1, model, model, *batch.state, ranks=later)
        for index in range(2, len(self.attacks)):
            self._run_part(index, model, model, *batch.state)
