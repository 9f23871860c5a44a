"""Ensemble effects: each ensemble-like defense beside its members (ensemble.csv)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..contract.kind import Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import markdown_table
from .attack_tables import white_box_acc
from .transfer import transferred_acc


@EVALUATIONS.register
class EnsembleEffects(Evaluation):
    """For every model defense that combines its members (``combines_members`` on its class),
    per attack and eps: its robust accuracy against its best and mean member, and its
    accuracy on examples crafted on each other model. Plans no cells: reads the leaderboard
    and transfer tables."""

    kind = "ensemble"
    reads = ("leaderboard", "transfer")
    makes = ("ensemble",)

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        board, transfer = tables["leaderboard"], tables["transfer"]
        rows = []
        for defense in suite.defenses:
            if defense.kind != "model" or not defense.combines_members:
                continue
            label = defense.model_label
            for attack in suite.attacks:
                for eps in attack.eps:
                    white = white_box_acc(board, results, label, attack.label, eps)
                    members = {
                        m: white_box_acc(board, results, m, attack.label, eps)
                        for m in defense.members
                    }
                    if np.isnan([white, *members.values()]).any():  # a partial run
                        continue
                    best = max(members, key=lambda m: members[m])
                    row: dict[str, Any] = {
                        "ensemble": label,
                        "members": "+".join(defense.members),
                        "attack": attack.label,
                        "eps": eps,
                        "ensemble_robust_acc": white,
                        "best_member": best,
                        "best_member_robust_acc": members[best],
                        "mean_member_robust_acc": float(np.mean(list(members.values()))),
                        "gain": white - members[best],
                    }
                    for m, acc in members.items():
                        row[f"member_robust_acc:{m}"] = acc
                    for source in results.models:
                        if source != label:
                            row[f"transfer_robust_acc_from:{source}"] = transferred_acc(
                                transfer, attack.label, eps, source, label
                            )
                    rows.append(row)
        tables.set("ensemble", pd.DataFrame(rows), csv="ensemble.csv")

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        frame = tables["ensemble"]
        if not len(frame):
            return []
        return [Section("Ensembles", ensemble_text(frame))]


def ensemble_text(frame: pd.DataFrame) -> list[str]:
    cols = ["ensemble", "attack", "eps", "ensemble_robust_acc", "best_member",
            "best_member_robust_acc", "mean_member_robust_acc", "gain"]  # fmt: skip
    shown = frame[frame["eps"] > 0][cols]
    return [
        "White-box attacks on the ensemble go through its averaged output. `gain` is the "
        "ensemble's robust accuracy minus its best member's; the columns "
        "`transfer_robust_acc_from:*` of ensemble.csv give its accuracy on examples crafted on "
        'each other model. An ensemble with `mode = "vote"` is evaluated by the majority vote '
        "of its members and attacked through their probability average (a vote has no "
        "gradient).",
        "",
        markdown_table(shown),
    ]
