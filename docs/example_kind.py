"""Example of a new kind of evaluation in one file: accuracy on horizontally flipped images.

Drop a file like this into robustbench_gan/evaluations/ (or register it through the entry
point group ``robustbench_gan.evaluations``) and every suite gets one ``flip`` cell per
model, a flip.csv table and a report section; nothing else in the tree changes.
tests/test_evaluations.py runs this very file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from robustbench_gan.contract.kind import MODELS, Evaluation, Section
from robustbench_gan.contract.kinds import EVALUATIONS
from robustbench_gan.contract.records import EvalCellSpec, Record
from robustbench_gan.evaluations.common import share
from robustbench_gan.render.format import markdown_table


@dataclass(frozen=True)
class FlipSpec(EvalCellSpec):
    """The model, the test images it sees and the seed (EvalCellSpec's fields) are all."""


@dataclass(frozen=True)
class FlipResult(Record):
    clean_acc: float
    flipped_acc: float


@EVALUATIONS.register
class Flip(Evaluation):
    kind = "flip"
    needs = (MODELS,)  # it plans a cell per model: after every model is planned
    makes = ("flip",)  # the one table it writes (it reads none)

    def plan(self, suite, plan) -> None:
        for model in plan.models.values():
            spec = FlipSpec.of(model, suite)
            plan.add(self.kind, model.label, f"flip {model.label}", spec, model.cells)

    def run(self, cell, ctx):
        from robustbench_gan.contract.cells import CellOutput
        from robustbench_gan.utils import predict

        model = ctx.model(cell.spec.model, cell.spec.seed)
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
        return [Section("Flipped images", [text, "", markdown_table(tables["flip"])])]
