"""The attack kind's tables: the leaderboard with its worst-case rows, the white-box diagonal
of transfer.csv, the iteration curves and the attack cost."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..contract.results import Results
from ..contract.schema import (
    CURVE_KEYS,
    LEADERBOARD_COLUMNS,
    PRIVATE_COLUMNS,
    TRANSFER_COLUMNS,
    WORST_CASE,
    LeaderboardRow,
)
from ..contract.suite import Suite
from .common import bits, unbits

if TYPE_CHECKING:
    from .attack import AttackOutcome, BudgetResult

Outcomes = dict[tuple[str, str], tuple[str, "AttackOutcome"]]  # (model, attack) -> (cell, result)


def leaderboard_table(suite: Suite, results: Results, outcomes: Outcomes) -> pd.DataFrame:
    """One row per model, attack and eps, then per model the worst case over its attacks.
    Private columns for later stages: ``_correct``, ``_clean``, ``_black_box``, ``_model``
    (the model's suite label), ``_fooled_by`` (a composite's part that fooled each image)."""
    rows: list[LeaderboardRow] = []
    for label, model in results.models.items():
        model_rows: list[LeaderboardRow] = []
        for attack in suite.attacks:
            if (label, attack.label) not in outcomes:  # a partial run (--only)
                continue
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
                        "forward_passes": entry.forward_passes,
                        "backward_passes": entry.backward_passes,
                        "device": res.device,
                        "versions": res.versions,
                        "cell_id": cell_id,
                        "indicators": output_indicators(entry),
                        "_correct": entry.correct,
                        "_clean": res.clean_correct,
                        "_black_box": res.black_box,
                        "_model": label,
                        "_fooled_by": [res.parts[k] if k >= 0 else "" for k in entry.fooled_by]
                        if entry.fooled_by is not None
                        else None,
                        "_silent": entry.silent,
                    }
                )
        rows += model_rows + worst_case_rows(model_rows)
    if not rows:  # a partial run without attack cells
        return pd.DataFrame(columns=[*LEADERBOARD_COLUMNS, *PRIVATE_COLUMNS])
    frame = pd.DataFrame(rows)
    frame["suite"] = suite.name
    frame["dataset"] = results.dataset or suite.dataset.name
    frame["seed"] = suite.seed  # the audit kind adds its indicators to the attack's own
    return frame[[*LEADERBOARD_COLUMNS, *PRIVATE_COLUMNS]]


def worst_case_rows(rows: list[LeaderboardRow]) -> list[LeaderboardRow]:
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
        silent = [unbits(r["_silent"]) for r in group if r["_silent"]]
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
                **{k: total(r[k] for r in group) for k in ("forward_passes", "backward_passes")},
                "versions": first["versions"],
                "cell_id": "+".join(ids),
                "indicators": "",
                "_correct": bits(correct),
                "_clean": first["_clean"],
                "_black_box": False,
                "_model": first["_model"],
                # an image left robust that some attack's path had fooled
                "_silent": bits(np.logical_or.reduce(silent) & correct) if silent else "",
            }
        )
    return out


def output_indicators(entry: BudgetResult) -> str:
    """The row's indicators for what the base had to repair in the attack's output."""
    found = [("invalid_output", entry.invalid_output), ("projected_output", entry.projected_output)]
    return ";".join(name for name, count in found if count)


def total(values: Any) -> float | None:
    """The sum of per-image pass counts, or None when an attack did not report its own."""
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


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
    """Per attack and eps > 0: attack time and model passes per image (means over the models)
    and, for attacks that learn first (AdvGAN), training time per model."""
    rows = []
    for (_, attack), (_, res) in outcomes.items():
        for entry in res.per_eps:
            if entry.eps > 0:
                rows.append(
                    {
                        "attack": attack,
                        "eps": entry.eps,
                        "ms_per_image": 1000 * entry.seconds / max(res.n_eval, 1),
                        "forward_passes": entry.forward_passes,
                        "backward_passes": entry.backward_passes,
                        "train_seconds": res.train_seconds,
                    }
                )
    columns = [
        "attack",
        "eps",
        "ms_per_image",
        "forward_passes",
        "backward_passes",
        "train_seconds",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).groupby(["attack", "eps"], sort=False).mean().reset_index()
    return frame[columns]


def white_box_acc(
    board: pd.DataFrame, results: Results, label: str, attack: str, eps: float
) -> float:
    """Model ``label``'s robust accuracy under ``attack`` at ``eps`` (the leaderboard's; NaN
    where that cell is not finished: a partial run)."""
    model = results.models.get(label)
    if model is None:
        return float("nan")
    hit = board[
        (board["target"] == model.base)
        & (board["defense"] == model.defense)
        & (board["attack"] == attack)
        & (board["eps"] == eps)
    ]
    return float(hit["robust_acc"].iloc[0]) if len(hit) else float("nan")
