"""The audit's report section: per model, whether its evaluation passed every indicator, the
legend of those that fired and the rows they mark."""

from __future__ import annotations

import pandas as pd

from ..indicators.scheme import INDICATORS, PINTOR, meaning, split
from ..render.format import markdown_table


def indicators_text(board: pd.DataFrame) -> list[str]:
    """Markdown lines: a pass/fail line per model, then the legend and the marked rows."""
    lines = [
        "Each row of the leaderboard is checked against the indicators of attack failure "
        f"({PINTOR}: does the evaluation show signs that its attacks failed?) and the sanity "
        "checks of AutoAttack and Carlini et al. 2019; the `indicators` column of "
        "leaderboard.csv names those that fired, and samples.csv those of each image.",
        "",
    ]
    for (target, defense), rows in board.groupby(["target", "defense"], sort=False):
        fired = sorted({name for value in rows["indicators"] for name in split(value)})
        model = target if defense == "none" else f"{target}+{defense}"
        verdict = (
            "passed every indicator"
            if not fired
            else "fired: " + ", ".join(f"`{name}`" for name in fired)
        )
        lines.append(f"- **{model}**: {verdict}")
    marked = board[board["indicators"].map(lambda v: bool(split(v)))]
    if not len(marked):
        return lines
    raised = sorted({name for value in marked["indicators"] for name in split(value)},
                    key=lambda n: list(INDICATORS).index(n) if n in INDICATORS else 99)  # fmt: skip
    legend = [f"- `{name}`: {meaning(name)}" for name in raised]
    cols = ["target", "defense", "attack", "eps", "robust_acc", "indicators"]
    return [
        *lines,
        "",
        "Do not rank the marked rows until the cause is understood; where an indicator "
        "names a failure of the attacks, the `adaptive` attack runs its remedy.",
        "",
        *legend,
        "",
        markdown_table(marked[cols]),
    ]
