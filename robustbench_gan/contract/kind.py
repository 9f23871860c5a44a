"""What one kind of evaluation is: how it plans, runs, tabulates and reports, in one class.

A kind is a subclass of ``Evaluation`` registered with ``@EVALUATIONS.register``. The core
loops over the registered kinds and names none of them. A kind declares what it builds on,
and the order of the kinds follows from those declarations (contract/order.py), never from
numbers a new kind would have to guess:

- the suite reader hands each kind the top-level tables it owns (``suite_sections``,
  ``read_section``);
- the planner runs every kind's plan steps (``plan_steps``) after the steps that give what
  they ``need``: another kind's cells (its kind name), or the plan's models (``TARGETS``:
  every [[targets]] model; ``MODELS``: every model the suite evaluates, defended ones too);
- the executors run a cell with ``run`` of the kind that planned it, and ask a GPU for it
  when ``wants_gpu`` is set; a cached result that the kind finds not ``current`` (written
  before a field it reads existed) is recomputed; ``load`` turns a finished cell into the
  object later cells use (a trained classifier or GAN);
- the tables step runs every kind's ``tables`` with the tables it declared: those it
  ``makes``, those it ``extends`` (adds rows or columns to, after their maker) and those it
  ``reads`` (complete: after their maker and every other kind extending them); reading or
  writing a table not declared is an error;
- the report asks every kind for its ``plots`` and its ``sections``: summaries first, then
  the body, then appendices, each part in the kinds' table order.

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

#: plan products besides the kinds' cells: every [[targets]] model is in ``plan.models``
TARGETS = "targets"
#: every model the suite evaluates (targets and defended models) is in ``plan.models``
MODELS = "models"
#: a report section's part: summaries lead report.md, appendices close it
PARTS = ("summary", "body", "appendix")


@dataclass(frozen=True)
class PlanStep:
    """One planning step of a kind: ``run(suite, plan)`` after every step giving what it
    ``needs``; it ``gives`` its kind's cells and whatever else it declares."""

    run: Callable[[Suite, Plan], None]
    needs: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A titled part of report.md, in one of the report's ``PARTS``."""

    title: str
    lines: list[str]
    part: str = "body"

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"a section's part is one of {PARTS}, got {self.part!r}")


class Evaluation:
    """Base of every kind of evaluation (see the module docstring for the hooks)."""

    kind: ClassVar[str] = ""  # the cells' kind: stored with each result, part of its id
    needs: ClassVar[tuple[str, ...]] = ()  # what the plan holds before ``plan`` runs
    gives: ClassVar[tuple[str, ...]] = ()  # what ``plan`` adds besides its cells (TARGETS)
    makes: ClassVar[tuple[str, ...]] = ()  # tables ``tables`` creates
    extends: ClassVar[tuple[str, ...]] = ()  # tables it adds rows or columns to
    reads: ClassVar[tuple[str, ...]] = ()  # tables it needs complete
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
        """This kind's planning steps; the default is ``plan``, after what ``needs`` names,
        giving this kind's cells and ``gives``."""
        return [PlanStep(self.plan, self.needs, (self.kind, *self.gives))]

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
