"""The attack kind's report text: worst case, per-attack matrices, curves and cost."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..contract.schema import WORST_CASE
from ..render.format import markdown_table, robust_accuracy_matrix


def worst_case_text(board: pd.DataFrame) -> list[str]:
    worst = board[board["attack"] == WORST_CASE]
    if not len(worst):
        return ["Only one attack per norm was run; see the tables below."]
    lines = [
        "Per image, an image counts as robust at an eps only if it survives every attack of "
        "that norm run at that eps.",
        "",
    ]
    for norm in dict.fromkeys(worst["norm"]):
        lines += [
            f"{norm}:",
            "",
            markdown_table(robust_accuracy_matrix(board, WORST_CASE, norm)),
            "",
        ]
    return lines


def curves_text(plots: Mapping[str, str]) -> list[str]:
    lines = [
        "Robust accuracy against eps (`curves_eps.csv`) and, for iterative attacks, against the "
        "number of iterations (`curves_iterations.csv`: an image counts as robust after k "
        "iterations if the attack had not fooled it within them). A curve still falling at the "
        "last iteration means the attack needs more iterations.",
        "",
    ]
    if "robust_accuracy" in plots:
        lines.append(f"![robust accuracy against eps]({plots['robust_accuracy']})")
    return lines + [
        f"![{name}]({path})" for name, path in plots.items() if name.startswith("iterations_")
    ]


def attack_cost_text(frame: pd.DataFrame) -> list[str]:
    text = (
        "Attack cost per image (means over the models): milliseconds of this machine's wall "
        "clock (compare rows, not runs), and the model's forward and backward passes the "
        "attack spent, counted at the model's boundary (queries, for a score-based attack), "
        "which do not depend on the machine. The base's clean and final predictions are not "
        "counted; a minimal attack's one run serves every budget, so each row carries all of it."
    )
    if frame["train_seconds"].any():
        text += (
            " `train_seconds` is what an attack that learns first (AdvGAN) spent training per "
            "model, before attacking; it is not in the time per image."
        )
    else:  # no attack here learns first
        frame = frame.drop(columns=["train_seconds"])
    return [text, "", markdown_table(frame)]
