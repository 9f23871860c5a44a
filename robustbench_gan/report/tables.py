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
    """Every kind's tables, in the order their declarations give (``table_order``); each
    kind sees only the tables it declared."""
    tables = Tables()
    for kind in EVALUATIONS.table_order():
        readable = {*kind.makes, *kind.extends, *kind.reads}
        kind.tables(
            suite, results, tables.scoped(kind.kind, readable, {*kind.makes, *kind.extends})
        )
    return tables
