"""Attacks: every attack on every model at every budget, the leaderboard and its curves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..attacks.base import AttackResult
from ..checkpoint import tensors_to_bytes
from ..contract.cells import Cell, CellOutput
from ..contract.context import Context, build
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import EvalCellSpec, Record
from ..contract.results import Results
from ..contract.schema import (
    CURVE_KEYS,
    DOMAIN_NORM,
    WORST_CASE,
)
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..registry import ATTACKS
from ..render.format import markdown_table, robust_accuracy_matrix, safe_name
from ..render.plots import iteration_plot, robust_accuracy_plot
from ..utils import torch_generator
from .attack_samples import contributions_table, contributions_text, samples_table
from .attack_tables import (
    attack_cost_table,
    iteration_table,
    leaderboard_table,
    white_box_transfer,
)
from .attack_text import attack_cost_text, curves_text, worst_case_text
from .common import bits, pack, share
from .escalation import escalation_table, escalation_text


@dataclass(frozen=True)
class AttackCellSpec(EvalCellSpec):
    """One attack entry on one model at all its budgets."""

    attack: dict[str, Any]
    eps: list[float]


@dataclass(frozen=True)
class BudgetResult(Record):
    """One budget of an attack cell; ``correct`` marks the images still classified right."""

    eps: float
    robust_acc: float
    attack_success_rate: float
    mean_linf: float
    mean_l2: float
    seconds: float
    correct: str
    iterations: list[float] | None = None  # robust accuracy after k iterations
    fooled_by: list[int] | None = None  # a composite's part that fooled each image (-1: none)
    forward_passes: float | None = None  # model passes per image spent crafting (queries)
    backward_passes: float | None = None
    invalid_output: int = 0  # images whose attack output was not finite (kept clean)
    projected_output: int = 0  # images the attack returned outside the ball or [0, 1]
    pred: str = ""  # per image: the prediction on the adversarial example (packed)
    silent: str = ""  # per image: fooled along the path, not at the end ("": not tracked)
    fired: list[str] | None = None  # an escalating attack's indicators that fired (adaptive)
    remedies: list[str] | None = None  # and the remedies it ran
    linf: str = ""  # per image: the perturbation's Linf and L2 norms (packed)
    l2: str = ""

    OPTIONAL = ("fooled_by", "fired", "remedies")


@dataclass(frozen=True)
class AttackOutcome(Record):
    norm: str
    targeted: bool
    black_box: bool
    n_eval: int
    clean_acc: float
    clean_correct: str
    device: str
    versions: str
    per_eps: list[BudgetResult]
    train_seconds: float = 0.0
    parts: list[str] = field(default_factory=list)  # a composite's attacks, in order
    labels: str = ""  # per image: the true class and the clean prediction (packed)
    clean_pred: str = ""

    OPTIONAL = ("parts",)


@EVALUATIONS.register
class Attack(Evaluation):
    """Runs each [[attacks]] entry on each model; keeps the adversarial examples (for the
    transfer cells). Tables: leaderboard.csv (with the per-image worst case over the attacks
    of a norm), the diagonal of transfer.csv, curves_eps.csv, curves_iterations.csv, the
    attack-cost table, samples.csv and attack_contributions.csv (attack_samples.py)."""

    kind = "attack"
    key_columns = ("model", "attack")
    needs = (MODELS,)
    makes = (
        "leaderboard", "transfer", "eps_curves", "iteration_curves", "attack_cost", "samples",
        "attack_contributions", "escalation",
    )  # fmt: skip

    def plan(self, suite: Suite, plan: Plan) -> None:
        for model in plan.models.values():
            for attack in suite.attacks:
                spec = AttackCellSpec.of(
                    model, suite, attack=attack.to_json(), eps=list(attack.eps)
                )
                label = f"{attack.label} on {model.label}"
                plan.add(self.kind, (model.label, attack.label), label, spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: AttackCellSpec = cell.spec  # type: ignore[assignment]
        model = ctx.model(spec.model, spec.seed)
        attack = build(ATTACKS, spec.attack, {"seed": spec.seed, "batch_size": ctx.eval_batch_size})
        x, y = ctx.eval_set(spec.n_eval)
        if getattr(attack, "needs_training_data", False):  # AdvGAN: learns on the training split
            attack.fit(model, ctx.data.x_train, ctx.data.y_train, spec.eps)
        target_class = (
            random_classes(y, ctx.data.num_classes, spec.seed) if attack.targeted else None
        )
        clean_pred = ctx.clean_predictions(spec.model, model, x)
        outcome: AttackResult = attack(
            model, x, y, spec.eps, target_class=target_class, clean_pred=clean_pred
        )
        fooled_by = attack.fooled_by if attack.parts else None
        delta = (outcome.adv - x.unsqueeze(0)).flatten(2)
        linf, l2 = delta.abs().amax(2), delta.norm(dim=2)
        correct = outcome.pred == y.unsqueeze(0)
        clean_correct = outcome.clean_pred == y
        per_eps = [
            BudgetResult(
                eps=eps,
                robust_acc=share(correct[i]),
                attack_success_rate=share(~correct[i], of=clean_correct),
                mean_linf=float(linf[i].mean()),
                mean_l2=float(l2[i].mean()),
                seconds=outcome.seconds[i],
                correct=bits(correct[i]),
                iterations=iteration_curve(outcome, i, attack),
                fooled_by=fooled_by[i].tolist() if fooled_by else None,
                forward_passes=outcome.forward_passes[i],
                backward_passes=outcome.backward_passes[i],
                invalid_output=flagged(outcome.invalid_output, i),
                projected_output=flagged(outcome.projected_output, i),
                pred=pack(outcome.pred[i], CLASS),
                silent=silent_successes(outcome, i),
                fired=escalation(attack, "fired", i),
                remedies=escalation(attack, "ran", i),
                linf=pack(linf[i], NORM),
                l2=pack(l2[i], NORM),
            )
            for i, eps in enumerate(outcome.eps)
        ]
        result = AttackOutcome(
            norm=attack.norm,
            targeted=attack.targeted,
            black_box=attack.black_box,
            train_seconds=getattr(attack, "train_seconds", 0.0),
            n_eval=len(x),
            clean_acc=share(clean_correct),
            clean_correct=bits(clean_correct),
            device=ctx.device_name,
            versions=ctx.versions,
            per_eps=per_eps,
            parts=list(attack.parts),
            labels=pack(y, CLASS),
            clean_pred=pack(outcome.clean_pred, CLASS),
        )
        return CellOutput(result.to_json(), {"adv": tensors_to_bytes({"adv": outcome.adv})})

    def current(self, result: Mapping[str, Any]) -> bool:
        """A cell stored before the per-image norms or the silent successes (the indicator)
        runs again."""
        return "clean_pred" in result and all(
            "linf" in e and "silent" in e for e in result["per_eps"]
        )

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        outcomes = {key: (f.cell_id, AttackOutcome.from_json(f.result)) for key, f in
                    results.of(self.kind).items()}  # fmt: skip
        board = leaderboard_table(suite, results, outcomes)
        tables.set("leaderboard", board, csv="leaderboard.csv")
        tables.set("transfer", white_box_transfer(outcomes), csv="transfer.csv")
        curves = board.loc[board["norm"] != DOMAIN_NORM, [*CURVE_KEYS, "eps", "robust_acc"]]
        tables.set(
            "eps_curves",
            curves.sort_values([*CURVE_KEYS, "eps"], kind="stable"),
            csv="curves_eps.csv",
        )
        tables.set(
            "iteration_curves", iteration_table(results, outcomes), csv="curves_iterations.csv"
        )
        tables.set("attack_cost", attack_cost_table(outcomes))
        samples = samples_table(suite, attacked_by_all(suite, results, outcomes), outcomes)
        tables.set("samples", samples, csv="samples.csv")
        tables.set(
            "attack_contributions",
            contributions_table(suite, outcomes, samples),
            csv="attack_contributions.csv",
        )
        models = {label: (m.base, m.defense) for label, m in results.models.items()}
        tables.set("escalation", escalation_table(outcomes, models), csv="escalation.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        board, made = tables["leaderboard"], {}
        attacked = board[board["norm"] != DOMAIN_NORM]  # none in a partial run without attacks
        # a line of one budget (`rbg eval` at one eps) is a point, not a curve: drawn only
        # where some model and attack was run at two budgets or more
        lines = attacked.groupby(["target", "defense", "attack", "norm"])["eps"].nunique()
        if (lines > 1).any():
            made["robust_accuracy"] = robust_accuracy_plot(board, folder / "robust_accuracy.png")
        curves = tables["iteration_curves"]
        for attack in suite.attacks:
            part = curves[(curves["attack"] == attack.label) & (curves["eps"] > 0)]
            # a curve of one point (an attack that fooled every image, or none, at its start)
            # shows nothing: drawn only where some model's curve has two iterations or more
            lengths = part.groupby([*CURVE_KEYS, "eps"])["iteration"].nunique()
            if len(part) and (lengths > 1).any():
                name = f"iterations_{safe_name(attack.label)}"
                made[name] = iteration_plot(part, attack.label, folder / f"{name}.png")
        return made

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        board = tables["leaderboard"]
        if not (board["norm"] != DOMAIN_NORM).any():  # a partial run without attack cells
            return []
        out = [Section("Worst case over all attacks", worst_case_text(board), "summary")]
        contributions = tables["attack_contributions"]
        if len(contributions):
            title = "Which attack broke which image"
            out.append(Section(title, contributions_text(contributions)))
        for attack, norm in dict.fromkeys(zip(board["attack"], board["norm"])):
            if attack != WORST_CASE and norm != DOMAIN_NORM:
                table = markdown_table(robust_accuracy_matrix(board, attack, norm))
                out.append(Section(f"Attack `{attack}` ({norm})", [table]))
        escalated = tables["escalation"]
        if len(escalated):
            out.append(Section("Adaptive escalation", escalation_text(escalated), "summary"))
        if any(name == "robust_accuracy" or name.startswith("iterations_") for name in plots):
            out.append(Section("Robustness curves", curves_text(plots)))
        cost = tables["attack_cost"]
        if len(cost):
            out.append(Section("Attack cost", attack_cost_text(cost), "appendix"))
        return out


def attacked_by_all(suite: Suite, results: Results, outcomes: Mapping) -> Results:
    """``results`` with the models every attack of the suite ran on: all of them but in a
    partial run (the per-image tables credit each image to the first attack that broke it)."""
    models = {label: model for label, model in results.models.items()
              if all((label, a.label) in outcomes for a in suite.attacks)}  # fmt: skip
    return results if len(models) == len(results.models) else replace(results, models=models)


CLASS, NORM = "<i2", "<f4"  # packed per-image vectors: class indices, perturbation norms


def flagged(mask: Tensor | None, index: int) -> int:
    """How many images the base flagged at budget ``index`` (0 when it flags none)."""
    return 0 if mask is None else int(mask[index].sum())


def escalation(attack: Any, name: str, index: int) -> list[str] | None:
    """An escalating attack's record at budget ``index`` (``ran``: the remedies it ran,
    ``fired``: the indicators that called for them); None for any other attack."""
    books = getattr(attack, name, None)
    return list(books[index]) if isinstance(books, list) and len(books) > index else None


def silent_successes(outcome: AttackResult, index: int) -> str:
    """The images the attack fooled at some iteration but not with the example it returned,
    as bits ("" for an attack that reports no success steps): Pintor et al.'s silent
    success, per image."""
    if outcome.success_step is None:
        return ""
    return bits((outcome.success_step[index] >= 0) & ~outcome.success[index])


def random_classes(y: Tensor, num_classes: int, seed: int) -> Tensor:
    """A seeded target class for each image, never its true class."""
    shift = torch.randint(1, num_classes, y.shape, generator=torch_generator(seed))
    return (y + shift) % num_classes


def iteration_curve(outcome: AttackResult, index: int, attack: Any) -> list[float] | None:
    """Robust accuracy after k = 0, 1, ..., K iterations at budget ``index``.

    Only for untargeted attacks that report when each image was first fooled; an image
    counts as robust after k iterations if it was not fooled within them. K is at least
    the attack's ``iterations``.
    """
    if outcome.success_step is None or attack.targeted:
        return None
    step = outcome.success_step[index]
    last = max(int(step.max()), attack.iterations or 0)
    fooled_by = torch.bincount(step[step >= 0], minlength=last + 1).cumsum(0)
    return [(len(step) - int(f)) / len(step) for f in fooled_by]  # exact fractions
