"""Audit: model-level sanity checks per model, and the leaderboard's ``flags`` column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import EvalCellSpec, Record
from ..contract.results import Results
from ..contract.schema import FLAG_TOLERANCE, WORST_CASE
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import markdown_table
from .audit_checks import CHECKS_VERSION, FLAG_MEANINGS, audit_model

NEAR_CHANCE = 1.5  # a clean accuracy at most this many times chance is flagged


@dataclass(frozen=True)
class AuditSpec(EvalCellSpec):
    checks: int = CHECKS_VERSION


@dataclass(frozen=True)
class AuditResult(Record):
    """What ``audit.audit_model`` measured and the flags it raised."""

    zero_gradient_share: float
    outputs_probabilities: bool
    nondeterministic: bool
    unbounded_acc: float
    flags: list[str]


@EVALUATIONS.register
class Audit(Evaluation):
    """Checks each model once (zero gradients, probabilities out, nondeterminism, unbounded
    PGD) and flags leaderboard rows that fail a check (audit.FLAG_MEANINGS)."""

    kind = "audit"
    key_columns = ("model",)
    needs = (MODELS,)
    extends = ("leaderboard",)  # its flags column
    reads = ("leaderboard",)  # every row, those other kinds add too

    def plan(self, suite: Suite, plan: Plan) -> None:
        for model in plan.models.values():
            spec = AuditSpec.of(model, suite)
            plan.add(self.kind, model.label, f"audit {model.label}", spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: AuditSpec = cell.spec  # type: ignore[assignment]
        model = ctx.model(spec.model, spec.seed)
        x, y = ctx.eval_set(spec.n_eval)
        result = AuditResult(**audit_model(model, x, y, seed=spec.seed))
        return CellOutput(result.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        board = tables["leaderboard"]
        model_flags = {}
        for label, finished in results.of(self.kind).items():
            model = results.models[label]
            model_flags[model.base, model.defense] = AuditResult.from_json(finished.result).flags
        board["flags"] = audit_flags(board, model_flags, num_classes=results.num_classes)

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        board = tables["leaderboard"]
        flagged = board[board["flags"] != ""]
        if not len(flagged):
            return []
        return [Section("Audit flags", flags_text(flagged))]


def audit_flags(
    frame: pd.DataFrame,
    model_flags: dict[tuple[str, str], list[str]],
    *,
    num_classes: int = 0,
) -> pd.Series:
    """Warnings a reviewer should see before trusting a row (meanings: audit.FLAG_MEANINGS).

    Row-level: ``acc_rises_with_eps``, ``eps0_not_clean``, ``near_chance`` (clean accuracy
    at most 1.5 / ``num_classes``, when known) and ``black_box_beats_white_box``
    (the frame's ``_black_box`` column marks black-box attacks); model-level flags (from the
    audit cells) are added to every row of that model, after the flags the row has (the
    attack kind's ``invalid_output`` and ``projected_output``).
    """
    existing = frame["flags"] if "flags" in frame else pd.Series("", index=frame.index)
    flags: dict[Any, list[str]] = {
        idx: [f for f in str(value).split(";") if f and value == value]  # NaN: none
        for idx, value in existing.items()
    }
    for _, group in frame.groupby(["target", "defense", "attack", "norm"], sort=False):
        group = group.sort_values("eps")
        best_so_far = group["robust_acc"].cummin().shift(1)
        for idx in group.index[group["robust_acc"] > best_so_far + FLAG_TOLERANCE]:
            flags[idx].append("acc_rises_with_eps")
    at_zero = (frame["eps"] == 0) & (
        (frame["robust_acc"] - frame["clean_acc"]).abs() > FLAG_TOLERANCE
    )
    for idx in frame.index[at_zero]:
        flags[idx].append("eps0_not_clean")
    if num_classes:
        for idx in frame.index[frame["clean_acc"] <= NEAR_CHANCE / num_classes]:
            flags[idx].append("near_chance")
    for _, group in frame.groupby(["target", "defense", "norm", "eps"], sort=False):
        single = group[group["attack"] != WORST_CASE]
        black, white = single[single["_black_box"]], single[~single["_black_box"]]
        if (
            len(black)
            and len(white)
            and black["robust_acc"].min() < white["robust_acc"].min() - 0.01
        ):
            for idx in group.index:
                flags[idx].append("black_box_beats_white_box")
    for idx, target, defense in zip(frame.index, frame["target"], frame["defense"]):
        flags[idx] += model_flags.get((target, defense), [])
    return pd.Series({idx: ";".join(found) for idx, found in flags.items()}, dtype=object)


def flags_text(flagged: pd.DataFrame) -> list[str]:
    cols = ["target", "defense", "attack", "eps", "robust_acc", "flags"]
    raised = sorted({f for flags in flagged["flags"] for f in flags.split(";")})
    legend = [f"- `{flag}`: {FLAG_MEANINGS[flag]}" for flag in raised]
    return [
        "These rows failed a sanity check and are marked (flagged) in the tables above; do not "
        "rank them until the cause is understood.",
        "",
        *legend,
        "",
        markdown_table(flagged[cols]),
    ]
