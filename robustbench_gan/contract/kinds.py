"""The registry of evaluation kinds: the built-ins of ``robustbench_gan.evaluations``, found by
that package's name at first use (the contract imports no kind), plus entry points."""

from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import TypeVar

from ..errors import UserError
from .kind import Evaluation, PlanStep
from .order import Step, ordered

E = TypeVar("E", bound=type[Evaluation])
GROUP = "robustbench_gan.evaluations"
BUILTINS = "robustbench_gan.evaluations"  # the package of the built-in kinds


class EvaluationRegistry:
    """Kind name -> one instance of its Evaluation class.

    Every module of ``robustbench_gan.evaluations`` is imported on first use, so a new kind
    is one new file; third-party packages add kinds through the entry-point group
    ``robustbench_gan.evaluations`` (each naming an Evaluation subclass).
    """

    def __init__(self) -> None:
        self._kinds: dict[str, Evaluation] = {}
        self._loaded = False

    def register(self, cls: E) -> E:
        """Class decorator: register ``cls`` under its ``kind`` (or its module's name)."""
        name = cls.kind or cls.__module__.rsplit(".", 1)[-1]
        if name in self._kinds:
            raise ValueError(f"evaluation kind {name!r} is already registered")
        self._kinds[name] = cls()
        return cls

    def remove(self, name: str) -> None:
        """Unregister kind ``name`` (tests that add a kind of their own clean up with it)."""
        del self._kinds[name]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(BUILTINS)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):  # helper modules register nothing
                importlib.import_module(f"{BUILTINS}.{module.name}")
        for entry in metadata.entry_points(group=GROUP):
            try:
                cls = entry.load()
            except Exception as exc:  # a broken third-party kind is the user's to fix
                raise UserError(f"evaluation plugin {entry.name!r} failed to load: {exc}") from exc
            if cls not in {type(k) for k in self._kinds.values()}:
                self.register(cls)

    def ordered(self) -> list[Evaluation]:
        """Every kind, by name."""
        self._load()
        return [self._kinds[name] for name in sorted(self._kinds)]

    def plan_steps(self) -> list[PlanStep]:
        """Every kind's plan steps, each after the steps giving what it needs."""
        steps = [
            Step(f"{name}[{i}]", frozenset(step.needs), frozenset(step.gives), step)
            for name, kind in zip(self.names(), self.ordered())
            for i, step in enumerate(kind.plan_steps())
        ]
        return [s.value for s in ordered(steps)]

    def table_order(self) -> list[Evaluation]:
        """Every kind in the order its tables can be built: a table's maker first, then the
        kinds extending it, then those reading it whole."""
        steps = []
        for name, kind in zip(self.names(), self.ordered()):
            needs = {("made", t) for t in kind.extends} | {("done", t) for t in kind.reads}
            gives = {(what, t) for t in kind.makes for what in ("made", "done")}
            gives |= {("done", t) for t in kind.extends}
            steps.append(Step(name, frozenset(needs), frozenset(gives), kind))
        return [s.value for s in ordered(steps)]

    def get(self, kind: str) -> Evaluation:
        """The kind whose cells are of kind ``kind``."""
        self._load()
        for evaluation in self._kinds.values():
            if evaluation.kind == kind:
                return evaluation
        raise KeyError(f"no evaluation kind runs cells of kind {kind!r}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self._kinds)


EVALUATIONS = EvaluationRegistry()
