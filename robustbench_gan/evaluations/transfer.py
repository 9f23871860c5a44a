"""Transfer: each attack's adversarial examples on one model, fed to every other model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.results import Results
from ..contract.schema import TRANSFER_COLUMNS
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import safe_name
from ..render.plots import transfer_heatmap
from ..utils import predict
from .attack import AttackCellSpec, AttackOutcome
from .common import share


@dataclass(frozen=True)
class TransferSpec(Record):
    """The receiving model (stored under the key ``target``, as before)."""

    JSON_KEYS = {"receiver": "target"}

    receiver: dict[str, Any]


@dataclass(frozen=True)
class TransferBudget(Record):
    eps: float
    target_robust_acc: float
    transfer_success_rate: float


@dataclass(frozen=True)
class TransferResult(Record):
    target_clean_acc: float
    per_eps: list[TransferBudget]


@EVALUATIONS.register
class Transfer(Evaluation):
    """Per attack, source and receiving model: the receiver's accuracy on the examples the
    attack crafted on the source. Completes transfer.csv (the attack kind writes its
    diagonal) and draws one heatmap per attack."""

    kind = "transfer"
    key_columns = ("attack", "source", "receiver")
    needs = (MODELS, "attack")
    extends = ("transfer",)  # the attack kind makes it with the white-box diagonal

    def plan(self, suite: Suite, plan: Plan) -> None:
        for (source, attack_label), source_cell in list(plan.cells_of("attack").items()):
            for receiver in plan.models.values():
                if receiver.label == source:
                    continue
                key = (attack_label, source, receiver.label)
                label = f"{attack_label} {source} -> {receiver.label}"
                deps = (source_cell, *receiver.cells)
                plan.add(self.kind, key, label, TransferSpec(receiver.to_json()), deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: TransferSpec = cell.spec  # type: ignore[assignment]
        source = ctx.store.get(cell.deps[0])
        if source is None:
            raise RuntimeError(f"upstream cell {cell.deps[0]} has no result")
        adv = ctx.store.load_tensors(source.artifacts["adv"])["adv"]
        crafted = AttackCellSpec.from_json(source.spec)
        receiver = ctx.model(spec.receiver, crafted.seed)
        x, y = ctx.eval_set(crafted.n_eval)
        clean_correct = predict(receiver, x) == y
        per_eps = []
        for eps, adv_eps in zip(crafted.eps, adv):
            correct = predict(receiver, adv_eps) == y
            per_eps.append(TransferBudget(eps, share(correct), share(~correct, of=clean_correct)))
        return CellOutput(TransferResult(share(clean_correct), per_eps).to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        rows = []
        attacked = results.of("attack")
        for (attack_label, source, receiver), finished in results.of(self.kind).items():
            res = TransferResult.from_json(finished.result)
            n_eval = AttackOutcome.from_json(attacked[source, attack_label].result).n_eval
            for entry in res.per_eps:
                rows.append(
                    {
                        "attack": attack_label,
                        "eps": entry.eps,
                        "source": source,
                        "target": receiver,
                        "n_eval": n_eval,
                        "target_clean_acc": res.target_clean_acc,
                        "target_robust_acc": entry.target_robust_acc,
                        "transfer_success_rate": entry.transfer_success_rate,
                        "cell_id": finished.cell_id,
                    }
                )
        frame = tables["transfer"]
        if rows:
            crafted = pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
            frame = pd.concat([frame, crafted], ignore_index=True)
        order = list(results.models)
        frame["_s"] = frame["source"].map(order.index)
        frame["_t"] = frame["target"].map(order.index)
        frame = frame.sort_values(["attack", "eps", "_s", "_t"], kind="stable")
        tables.set("transfer", frame.drop(columns=["_s", "_t"]).reset_index(drop=True))

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        made = {}
        transfer = tables["transfer"]
        for attack in suite.attacks:
            # at eps 0 nothing is crafted, nothing transfers; with one model the grid is its
            # white-box accuracy alone (in the attack's table): no heatmap
            crafted = transfer[(transfer["attack"] == attack.label) & (transfer["eps"] > 0)]
            if crafted["source"].nunique() > 1 or crafted["target"].nunique() > 1:
                name = f"transfer_{safe_name(attack.label)}"
                made[name] = transfer_heatmap(
                    tables["transfer"], attack.label, folder / f"{name}.png"
                )
        return made

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        return [Section("Transfer", transfer_text(plots))]


def transferred_acc(
    frame: pd.DataFrame, attack: str, eps: float, source: str, receiver: str
) -> float:
    """The receiver's accuracy on ``attack``'s examples at ``eps`` crafted on ``source`` (NaN
    where that cell is not finished: a partial run)."""
    hit = frame[
        (frame["attack"] == attack)
        & (frame["eps"] == eps)
        & (frame["source"] == source)
        & (frame["target"] == receiver)
    ]
    return float(hit["target_robust_acc"].iloc[0]) if len(hit) else float("nan")


def transfer_text(plots: Mapping[str, str]) -> list[str]:
    lines = [
        "Adversarial examples crafted on the source model are fed to the target model. "
        "`target_robust_acc` is the target's accuracy on them; `transfer_success_rate` is the "
        "share of the images the target classifies correctly when clean that it misclassifies "
        "after the transfer (its denominator is those clean-correct images). The diagonal is the "
        "white-box attack.",
        "",
    ]
    return lines + [
        f"![transfer {name}]({path})"
        for name, path in plots.items()
        if name.startswith("transfer_")
    ]
