"""The four result tables, built from the store's cell results with pandas.

Schemas follow DESIGN.md; every number column holds numbers (NaN where a value
is undefined), never strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..runner.plan import Plan
from ..runner.store import CellRecord, Store
from ..suite import WORST_CASE_LABEL as WORST_CASE
from ..suite import Suite

LEADERBOARD_COLUMNS = [
    "suite", "dataset", "target", "defense", "attack", "attack_params", "norm", "eps",
    "n_eval", "clean_acc", "robust_acc", "attack_success_rate", "mean_linf", "mean_l2",
    "seconds", "device", "seed", "flags", "versions", "cell_id",
]  # fmt: skip
TRANSFER_COLUMNS = [
    "attack", "eps", "source", "target", "n_eval", "target_clean_acc", "target_robust_acc",
    "transfer_success_rate", "cell_id",
]  # fmt: skip
FLAG_TOLERANCE = 1e-6


CURVE_KEYS = ["target", "defense", "attack", "norm"]


@dataclass
class Tables:
    leaderboard: pd.DataFrame
    transfer: pd.DataFrame
    ensemble: pd.DataFrame
    gan: pd.DataFrame
    eps_curves: pd.DataFrame
    iteration_curves: pd.DataFrame
    references: pd.DataFrame

    def csv_files(self) -> dict[str, pd.DataFrame]:
        return {
            "leaderboard.csv": self.leaderboard,
            "transfer.csv": self.transfer,
            "ensemble.csv": self.ensemble,
            "gan.csv": self.gan,
            "curves_eps.csv": self.eps_curves,
            "curves_iterations.csv": self.iteration_curves,
            "references.csv": self.references,
        }


def build_tables(suite: Suite, plan: Plan, store: Store) -> Tables:
    records = {cell.id: record(store, cell.id) for cell in plan.cells}
    leaderboard = leaderboard_table(suite, plan, records)
    transfer = transfer_table(suite, plan, records)
    return Tables(
        leaderboard=leaderboard,
        transfer=transfer,
        ensemble=ensemble_table(suite, plan, leaderboard, transfer),
        gan=gan_table(suite, plan, records),
        eps_curves=leaderboard[[*CURVE_KEYS, "eps", "robust_acc"]].sort_values(
            [*CURVE_KEYS, "eps"], kind="stable"
        ),
        iteration_curves=iteration_table(plan, records),
        references=reference_table(suite, plan, leaderboard, transfer),
    )


def record(store: Store, cell_id: str) -> CellRecord:
    found = store.get(cell_id)
    if found is None:
        raise RuntimeError(f"cell {cell_id} has no result; run the plan first")
    return found


# -- leaderboard ----------------------------------------------------------------
def leaderboard_table(suite: Suite, plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    attack_specs = {a.label: a for a in suite.attacks}
    for label, model in plan.models.items():
        model_rows = []
        for attack_label, spec in attack_specs.items():
            rec = records[plan.attack_cells[label, attack_label]]
            res = rec.result
            for entry in res["per_eps"]:
                model_rows.append(
                    {
                        "target": model.target,
                        "defense": model.defense,
                        "attack": attack_label,
                        "attack_params": json.dumps(spec.to_json(), sort_keys=True),
                        "norm": res["norm"],
                        "eps": entry["eps"],
                        "n_eval": res["n_eval"],
                        "clean_acc": res["clean_acc"],
                        "robust_acc": entry["robust_acc"],
                        "attack_success_rate": entry["attack_success_rate"],
                        "mean_linf": entry["mean_linf"],
                        "mean_l2": entry["mean_l2"],
                        "seconds": entry["seconds"],
                        "device": res["device"],
                        "versions": res["versions"],
                        "cell_id": rec.id,
                        "_correct": entry["correct"],
                        "_clean": res["clean_correct"],
                        "_black_box": res["black_box"],
                    }
                )
        rows += model_rows + worst_case_rows(model_rows)
    frame = pd.DataFrame(rows)
    frame["suite"] = suite.name
    frame["dataset"] = suite.dataset.name
    frame["seed"] = suite.seed
    model_flags = {
        (model.target, model.defense): records[plan.audit_cells[label]].result["flags"]
        for label, model in plan.models.items()
    }
    frame["flags"] = audit_flags(frame, model_flags)
    return frame[LEADERBOARD_COLUMNS].reset_index(drop=True)


def worst_case_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per eps, a sample counts as robust only if it survives every attack run at that eps.

    Only attacks of one norm are combined; the norms of the worst-case perturbation are
    not tracked per sample, so mean_linf and mean_l2 are NaN in these rows.
    """
    out = []
    by_key: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["norm"], row["eps"]), []).append(row)
    for (norm, eps), group in by_key.items():
        if len(group) < 2:
            continue
        correct = np.logical_and.reduce([mask(r["_correct"]) for r in group])
        clean = mask(group[0]["_clean"])
        first = group[0]
        ids = sorted({r["cell_id"] for r in group})
        out.append(
            {
                **{k: first[k] for k in ("target", "defense", "n_eval", "clean_acc", "device")},
                "attack": WORST_CASE,
                "attack_params": json.dumps({"attacks": [r["attack"] for r in group]}),
                "norm": norm,
                "eps": eps,
                "robust_acc": int(correct.sum()) / len(correct),
                "attack_success_rate": int((clean & ~correct).sum()) / max(int(clean.sum()), 1),
                "mean_linf": float("nan"),
                "mean_l2": float("nan"),
                "seconds": float(sum(r["seconds"] for r in group)),
                "versions": first["versions"],
                "cell_id": "+".join(ids),
                "_correct": "",
                "_clean": "",
                "_black_box": False,
            }
        )
    return out


def mask(bits: str) -> np.ndarray:
    return np.frombuffer(bits.encode(), dtype=np.uint8) == ord("1")


def audit_flags(frame: pd.DataFrame, model_flags: dict[tuple[str, str], list[str]]) -> pd.Series:
    """Warnings a reviewer should see before trusting a row (meanings: audit.FLAG_MEANINGS).

    Row-level: ``acc_rises_with_eps``, ``eps0_not_clean`` and ``black_box_beats_white_box``;
    model-level flags (from the audit cells) are added to every row of that model.
    """
    flags: dict[Any, list[str]] = {idx: [] for idx in frame.index}
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


def iteration_table(plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """Robust accuracy after each iteration, for attacks that report when images fall."""
    rows = []
    for (label, attack), cell_id in plan.attack_cells.items():
        model = plan.models[label]
        res = records[cell_id].result
        for entry in res["per_eps"]:
            for iteration, acc in enumerate(entry.get("iterations") or []):
                rows.append(
                    {
                        "target": model.target,
                        "defense": model.defense,
                        "attack": attack,
                        "norm": res["norm"],
                        "eps": entry["eps"],
                        "iteration": iteration,
                        "robust_acc": acc,
                    }
                )
    return pd.DataFrame(rows, columns=[*CURVE_KEYS, "eps", "iteration", "robust_acc"])


# -- transfer -------------------------------------------------------------------
def transfer_table(suite: Suite, plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """Examples crafted on the source, evaluated on the target; the diagonal is white-box.

    transfer_success_rate = (target right on clean and wrong on the example) /
    (target right on clean).
    """
    rows = []
    for (model_label, attack_label), cell_id in plan.attack_cells.items():
        res = records[cell_id].result
        for entry in res["per_eps"]:
            rows.append(
                {
                    "attack": attack_label,
                    "eps": entry["eps"],
                    "source": model_label,
                    "target": model_label,
                    "n_eval": res["n_eval"],
                    "target_clean_acc": res["clean_acc"],
                    "target_robust_acc": entry["robust_acc"],
                    "transfer_success_rate": entry["attack_success_rate"],
                    "cell_id": cell_id,
                }
            )
    for (attack_label, source, target), cell_id in plan.transfer_cells.items():
        res = records[cell_id].result
        n_eval = records[plan.attack_cells[source, attack_label]].result["n_eval"]
        for entry in res["per_eps"]:
            rows.append(
                {
                    "attack": attack_label,
                    "eps": entry["eps"],
                    "source": source,
                    "target": target,
                    "n_eval": n_eval,
                    "target_clean_acc": res["target_clean_acc"],
                    "target_robust_acc": entry["target_robust_acc"],
                    "transfer_success_rate": entry["transfer_success_rate"],
                    "cell_id": cell_id,
                }
            )
    order = list(plan.models)
    frame = pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
    frame["_s"] = frame["source"].map(order.index)
    frame["_t"] = frame["target"].map(order.index)
    frame = frame.sort_values(["attack", "eps", "_s", "_t"], kind="stable")
    return frame.drop(columns=["_s", "_t"]).reset_index(drop=True)


# -- ensembles ------------------------------------------------------------------
def ensemble_table(
    suite: Suite, plan: Plan, leaderboard: pd.DataFrame, transfer: pd.DataFrame
) -> pd.DataFrame:
    """One row per (ensemble, attack, eps): the ensemble against its members."""
    rows = []
    for defense in suite.defenses:
        if defense.kind != "model" or defense.name != "ensemble":
            continue
        label = defense.model_label
        for attack in suite.attacks:
            for eps in attack.eps:
                white = white_box_acc(leaderboard, plan, label, attack.label, eps)
                members = {
                    m: white_box_acc(leaderboard, plan, m, attack.label, eps)
                    for m in defense.members
                }
                best = max(members, key=lambda m: members[m])
                row: dict[str, Any] = {
                    "ensemble": label,
                    "members": "+".join(defense.members),
                    "attack": attack.label,
                    "eps": eps,
                    "ensemble_robust_acc": white,
                    "best_member": best,
                    "best_member_robust_acc": members[best],
                    "mean_member_robust_acc": float(np.mean(list(members.values()))),
                    "gain": white - members[best],
                }
                for m, acc in members.items():
                    row[f"member_robust_acc:{m}"] = acc
                for source in plan.models:
                    if source != label:
                        row[f"transfer_robust_acc_from:{source}"] = transferred_acc(
                            transfer, attack.label, eps, source, label
                        )
                rows.append(row)
    return pd.DataFrame(rows)


def white_box_acc(board: pd.DataFrame, plan: Plan, label: str, attack: str, eps: float) -> float:
    model = plan.models[label]
    hit = board[
        (board["target"] == model.target)
        & (board["defense"] == model.defense)
        & (board["attack"] == attack)
        & (board["eps"] == eps)
    ]
    return float(hit["robust_acc"].iloc[0])


def transferred_acc(
    frame: pd.DataFrame, attack: str, eps: float, source: str, target: str
) -> float:
    hit = frame[
        (frame["attack"] == attack)
        & (frame["eps"] == eps)
        & (frame["source"] == source)
        & (frame["target"] == target)
    ]
    return float(hit["target_robust_acc"].iloc[0])


# -- published figures -------------------------------------------------------
def reference_table(
    suite: Suite, plan: Plan, leaderboard: pd.DataFrame, transfer: pd.DataFrame
) -> pd.DataFrame:
    """Each [[reference]] of the suite beside the same quantity measured here."""
    rows = []
    for ref in suite.references:
        if ref.source is None:
            ours = white_box_acc(leaderboard, plan, ref.model, ref.attack, ref.eps)
        else:
            ours = transferred_acc(transfer, ref.attack, ref.eps, ref.source, ref.model)
        if ref.metric in ("error", "transfer_error"):
            ours = 1 - ours
        rows.append(
            {
                "paper": ref.paper,
                "setting": ref.setting,
                "metric": ref.metric,
                "model": ref.model if ref.source is None else f"{ref.source} -> {ref.model}",
                "attack": ref.attack,
                "eps": ref.eps,
                "paper_value": ref.value,
                "ours": ours,
                "difference": ours - ref.value,
            }
        )
    columns = [
        "paper",
        "setting",
        "metric",
        "model",
        "attack",
        "eps",
        "paper_value",
        "ours",
        "difference",
    ]
    return pd.DataFrame(rows, columns=columns)


# -- generators -----------------------------------------------------------------
def gan_table(suite: Suite, plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    rows = []
    for gen in suite.generators:
        trained = records[plan.gan_cells[gen.label]].result
        tail = max(1, len(trained["d_loss"]) // 10)
        row: dict[str, Any] = {
            "generator": gen.label,
            "family": gen.name,
            "conditional": trained["conditional"],
            "steps": trained["steps"],
            "seconds": trained["seconds"],
            "d_loss_final": float(np.mean(trained["d_loss"][-tail:])),
            "g_loss_final": float(np.mean(trained["g_loss"][-tail:])),
        }
        if gen.label in plan.metric_cells:
            metrics = records[plan.metric_cells[gen.label]].result
            judge = metrics["judge"]
            values = dict(metrics["metrics"])
            row["judge"] = judge
            row[f"fid_{judge}"] = values.pop("fid")
            row.update(values)
        rows.append(row)
    return pd.DataFrame(rows)
