"""Attacks: every attack on every model at every budget, the leaderboard and its curves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..attacks.base import AttackResult
from ..checkpoint import tensors_to_bytes
from ..registry import ATTACKS
from ..report.format import markdown_table, robust_accuracy_matrix, safe_name
from ..report.plots import iteration_plot, robust_accuracy_plot
from ..report.results import Results
from ..report.schema import (
    CURVE_KEYS,
    DOMAIN_NORM,
    LEADERBOARD_COLUMNS,
    TRANSFER_COLUMNS,
    WORST_CASE,
)
from ..report.tables import Tables
from ..runner.context import CellOutput, Context, build
from ..runner.plan import Cell, Plan
from ..suite import Suite
from ..utils import torch_generator
from .attack_text import attack_cost_text, curves_text, worst_case_text
from .base import Evaluation, Section
from .common import bits, share, unbits
from .records import Record
from .registry import EVALUATIONS


@dataclass(frozen=True)
class AttackCellSpec(Record):
    """One attack entry on one model at all its budgets."""

    model: dict[str, Any]
    attack: dict[str, Any]
    eps: list[float]
    n_eval: int | None
    seed: int


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

    OPTIONAL = ("fooled_by",)


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

    OPTIONAL = ("parts",)


@EVALUATIONS.register
class Attack(Evaluation):
    """Runs each [[attacks]] entry on each model; keeps the adversarial examples (for the
    transfer cells). Tables: leaderboard.csv (with the per-image worst case over the attacks
    of a norm), the diagonal of transfer.csv, curves_eps.csv, curves_iterations.csv and the
    attack-cost table."""

    kind = "attack"
    order = 50
    stage = 60
    table_stage = 10

    def plan(self, suite: Suite, plan: Plan) -> None:
        for model in plan.models.values():
            for attack in suite.attacks:
                spec = AttackCellSpec(
                    model.to_json(), attack.to_json(), list(attack.eps), suite.n_eval, suite.seed
                )
                label = f"{attack.label} on {model.label}"
                plan.add(self.kind, (model.label, attack.label), label, spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: AttackCellSpec = cell.spec  # type: ignore[assignment]
        model = ctx.model(spec.model)
        attack = build(ATTACKS, spec.attack, {"seed": spec.seed, "batch_size": ctx.eval_batch_size})
        x, y = ctx.eval_set(spec.n_eval)
        if getattr(attack, "needs_training_data", False):  # AdvGAN: learns on the training split
            attack.fit(model, ctx.data.x_train, ctx.data.y_train, spec.eps)
        target_class = (
            random_classes(y, ctx.data.num_classes, spec.seed) if attack.targeted else None
        )
        outcome: AttackResult = attack(model, x, y, spec.eps, target_class=target_class)
        fooled_by = attack.fooled_by if attack.parts else None
        delta = (outcome.adv - x.unsqueeze(0)).flatten(2)
        correct = outcome.pred == y.unsqueeze(0)
        clean_correct = outcome.clean_pred == y
        per_eps = [
            BudgetResult(
                eps=eps,
                robust_acc=share(correct[i]),
                attack_success_rate=share(~correct[i], of=clean_correct),
                mean_linf=float(delta[i].abs().amax(1).mean()),
                mean_l2=float(delta[i].norm(dim=1).mean()),
                seconds=outcome.seconds[i],
                correct=bits(correct[i]),
                iterations=iteration_curve(outcome, i, attack),
                fooled_by=fooled_by[i].tolist() if fooled_by else None,
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
        )
        return CellOutput(result.to_json(), {"adv": tensors_to_bytes({"adv": outcome.adv})})

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

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        made = {
            "robust_accuracy": robust_accuracy_plot(
                tables["leaderboard"], folder / "robust_accuracy.png"
            )
        }
        curves = tables["iteration_curves"]
        for attack in suite.attacks:
            part = curves[curves["attack"] == attack.label]
            if len(part):
                name = f"iterations_{safe_name(attack.label)}"
                made[name] = iteration_plot(part, attack.label, folder / f"{name}.png")
        return made

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        board = tables["leaderboard"]
        out = [Section(20, "Worst case over all attacks", worst_case_text(board))]
        for attack, norm in dict.fromkeys(zip(board["attack"], board["norm"])):
            if attack != WORST_CASE and norm != DOMAIN_NORM:
                table = markdown_table(robust_accuracy_matrix(board, attack, norm))
                out.append(Section(30, f"Attack `{attack}` ({norm})", [table]))
        out.append(Section(40, "Robustness curves", curves_text(plots)))
        cost = tables["attack_cost"]
        if len(cost):
            out.append(Section(120, "Attack cost", attack_cost_text(cost)))
        return out


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
    return [1 - int(f) / len(step) for f in fooled_by]


# -- tables ---------------------------------------------------------------------
Outcomes = dict[tuple[str, str], tuple[str, AttackOutcome]]  # (model, attack) -> (cell, result)


def leaderboard_table(suite: Suite, results: Results, outcomes: Outcomes) -> pd.DataFrame:
    """One row per model, attack and eps, then per model the worst case over its attacks.
    Private columns for later stages: ``_correct``, ``_clean``, ``_black_box``, ``_model``
    (the model's suite label), ``_fooled_by`` (a composite's part that fooled each image)."""
    rows: list[dict[str, Any]] = []
    for label, model in results.models.items():
        model_rows = []
        for attack in suite.attacks:
            cell_id, res = outcomes[label, attack.label]
            for entry in res.per_eps:
                model_rows.append(
                    {
                        "target": model.base,
                        "defense": model.defense,
                        "attack": attack.label,
                        "attack_params": json.dumps(attack.to_json(), sort_keys=True),
                        "norm": res.norm,
                        "eps": entry.eps,
                        "n_eval": res.n_eval,
                        "clean_acc": res.clean_acc,
                        "robust_acc": entry.robust_acc,
                        "attack_success_rate": entry.attack_success_rate,
                        "mean_linf": entry.mean_linf,
                        "mean_l2": entry.mean_l2,
                        "seconds": entry.seconds,
                        "device": res.device,
                        "versions": res.versions,
                        "cell_id": cell_id,
                        "_correct": entry.correct,
                        "_clean": res.clean_correct,
                        "_black_box": res.black_box,
                        "_model": label,
                        "_fooled_by": [res.parts[k] if k >= 0 else "" for k in entry.fooled_by]
                        if entry.fooled_by is not None
                        else None,
                    }
                )
        rows += model_rows + worst_case_rows(model_rows)
    frame = pd.DataFrame(rows)
    frame["suite"] = suite.name
    frame["dataset"] = suite.dataset.name
    frame["seed"] = suite.seed
    frame["flags"] = ""  # filled by the audit kind
    private = ["_correct", "_clean", "_black_box", "_model", "_fooled_by"]
    return frame[[*LEADERBOARD_COLUMNS, *private]]


def worst_case_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per eps, a sample counts as robust only if it survives every attack run at that eps.

    Only attacks of one norm are combined; the norms of the worst-case perturbation are
    not tracked per sample, so mean_linf and mean_l2 are NaN in these rows.
    """
    out = []
    by_key: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["norm"], row["eps"]), []).append(row)
    for (norm, eps), group in by_key.items():
        if len(group) < 2:
            continue
        correct = np.logical_and.reduce([unbits(r["_correct"]) for r in group])
        clean = unbits(group[0]["_clean"])
        first = group[0]
        ids = sorted({r["cell_id"] for r in group})
        out.append(
            {
                **{k: first[k] for k in ("target", "defense", "n_eval", "clean_acc", "device")},
                "attack": WORST_CASE,
                "attack_params": json.dumps({"attacks": [r["attack"] for r in group]}),
                "norm": norm,
                "eps": eps,
                "robust_acc": int(correct.sum()) / len(correct),
                "attack_success_rate": int((clean & ~correct).sum()) / max(int(clean.sum()), 1),
                "mean_linf": float("nan"),
                "mean_l2": float("nan"),
                "seconds": float(sum(r["seconds"] for r in group)),
                "versions": first["versions"],
                "cell_id": "+".join(ids),
                "_correct": "",
                "_clean": "",
                "_black_box": False,
                "_model": first["_model"],
            }
        )
    return out


def white_box_transfer(outcomes: Outcomes) -> pd.DataFrame:
    """The diagonal of transfer.csv: each model attacked white-box (source = target)."""
    rows = []
    for (model_label, attack_label), (cell_id, res) in outcomes.items():
        for entry in res.per_eps:
            rows.append(
                {
                    "attack": attack_label,
                    "eps": entry.eps,
                    "source": model_label,
                    "target": model_label,
                    "n_eval": res.n_eval,
                    "target_clean_acc": res.clean_acc,
                    "target_robust_acc": entry.robust_acc,
                    "transfer_success_rate": entry.attack_success_rate,
                    "cell_id": cell_id,
                }
            )
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def iteration_table(results: Results, outcomes: Outcomes) -> pd.DataFrame:
    """Robust accuracy after each iteration, for attacks that report when images fall."""
    rows = []
    for (label, attack), (_, res) in outcomes.items():
        model = results.models[label]
        for entry in res.per_eps:
            for iteration, acc in enumerate(entry.iterations or []):
                rows.append(
                    {
                        "target": model.base,
                        "defense": model.defense,
                        "attack": attack,
                        "norm": res.norm,
                        "eps": entry.eps,
                        "iteration": iteration,
                        "robust_acc": acc,
                    }
                )
    return pd.DataFrame(rows, columns=[*CURVE_KEYS, "eps", "iteration", "robust_acc"])


def attack_cost_table(outcomes: Outcomes) -> pd.DataFrame:
    """Per attack and eps > 0: attack time per image (mean over the models) and, for attacks
    that learn first (AdvGAN), training time per model."""
    rows = []
    for (_, attack), (_, res) in outcomes.items():
        for entry in res.per_eps:
            if entry.eps > 0:
                rows.append(
                    {
                        "attack": attack,
                        "eps": entry.eps,
                        "ms_per_image": 1000 * entry.seconds / max(res.n_eval, 1),
                        "train_seconds": res.train_seconds,
                    }
                )
    columns = ["attack", "eps", "ms_per_image", "train_seconds"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).groupby(["attack", "eps"], sort=False).mean().reset_index()
    return frame[columns]


def white_box_acc(
    board: pd.DataFrame, results: Results, label: str, attack: str, eps: float
) -> float:
    """Model ``label``'s robust accuracy under ``attack`` at ``eps`` (the leaderboard's)."""
    model = results.models[label]
    hit = board[
        (board["target"] == model.base)
        & (board["defense"] == model.defense)
        & (board["attack"] == attack)
        & (board["eps"] == eps)
    ]
    return float(hit["robust_acc"].iloc[0])
