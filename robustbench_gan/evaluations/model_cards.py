"""Model cards: one JSON record per evaluated model and threat model (model_cards.json), with
the model's common-corruption and certified robustness beside the adversarial figures where the
suite measured them (``[corruptions]``, ``[certify]``), each figure with its 95% interval."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..contract.kind import Evaluation
from ..contract.kinds import EVALUATIONS
from ..contract.norms import Norm
from ..contract.results import Results
from ..contract.schema import CARD_SECTION_KEYS, DOMAIN_NORM, WORST_CASE
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import eps_text
from ..utils import wilson


@EVALUATIONS.register
class ModelCards(Evaluation):
    """Per model and norm, a card with RobustBench's field names where they exist: the
    robust accuracy at the largest budget (worst case over the suite's attacks of that
    norm), every budget's figure, the attacks, the weights' sha256, the indicators
    of attack failure that fired; and where the suite measured them, the mean corruption
    accuracy with the worst corruption (``corruptions``) and the certified accuracy at each
    radius (``certified``), the same on every card of the model.
    Plans no cells: reads the tables. ``rbg publish`` reads the cards."""

    kind = "model_cards"
    # the leaderboard with the audit's indicators; the others only where the suite has them
    reads = ("leaderboard", "corruption", "corruption_summary", "certified")

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        board = tables["leaderboard"]
        cards = []
        for label, model in results.models.items():
            found = (corruption_fields(tables, label), certified_fields(tables, label))
            extra = {k: v for k, v in zip(CARD_SECTION_KEYS, found) if v is not None}
            rows = board[(board["_model"] == label) & (board["norm"] != DOMAIN_NORM)]
            for norm in dict.fromkeys(rows["norm"]):
                cards.append(card(suite, results, model, rows[rows["norm"] == norm], norm) | extra)
        tables.documents["model_cards.json"] = cards


def card(suite: Suite, results: Results, model: Any, rows: pd.DataFrame, norm: str) -> dict:
    attacks = [a for a in dict.fromkeys(rows["attack"]) if a != WORST_CASE]
    by_eps = worst_by_eps(rows)
    eps = max(by_eps)
    fired = sorted({f for text in rows["indicators"] for f in str(text).split(";") if f})
    return {
        "name": model.label,
        "target": model.base,
        "architecture": model.architecture,
        "defense": model.defense,
        "dataset": results.dataset or suite.dataset.name,
        "threat_model": Norm(norm).display,  # RobustBench's spelling: Linf, L2
        "eps": eps_text(eps),
        "clean_acc": float(rows["clean_acc"].iloc[0]),
        "robust_acc": by_eps[eps],
        "robust_acc_ci": interval(by_eps[eps], int(rows["n_eval"].iloc[0])),
        "robust_acc_by_eps": {eps_text(e): acc for e, acc in sorted(by_eps.items())},
        "attacks": attacks,
        "n_examples": int(rows["n_eval"].iloc[0]),
        "number_forward_passes": model.networks,
        "seed": suite.seed,
        "suite": suite.name,
        "versions": results.versions,
        "indicators": fired,
        "weights_sha256": model.weights_sha256,
    }


def worst_by_eps(rows: pd.DataFrame) -> dict[float, float]:
    """Per budget, the worst-case row's robust accuracy, or the only attack's."""
    out = {}
    for eps, group in rows.groupby("eps", sort=True):
        worst = group[group["attack"] == WORST_CASE]
        chosen = worst if len(worst) else group
        out[float(eps)] = float(chosen["robust_acc"].min())
    return out


def interval(accuracy: float, n: int) -> list[float]:
    """The 95% Wilson interval of an accuracy over ``n`` images, as [low, high]."""
    return list(wilson(round(accuracy * n), n))


def corruption_fields(tables: Tables, label: str) -> dict | None:
    """The card's ``corruptions``: mCA and the worst corruption (its mean over severities),
    each with its interval over the images, and the mCE against the suite's baseline."""
    if "corruption_summary" not in tables:
        return None
    found = tables["corruption_summary"]
    found = found[found["model"] == label]
    if found.empty:
        return None
    row = found.iloc[0]
    n = int(row["n"])
    frame = tables["corruption"]
    frame = frame[frame["model"] == label]
    return {
        "n_examples": n,
        "n_corruptions": int(frame["corruption"].nunique()),
        "severities": sorted(int(s) for s in frame["severity"].unique()),
        "mean_corruption_acc": float(row["mean_corruption_acc"]),
        "mean_corruption_acc_ci": [float(row["ci_low"]), float(row["ci_high"])],
        "worst_corruption": str(row["worst_corruption"]),
        "worst_corruption_acc": float(row["worst_corruption_acc"]),
        "worst_corruption_acc_ci": interval(float(row["worst_corruption_acc"]), n),
        "mce": none_if_nan(row["mce"]),
        "relative_mce": none_if_nan(row["relative_mce"]),
        "baseline": str(row["baseline"]),
    }


def certified_fields(tables: Tables, label: str) -> dict | None:
    """The card's ``certified``: randomized smoothing's parameters and, per L2 radius, the
    certified accuracy with its interval."""
    if "certified" not in tables:
        return None
    rows = tables["certified"]
    rows = rows[rows["model"] == label].sort_values("radius")
    if rows.empty:
        return None
    first = rows.iloc[0]
    return {
        "threat_model": Norm("l2").display,
        "n_examples": int(first["n_eval"]),
        "sigma": float(first["sigma"]),
        "n0": int(first["n0"]),
        "n": int(first["n"]),
        "alpha": float(first["alpha"]),
        "smoothed_clean_acc": float(first["smoothed_clean_acc"]),
        "certified_acc_by_radius": {
            f"{float(r['radius']):g}": {
                "certified_acc": float(r["certified_acc"]),
                "ci": [float(r["ci_low"]), float(r["ci_high"])],
            }
            for _, r in rows.iterrows()
        },
    }


def none_if_nan(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if number != number else number
