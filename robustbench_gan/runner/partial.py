"""A partial run (`--only`): the finished part of a plan and what run.json says of it (the
note on report.md is report/outputs.py's).

A run whose cells are not all stored yet still writes its tables and report, of the finished
part of the plan (a plan cut to those cells: the tables step sees a suite with fewer cells);
report.md says so under its title, and run.json holds the same as ``partial``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from .store import Store


def finished_part(plan: Plan, store: Store) -> Plan:
    """The cells of ``plan`` that ``store`` holds (in a form this version reads) and whose
    upstream cells it holds too: ``plan`` itself once every cell is finished."""
    done: set[str] = set()
    for cell in plan.cells:  # upstream before downstream
        if any(dep not in done for dep in cell.deps):
            continue
        record = store.get(cell.id)
        if record is not None and EVALUATIONS.get(cell.kind).current(record.result):
            done.add(cell.id)
    return plan if len(done) == len(plan.cells) else plan.part(done)


def partial_entry(only: Sequence[str], done: Plan, plan: Plan) -> dict[str, Any] | None:
    """What run.json says of a run that left cells of the suite to run (None: it did not)."""
    if len(done.cells) == len(plan.cells):
        return None
    return {"only": list(only), "finished": len(done.cells), "cells": len(plan.cells)}
