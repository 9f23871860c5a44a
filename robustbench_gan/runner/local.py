"""The in-process executor: runs the cells of a plan in order, skipping finished ones."""

from __future__ import annotations

import fnmatch
import sys
import time

from tqdm.auto import tqdm

from ..contract.cells import Cell, CellRecord
from ..contract.context import Context
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan


def is_finished(cell: Cell, ctx: Context, counts: dict[str, int]) -> bool:
    """True when the store holds the cell with intact artifacts; a corrupt one is reported.
    A cell whose label matches ``ctx.force`` (a shell-style pattern) is never finished."""
    if ctx.force is not None and fnmatch.fnmatchcase(cell.label, ctx.force):
        return False
    record = ctx.store.get(cell.id)
    if record is None:
        return False
    if not EVALUATIONS.get(cell.kind).current(record.result):
        why = "was written by an older version"
    elif ctx.store.artifacts_intact(record):
        counts["cached"] += 1
        return True
    else:
        why = "is corrupt or missing"
    tqdm.write(f"rbg: cached result of {cell.label!r} {why}; recomputing", file=sys.stderr)
    counts["recomputed"] += 1
    return False


def finished_line(ctx: Context, cell: Cell, done: int, total: int, seconds: float) -> None:
    """Where output is not a terminal (a log, CI), one line per finished cell with its time,
    instead of progress bars redrawn with carriage returns."""
    if ctx.progress_lines:
        print(f"rbg: [{done}/{total}] {cell.label} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def run_and_commit(cell: Cell, ctx: Context) -> float:
    """Run one cell and commit it: artifacts first, then its row in one transaction; returns
    the seconds it took."""
    start = time.perf_counter()
    output = EVALUATIONS.get(cell.kind).run(cell, ctx)
    artifacts = {name: ctx.store.put_artifact(data) for name, data in output.artifacts.items()}
    ctx.store.put(
        CellRecord(
            id=cell.id,
            kind=cell.kind,
            label=cell.label,
            spec=cell.spec.to_json(),
            result=output.result,
            artifacts=artifacts,
            seconds=time.perf_counter() - start,
        )
    )
    return time.perf_counter() - start


def execute_plan(plan: Plan, ctx: Context) -> dict[str, int]:
    """Run every unfinished cell; returns counts of cells run, cached and recomputed."""
    counts = {"run": 0, "cached": 0, "recomputed": 0}
    bar = tqdm(plan.cells, desc="cells", unit="cell", disable=not ctx.progress)
    for index, cell in enumerate(bar):
        bar.set_postfix_str(cell.label[:40], refresh=False)
        if not is_finished(cell, ctx, counts):
            seconds = run_and_commit(cell, ctx)
            counts["run"] += 1
            finished_line(ctx, cell, index + 1, len(plan.cells), seconds)
    return counts
