"""GAN purification: the rows of purifying defenses side by side, by how attacks saw them."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..contract.kind import Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import eps_text, markdown_table, model_name


@EVALUATIONS.register
class Purification(Evaluation):
    """A report section for every defense whose class is a ``purifier`` (Defense-GAN): its
    leaderboard rows per ``variant`` (the gradient the attacks saw). Plans no cells."""

    kind = "purification"
    reads = ("leaderboard",)  # in its section

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        purifiers = [d for d in suite.defenses if d.purifier]
        if not purifiers:
            return []
        title = "GAN purification (Defense-GAN)"
        return [Section(title, purification_text(purifiers, tables["leaderboard"]))]


def purification_text(purifiers: list, board: pd.DataFrame) -> list[str]:
    """Purifying defenses' rows side by side: the gradient the attacks saw decides the number."""
    labels = {d.label: d.variant for d in purifiers}
    part = board[board["defense"].isin(labels) & (board["eps"] > 0)].copy()
    part["model"] = [
        f"{model_name(t, d)} ({labels[d]})" for t, d in zip(part["target"], part["defense"])
    ]
    part["column"] = [f"{a} eps {eps_text(e)}" for a, e in zip(part["attack"], part["eps"])]
    matrix = part.pivot_table(index="model", columns="column", values="robust_acc", sort=False)
    return [
        "Defense-GAN classifies the generator's closest image G(z*) instead of the input. How "
        "the attacks see that projection decides the number: `naive` attacks the bare "
        "classifier and only evaluates the purified one (the examples transfer), so its "
        "robust accuracy measures how well the projection removes perturbations made for "
        "another model, not robustness, and its rows carry the `naive_evaluation` flag; "
        "`bpda` treats the projection as the identity on the backward pass and averages "
        "gradients over random restarts (BPDA + EOT, Athalye et al. 2018), the adaptive "
        "evaluation to trust; `unrolled` differentiates through every descent step. The "
        "known result is that BPDA brings the naive number down.",
        "",
        markdown_table(matrix.reset_index()),
    ]
