"""report.md: a header, then every kind's sections: summaries, body, appendices, each part
in the kinds' table order."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..contract.kind import PARTS
from ..contract.kinds import EVALUATIONS
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import escape, lines_of


def render_report(
    suite: Suite,
    tables: Tables,
    plots: Mapping[str, str],
    *,
    device: str,
    versions: str,
) -> str:
    board = tables["leaderboard"]
    # where the cells ran (`rbg report` renders again in a process of its own thread count)
    if "device" in board and board["device"].notna().any():
        device = ", ".join(dict.fromkeys(board["device"].dropna().astype(str)))
    lines = [
        f"# {suite.name}: robustness report",
        "",
        escape(suite.description),
        "",
        f"Dataset `{suite.dataset.name}`{source_text(suite, board)}, {attacked(board)} test "
        "images attacked, "
        f"seed {suite.seed}, device {device}, {versions}.",
        "Budgets are on the [0, 1] pixel scale, Linf unless an attack's norm says L2. Robust "
        "accuracy is the share of test images still classified correctly after the attack "
        "(misclassified clean images count as not robust).",
        "",
        "Tables of this run: "
        + ", ".join(f"`{name}`" for name in [*tables.csv_files(), *tables.documents])
        + " (a table the suite has nothing for is not written).",
        "",
    ]
    sections = [
        s for kind in EVALUATIONS.table_order() for s in kind.sections(suite, tables, plots)
    ]
    for part in PARTS:
        for section in (s for s in sections if s.part == part):
            lines += lines_of(section.title, section.lines)
    return "\n".join(lines).rstrip() + "\n"


def source_text(suite: Suite, board: pd.DataFrame) -> str:
    """`` (leaderboard name `X`)`` where the leaderboard names the data by its content (an
    image folder), else nothing."""
    names = {str(d) for d in board.get("dataset", [])} - {suite.dataset.name}
    return f" (leaderboard name `{sorted(names)[0]}`)" if len(names) == 1 else ""


def attacked(board: pd.DataFrame) -> str:
    """How many test images the attacks saw ('no' in a partial run without attack cells)."""
    return str(int(board["n_eval"].iloc[0])) if len(board) else "no"
