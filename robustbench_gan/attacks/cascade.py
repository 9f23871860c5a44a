"""``cascade``: a list of attacks run in turn, each on the images the earlier ones left
robust, keeping per image the first adversarial example (AutoAttack's protocol): the
per-image worst case over the list.

Named ``cascade``, not ``worst_case``: ``worst_case`` is the leaderboard's label of the
per-image worst case over every attack of a norm (``contract.suite.WORST_CASE_LABEL``), and a
suite or caller that still names the attack ``worst_case`` is told so in one line.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, Seed
from ..contract.norms import NormName
from ..contract.suite import WORST_CASE_LABEL
from ..registry import ATTACKS
from .base import Attack

#: cascade's default list: APGD-CE, APGD-T and Square (its standalone defaults, 5,000
#: queries). A cheaper list than AutoAttack's standard version, which adds FAB-T and runs
#: Square with AutoAttack's settings: that is the ``autoattack`` attack. Square is Linf
#: only, so an L2 composite omits it.
DEFAULT_PARTS = (
    {"name": "apgd_ce"},
    {"name": "apgd_dlr", "targeted": True},
    {"name": "square", "n_queries": 5000},
)


def part_name(spec: str | Mapping[str, Any]) -> str:
    """A part's name for attribution: its ``label`` if it has one, else ``apgd_dlr`` or
    ``apgd_dlr (targeted)``."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec.get("label"), str):
        return str(spec["label"])
    name = str(spec.get("name"))
    return f"{name} (targeted)" if spec.get("targeted") else name


#: the attack's name until the leaderboard's label took it (issue 26): naming it says so
RENAMED = {
    WORST_CASE_LABEL: (
        "the composite attack is now called 'cascade'; "
        f"{WORST_CASE_LABEL!r} is the leaderboard's label of the per-image worst case over "
        "all attacks of a norm"
    )
}


@ATTACKS.register("cascade", aliases=("autoattack_like",), retired=RENAMED)
class Cascade(Attack):
    """Run ``attacks`` in order, each only on the images the earlier ones left robust,
    and keep per image the first adversarial example found.

    Args:
        attacks: names or tables ``{name = "...", ...params}`` of registered attacks of
            this norm (default :data:`DEFAULT_PARTS`: APGD-CE, APGD-T with targeted DLR,
            Square with 5,000 queries; not AutoAttack's standard version, which is the
            ``autoattack`` attack).
        norm: ``"linf"`` or ``"l2"``; passed to sub-attacks that take a norm.
        n_target_classes: a targeted sub-attack is run once per target class, the
            ``n_target_classes`` most likely wrong classes in turn (AutoAttack: 9).

    The composite is at least as strong as each part on every image, so its robust
    accuracy is at most the minimum of its parts' (a test checks this). It needs the classes
    its most demanding part needs (``min_classes``: APGD-T 4; AutoAttack's FAB-T clips its
    targets to the classes there are).
    """

    targeted_supported: ClassVar[bool] = False

    def __init__(
        self,
        *,
        attacks: Sequence[str | Mapping[str, Any]] | None = None,
        norm: NormName = "linf",
        n_target_classes: Count = 9,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.norm = norm
        self.n_target_classes = int(n_target_classes)
        if attacks is None:
            attacks = [a for a in DEFAULT_PARTS if norm == "linf" or a["name"] != "square"]
        if not attacks:
            raise ValueError("cascade needs at least one attack")
        self.attacks = [self._build(spec, seed, batch_size) for spec in attacks]
        self.black_box = all(a.black_box for a in self.attacks)
        # each part runs on the same images; a targeted part takes at most C - 1 targets
        self.min_classes = max(a.min_classes for a in self.attacks)
        self._names = tuple(part_name(spec) for spec in attacks)
        self._batches: list[Tensor] | None = None  # recording while a budget runs

    @property
    def parts(self) -> tuple[str, ...]:
        return self._names

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.fooled_by = []
        return super().__call__(*args, **kwargs)

    def _attack_budget(self, model: nn.Module, x: Tensor, *rest: Any) -> Any:
        """One budget, batch by batch (the base's loop), keeping which part fooled which image."""
        self._batches = []
        try:
            out = super()._attack_budget(model, x, *rest)
            batches, self._batches = self._batches, None
        finally:
            self._batches = None
        fooled_by = torch.cat(batches) if batches else torch.full((len(x),), -1)
        if self.fooled_by is not None:
            self.fooled_by.append(fooled_by)
        return out

    def _build(self, spec: str | Mapping[str, Any], seed: int, batch_size: int) -> Attack:
        params = {"name": spec} if isinstance(spec, str) else dict(spec)
        name = params.pop("name", None)
        params.pop("label", None)  # attribution only
        if not isinstance(name, str) or name == "cascade":
            raise ValueError(f"each attack needs a name (not cascade itself), got {spec!r}")
        factory = ATTACKS.get(name)
        if "norm" not in params and "norm" in inspect.signature(factory).parameters:
            params["norm"] = self.norm
        attack = factory(seed=seed, batch_size=batch_size, **params)
        if attack.norm != self.norm:
            raise ValueError(f"{name} attacks in {attack.norm}, the composite in {self.norm}")
        return attack

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        state = self._start(model, x, y, eps)
        for index in range(len(self.attacks)):
            self._run_part(index, model, model, *state)
        return self._finish(state)

    @staticmethod
    def _start(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple:
        """The batch's running state: ``(x, y, eps, adv, robust, ranked, fooled_by)``, every
        image as it is, robust where the model classifies it right, the wrong classes ranked
        by clean logits (the targeted parts' targets), no part credited yet."""
        with torch.no_grad():
            logits = model(x)
        robust = logits.argmax(1) == y
        ranked = logits.argsort(1, descending=True)
        fooled_by = torch.full((len(x),), -1, dtype=torch.long)
        return (x, y, eps, x.clone(), robust, ranked, fooled_by)

    def _finish(self, state: tuple) -> Tensor:
        """The batch's examples; which part fooled each image is kept for the budget."""
        if self._batches is not None:  # not in generate() (adversarial training)
            self._batches.append(state[-1])
        return state[3]

    def _run_part(
        self,
        index: int,
        craft: nn.Module,
        judge: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        adv: Tensor,
        robust: Tensor,
        ranked: Tensor,
        fooled_by: Tensor,
        *,
        ranks: range | None = None,
    ) -> None:
        """Part ``index`` on the images still robust, crafting on ``craft`` (the model, or a
        view of it: BPDA, a transfer surrogate) and judging on ``judge`` (the model); the
        images it fools are recorded in place (``adv``, ``robust``, ``fooled_by``). A
        targeted part runs the targets of ``ranks`` among the ranked wrong classes (default:
        the first ``n_target_classes``)."""
        attack = self.attacks[index]
        attack.rng = self.rng
        before = robust.clone()
        if not attack.targeted:
            self._attack_robust(attack, craft, x, y, eps, adv, robust, None, judge)
        else:
            last = min(self.n_target_classes, ranked.shape[1] - 1)
            for rank in ranks if ranks is not None else range(last):
                if rank >= last:
                    break
                target = self._target_class(ranked, y, rank)
                self._attack_robust(attack, craft, x, y, eps, adv, robust, target, judge)
        fooled_by[(before & ~robust).cpu()] = index

    @staticmethod
    def _target_class(ranked: Tensor, y: Tensor, rank: int) -> Tensor:
        """The class of the given rank among the wrong classes, by clean logits."""
        wrong = ranked[ranked != y[:, None]].view(len(y), -1)
        return wrong[:, rank]

    def _attack_robust(
        self,
        attack: Attack,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        adv: Tensor,
        robust: Tensor,
        target_class: Tensor | None,
        judge: nn.Module | None = None,
    ) -> None:
        """Attack the images still robust on ``model``; record those it fools on ``judge``
        (default the model itself), in place."""
        idx = robust.nonzero().squeeze(1)
        if len(idx) == 0:
            return
        sub_target_class = target_class[idx] if target_class is not None else None
        out = attack.perturb(
            model, x[idx], y[idx], math.inf if attack.minimal else eps, sub_target_class
        )
        candidate = attack.project(out[0] if isinstance(out, tuple) else out, x[idx], eps)
        judge = judge or model
        votes = getattr(judge, "correct_votes", None)
        with torch.no_grad():
            if callable(votes):  # a randomized model's judge (remedies.Majority)
                now = votes(candidate, y[idx])
                fooled = now == 0
                # an image some draws still classify right keeps its most fooled candidate
                # so far: the final verdict is one draw, and a partial success is worth having
                keep = fooled | (now < votes(adv[idx], y[idx]))
            else:
                fooled = keep = judge(candidate).argmax(1) != y[idx]
        adv[idx[keep]] = candidate[keep]
        robust[idx[fooled]] = False
