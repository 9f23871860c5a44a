"""Model cards: one JSON record per evaluated model and threat model (model_cards.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..contract.kind import Evaluation
from ..contract.kinds import EVALUATIONS
from ..contract.norms import Norm
from ..contract.results import Results
from ..contract.schema import DOMAIN_NORM, WORST_CASE
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import eps_text


@EVALUATIONS.register
class ModelCards(Evaluation):
    """Per model and norm, a card with RobustBench's field names where they exist: the
    robust accuracy at the largest budget (worst case over the suite's attacks of that
    norm), every budget's figure, the attacks, the weights' sha256, the indicators
    of attack failure that fired.
    Plans no cells: reads the leaderboard. ``rbg publish`` reads the cards."""

    kind = "model_cards"
    reads = ("leaderboard",)  # with the audit's indicators

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        board = tables["leaderboard"]
        cards = []
        for label, model in results.models.items():
            rows = board[(board["_model"] == label) & (board["norm"] != DOMAIN_NORM)]
            for norm in dict.fromkeys(rows["norm"]):
                cards.append(card(suite, results, model, rows[rows["norm"] == norm], norm))
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
