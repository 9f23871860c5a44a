"""The transfer grid's tables, from its cells' per-image outcomes (evaluations/transfer_grid.py).

A (surrogate, target) pair's success rate is the share of the target's clean-correct images
it misclassifies after the transfer, with its 95% Wilson interval. A surrogate that holds the
target among its members is white-box on it (``white_box``): TransferAttack's table and the
ensemble effect leave those pairs out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..contract.tables import Tables
from ..render.format import eps_text, markdown_table
from ..utils import wilson
from .common import unbits
from .transfer_settings import GridSettings, source_label

GRID_COLUMNS = [
    "attack", "eps", "surrogate", "members", "target", "white_box", "clean_correct", "fooled",
    "success_rate", "ci_low", "ci_high", "cell_id",
]  # fmt: skip
IMAGE_COLUMNS = ["attack", "eps", "surrogate", "target", "clean_correct", "still_correct"]
BY_ATTACK_COLUMNS = [
    "attack", "eps", "target", "surrogates", "success_rate", "ci_low", "ci_high",
]  # fmt: skip
EFFECT_COLUMNS = [
    "attack", "eps", "size", "surrogate", "target", "clean_correct", "fooled", "success_rate", "ci_low",
    "ci_high", "mean_member_success_rate", "best_member_success_rate", "gain_over_mean_member",
]  # fmt: skip

Outcomes = Mapping[tuple[str, str], tuple[Any, str]]  # (attack, source) -> (GridOutcome, id)


def pair(outcome: Any, index: int, eps: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The judged model ``index``'s clean-correct images and the images the transfer at
    ``eps`` fooled (None where the cell did not craft at that budget)."""
    if eps not in outcome.eps:
        return None
    judged = outcome.judged[index]
    clean = unbits(judged.clean)
    return clean, clean & ~unbits(judged.adv[outcome.eps.index(eps)])


def rate(clean: np.ndarray, fooled: np.ndarray) -> dict[str, Any]:
    n, k = int(clean.sum()), int(fooled.sum())
    low, high = wilson(k, n)
    return {
        "clean_correct": n,
        "fooled": k,
        "success_rate": k / n if n else np.nan,
        "ci_low": low,
        "ci_high": high,
    }


def grid_tables(
    settings: GridSettings, judged: tuple[str, ...], outcomes: Outcomes
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """transfer_grid.csv, transfer_grid_images.csv (per pair: the clean-correct and the still
    correct images as '0101...' over the test images, for `rbg compare`) and
    transfer_by_attack.csv (TransferAttack's table: per attack, budget and target, the mean
    success over the surrogates that do not hold the target; the interval pools their counts)."""
    rows, images = [], []
    for attack in settings.attacks:
        for members in settings.sources_of(attack):
            source = source_label(members)
            found = outcomes.get((attack.label, source))
            if found is None:  # a partial run
                continue
            outcome, cell_id = found
            for eps in settings.eps:
                for target in settings.targets:
                    index = judged.index(target)
                    got = pair(outcome, index, eps)
                    if got is None:
                        continue
                    where = {"attack": attack.label, "eps": eps, "surrogate": source}
                    rows.append({
                        **where, "members": len(members), "target": target,
                        "white_box": target in members, **rate(*got), "cell_id": cell_id,
                    })  # fmt: skip
                    outcomes_of = outcome.judged[index]
                    images.append({
                        **where, "target": target, "clean_correct": outcomes_of.clean,
                        "still_correct": outcomes_of.adv[outcome.eps.index(eps)],
                    })  # fmt: skip
    grid = pd.DataFrame(rows, columns=GRID_COLUMNS)
    return grid, pd.DataFrame(images, columns=IMAGE_COLUMNS), by_attack(grid)


def by_attack(grid: pd.DataFrame) -> pd.DataFrame:
    rows = []
    transfer = grid[~grid["white_box"].astype(bool)]
    for (attack, eps, target), group in transfer.groupby(["attack", "eps", "target"], sort=False):
        low, high = wilson(float(group["fooled"].sum()), float(group["clean_correct"].sum()))
        rows.append({
            "attack": attack, "eps": eps, "target": target, "surrogates": len(group),
            "success_rate": float(group["success_rate"].mean()), "ci_low": low, "ci_high": high,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=BY_ATTACK_COLUMNS)


def effect_table(
    settings: GridSettings, judged: tuple[str, ...], outcomes: Outcomes
) -> pd.DataFrame:
    """ensemble_effect.csv: per surrogate set of the effect's pool and held-out target of the
    pool outside it, the set's success and its members' own (mean and best)."""
    effect = settings.effect
    if effect is None:
        return pd.DataFrame(columns=EFFECT_COLUMNS)

    def success(members: tuple[str, ...], target: str) -> tuple[np.ndarray, np.ndarray] | None:
        found = outcomes.get((effect.attack, source_label(members)))
        return None if found is None else pair(found[0], judged.index(target), effect.eps)

    rows = []
    for members in effect.ensembles():
        for target in (m for m in effect.pool if m not in members):
            got = success(members, target)
            alone = [success((m,), target) for m in members]
            if got is None or any(a is None for a in alone):
                continue
            rates = [rate(*a)["success_rate"] for a in alone]
            row = {"attack": effect.attack, "eps": effect.eps, "size": len(members),
                   "surrogate": source_label(members), "target": target, **rate(*got)}  # fmt: skip
            row["mean_member_success_rate"] = float(np.mean(rates))
            row["best_member_success_rate"] = float(np.max(rates))
            row["gain_over_mean_member"] = row["success_rate"] - row["mean_member_success_rate"]
            rows.append(row)
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def effect_by_size(effect: pd.DataFrame) -> pd.DataFrame:
    """The ensemble effect per size: the success on held-out targets pooled over the pairs
    (images fooled over clean-correct images) with its interval, and the members' own mean
    success on the same pairs, weighted by the pairs' clean-correct images. The pooled rate, not the mean of the pairs' rates: the
    interval is the pooled one, and a line drawn outside its own band misleads."""
    rows = []
    for size, group in effect.groupby("size"):
        fooled, correct = float(group["fooled"].sum()), float(group["clean_correct"].sum())
        low, high = wilson(fooled, correct)
        rows.append({
            "size": int(size), "pairs": len(group),
            "success_rate": fooled / correct if correct else float("nan"),
            "ci_low": low, "ci_high": high,
            # weighted as the pooled rate is: at size 1 the two are the same number
            "mean_member_success_rate": float(
                (group["mean_member_success_rate"] * group["clean_correct"]).sum() / correct
            )
            if correct
            else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def transfer_grid_text(tables: Tables, plots: Mapping[str, Any]) -> list[str]:
    lines = [
        "Transfer attacks crafted on each surrogate (a model, or an ensemble of models: "
        "`a & b & c`) and judged on each target. The success rate is the share of the "
        "target's clean-correct images it misclassifies after the transfer; transfer_grid.csv "
        "holds every pair with its 95% Wilson interval and transfer_grid_images.csv its "
        "per-image outcomes. The table below is TransferAttack's: per attack and target, "
        "the mean success (%) over the surrogates that do not hold the target.",
        "",
    ]
    by = tables["transfer_by_attack"]
    for eps in sorted(by["eps"].unique()):
        part = by[by["eps"] == eps]
        table = part.pivot(index="attack", columns="target", values="success_rate")
        table = table.reindex(index=list(dict.fromkeys(part["attack"])))
        table = (100 * table).map(lambda v: "" if pd.isna(v) else f"{v:.1f}").reset_index()
        table.columns.name = None
        lines += [f"eps {eps_text(eps)}:", "", markdown_table(table), ""]
    lines += [f"![{n}]({p})" for n, p in plots.items() if n.startswith("transfer_grid_")]
    effect = tables["ensemble_effect"]
    if len(effect):
        summary = effect_by_size(effect).round(3)
        lines += [
            "",
            "Ensemble effect (leave the target out): success on the pool's models outside "
            f"the surrogate set, attack {effect['attack'].iloc[0]} at eps "
            f"{eps_text(effect['eps'].iloc[0])}, against the mean of the same members alone.",
            "",
            markdown_table(summary),
            "",
        ]
        if "ensemble_effect" in plots:
            lines.append(f"![ensemble effect]({plots['ensemble_effect']})")
    return lines
