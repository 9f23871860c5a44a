"""The tables step: every kind of evaluation adds or extends data frames of one ``Tables``
from the finished cells (the attack kind starts the leaderboard, the domain-shift kind
appends its rows, the audit kind flags them, ...).
"""

from __future__ import annotations

from ..contract.kinds import EVALUATIONS
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables

__all__ = ["Tables", "build_tables"]


def build_tables(suite: Suite, results: Results) -> Tables:
    """Every kind's tables, in table-stage order."""
    tables = Tables()
    for kind in sorted(EVALUATIONS.ordered(), key=lambda k: k.table_stage):
        kind.tables(suite, results, tables)
    return tables
