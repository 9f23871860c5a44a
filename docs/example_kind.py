"""Example of a new kind of evaluation in one file: accuracy on horizontally flipped images.

Drop a file like this into robustbench_gan/evaluations/ (or register it through the entry
point group ``robustbench_gan.evaluations``) and every suite gets one ``flip`` cell per
model, a flip.csv table and a report section; nothing else in the tree changes.
tests/test_evaluations.py runs this very file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from robustbench_gan.contract.kind import Evaluation, Section
from robustbench_gan.contract.kinds import EVALUATIONS
from robustbench_gan.contract.records import Record
from robustbench_gan.evaluations.common import share
from robustbench_gan.report.format import markdown_table


@dataclass(frozen=True)
class FlipSpec(Record):
    model: dict[str, Any]  # the plan's description of the model (ModelRef.to_json())
    n_eval: int | None
    seed: int


@dataclass(frozen=True)
class FlipResult(Record):
    clean_acc: float
    flipped_acc: float


@EVALUATIONS.register
class Flip(Evaluation):
    kind = "flip"
    stage = 65  # after the attack cells (60), before transfer (90); any order works here
    table_stage = 95

    def plan(self, suite, plan) -> None:
        for model in plan.models.values():
            spec = FlipSpec(model.to_json(), suite.n_eval, suite.seed)
            plan.add(self.kind, model.label, f"flip {model.label}", spec, model.cells)

    def run(self, cell, ctx):
        from robustbench_gan.contract.cells import CellOutput
        from robustbench_gan.utils import predict

        model = ctx.model(cell.spec.model)
        x, y = ctx.eval_set(cell.spec.n_eval)
        clean, flipped = predict(model, x) == y, predict(model, x.flip(-1)) == y
        return CellOutput(FlipResult(share(clean), share(flipped)).to_json())

    def tables(self, suite, results, tables) -> None:
        rows = [
            {"model": label, **FlipResult.from_json(f.result).to_json()}
            for label, f in results.of(self.kind).items()
        ]
        tables.set("flip", pd.DataFrame(rows), csv="flip.csv")

    def sections(self, suite, tables, plots: Mapping[str, str]) -> list[Section]:
        text = "Accuracy on the test images mirrored left to right."
        return [Section(115, "Flipped images", [text, "", markdown_table(tables["flip"])])]
