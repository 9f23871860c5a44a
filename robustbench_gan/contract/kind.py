"""What one kind of evaluation is: how it plans, runs, tabulates and reports, in one class.

A kind is a subclass of ``Evaluation`` registered with ``@EVALUATIONS.register``. The core
loops over the registered kinds and names none of them:

- the suite reader hands each kind the top-level tables it owns (``suite_sections``,
  ``read_section``);
- the planner runs every kind's ``plan_steps`` in stage order, so a kind can add cells
  after the cells it builds on (defended models after the generators they use);
- the executors run a cell with ``run`` of the kind that planned it, and ask a GPU for it
  when ``wants_gpu`` is set; a cached result that the kind finds not ``current`` (written
  before a field it reads existed) is recomputed; ``load`` turns a finished cell into the object later cells use
  (a trained classifier or GAN);
- the tables step runs every kind's ``tables`` in ``table_stage`` order, each adding or
  extending data frames of the shared ``Tables``;
- the report asks every kind for its ``plots`` and its ``sections``, sorted by their order.

Every hook has a do-nothing default: a kind that only reads other kinds' tables (ensemble
effects, references to papers) plans no cell; a kind with cells but no table of its own
(transfer cells feed transfer.csv through the attack kind's frame) adds none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .cells import Cell, CellOutput, CellRecord
    from .context import Context
    from .plan import Plan
    from .results import Results
    from .suite import Suite
    from .tables import Tables

PlanStep = tuple[int, Callable[["Suite", "Plan"], None]]


@dataclass(frozen=True)
class Section:
    """A titled part of report.md; sections are printed in ``order``."""

    order: int
    title: str
    lines: list[str]


class Evaluation:
    """Base of every kind of evaluation (see the module docstring for the hooks)."""

    kind: ClassVar[str] = ""  # the cells' kind: stored with each result, part of its id
    order: ClassVar[int] = 100  # registration order: suite sections, plan steps on ties
    stage: ClassVar[int] = 100  # when ``plan`` runs among all kinds' plan steps
    table_stage: ClassVar[int] = 100  # when ``tables`` runs among all kinds
    wants_gpu: ClassVar[bool] = True  # its cells compute on a model (one GPU each on a cluster)
    report_artifacts: ClassVar[tuple[str, ...]] = ()  # artifacts the report reads (PNG bytes)
    suite_sections: ClassVar[tuple[str, ...]] = ()  # top-level suite tables this kind reads
    key_columns: ClassVar[tuple[str, ...]] = ()  # names of its cell keys' parts (--only model=X)

    # -- suite -------------------------------------------------------------
    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        """Validate the suite's top-level table ``key`` against the core ``suite``; the value
        lands in ``suite.sections[key]``. Raise UserError with ``where`` on bad input."""
        return None

    # -- plan --------------------------------------------------------------
    def plan_steps(self) -> list[PlanStep]:
        """(stage, step) pairs; the default is ``plan`` at ``stage``."""
        return [(self.stage, self.plan)]

    def plan(self, suite: Suite, plan: Plan) -> None:
        """Add this kind's cells to ``plan`` (``plan.add``)."""

    # -- run ---------------------------------------------------------------
    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        raise NotImplementedError(f"{type(self).__name__} plans no cells to run")

    def current(self, result: Mapping[str, Any]) -> bool:
        """Whether a cached result of this kind holds everything this version reads from it;
        False makes the executor recompute the cell (its id is unchanged)."""
        return True

    def load(self, record: CellRecord, ctx: Context) -> Any:
        """The object a finished cell of this kind gives later cells (e.g. a trained model)."""
        raise NotImplementedError(f"cells of kind {self.kind!r} give nothing to load")

    # -- tables and report ---------------------------------------------------
    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        """Add or extend data frames of ``tables`` from this kind's finished cells."""

    def plots(
        self, suite: Suite, results: Results, tables: Tables, folder: Path
    ) -> dict[str, Path]:
        """Write this kind's plots into ``folder``; returns name -> path."""
        return {}

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        """This kind's parts of report.md (``plots`` maps names to paths in the report)."""
        return []
