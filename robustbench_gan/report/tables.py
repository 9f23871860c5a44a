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
from ..suite import BASELINE_GAN_LABEL, Suite
from ..suite import WORST_CASE_LABEL as WORST_CASE

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
    gan_curves: pd.DataFrame
    domain_shift: pd.DataFrame
    latent: pd.DataFrame
    attack_cost: pd.DataFrame
    eps_curves: pd.DataFrame
    iteration_curves: pd.DataFrame
    references: pd.DataFrame

    def csv_files(self) -> dict[str, pd.DataFrame]:
        return {
            "leaderboard.csv": self.leaderboard,
            "transfer.csv": self.transfer,
            "ensemble.csv": self.ensemble,
            "gan.csv": self.gan,
            "gan_curves.csv": self.gan_curves,
            "domain_shift.csv": self.domain_shift,
            "latent.csv": self.latent,
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
        gan_curves=gan_curve_table(plan, records, suite.judge),
        domain_shift=domain_shift_table(plan, records),
        latent=latent_table(plan, records),
        attack_cost=attack_cost_table(suite, plan, records),
        eps_curves=leaderboard.loc[
            leaderboard["norm"] != DOMAIN_NORM, [*CURVE_KEYS, "eps", "robust_acc"]
        ].sort_values([*CURVE_KEYS, "eps"], kind="stable"),
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
        rows += model_rows + worst_case_rows(model_rows) + domain_rows(suite, plan, records, label)
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
GAN_METRIC_ORDER = [
    "fid", "fid_inception", "inception_score", "precision", "recall", "density", "coverage",
    "class_coverage", "class_kl", "label_fidelity", "nn_train_dist_fake", "nn_train_dist_test",
    "memorization_ratio",
]  # fmt: skip


def judged(name: str, judge: str) -> str:
    """Metrics computed on the judge's outputs carry its name (``fid_small_cnn``)."""
    return {"fid": f"fid_{judge}", "inception_score": f"is_{judge}"}.get(name, name)


def gan_table(suite: Suite, plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """One row per generator (the class-means baseline last); ``beats_baseline``: lower FID
    and higher coverage than the baseline row."""
    rows = []
    for label, cell in plan.gan_cells.items():
        trained = records[cell].result
        tail = max(1, len(trained["d_loss"]) // 10)
        options = trained.get("options", {})
        row: dict[str, Any] = {
            "generator": label,
            "family": plan.gan_families[label],
            "conditional": trained["conditional"],
            "loss": options.get("loss", "nonsaturating") if trained["steps"] else "",
            "d_steps": options.get("d_steps", np.nan),
            "steps": trained["steps"],
            "seconds": trained["seconds"],
            "d_loss_final": tail_mean(trained["d_loss"], tail),
            "g_loss_final": tail_mean(trained["g_loss"], tail),
        }
        for name, values in trained.get("series", {}).items():
            row[f"{name}_final"] = tail_mean(values, tail)
        if label in plan.metric_cells:
            metrics = records[plan.metric_cells[label]].result
            row["judge"] = metrics["judge"]
            values = metrics["metrics"]
            for name in [*GAN_METRIC_ORDER, *sorted(set(values) - set(GAN_METRIC_ORDER))]:
                if name in values:
                    row[judged(name, metrics["judge"])] = values[name]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["d_steps"] = frame["d_steps"].astype("Int64")  # the baseline row has none
    if BASELINE_GAN_LABEL in plan.gan_cells and suite.judge is not None:
        fid = f"fid_{suite.judge}"
        base = frame[frame["generator"] == BASELINE_GAN_LABEL].iloc[0]
        beats = (frame[fid] < base[fid]) & (frame["coverage"] > base["coverage"])
        frame["beats_baseline"] = beats.where(frame["generator"] != BASELINE_GAN_LABEL)
    return frame


def tail_mean(values: list[float], tail: int) -> float:
    return float(np.mean(values[-tail:])) if values else float("nan")


def gan_curve_table(plan: Plan, records: dict[str, CellRecord], judge: str | None) -> pd.DataFrame:
    """Per generator and training step (1-based): D and G losses, a family's extra series
    (CycleGAN's cycle_error), and the monitor's FID and coverage where measured."""
    frames = []
    for label, cell in plan.gan_cells.items():
        trained = records[cell].result
        if not trained["steps"]:
            continue
        frame = pd.DataFrame(
            {
                "generator": label,
                "step": np.arange(1, len(trained["d_loss"]) + 1),
                "d_loss": trained["d_loss"],
                "g_loss": trained["g_loss"],
                **trained.get("series", {}),
            }
        )
        monitor = pd.DataFrame(trained.get("monitor", []))
        if len(monitor):
            monitor = monitor.rename(columns=lambda c: judged(c, judge or "judge"))
            frame = frame.merge(monitor, on="step", how="left")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["generator", "step", "d_loss", "g_loss"])
    return pd.concat(frames, ignore_index=True)


# -- domain shift ---------------------------------------------------------------
DOMAIN_NORM = "domain"  # the leaderboard's norm for rows of translated test sets
DOMAIN_SHIFT_COLUMNS = [
    "target", "defense", "generator", "domain", "n_eval", "clean_acc", "translated_acc",
    "transformed_acc", "cell_id",
]  # fmt: skip


def domain_shift_table(plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """Per model and translating generator: accuracy on the test set translated to the other
    domain, and on the true transform beside it (transform domains)."""
    rows = []
    for (label, gen), cell in plan.domain_cells.items():
        model, res = plan.models[label], records[cell].result
        rows.append(
            {
                "target": model.target,
                "defense": model.defense,
                "generator": gen,
                "domain": res["domain"],
                "n_eval": res["n_eval"],
                "clean_acc": res["clean_acc"],
                "translated_acc": res["translated_acc"],
                "transformed_acc": np.nan
                if res["transformed_acc"] is None
                else res["transformed_acc"],
                "cell_id": cell,
            }
        )
    return pd.DataFrame(rows, columns=DOMAIN_SHIFT_COLUMNS)


def domain_rows(suite: Suite, plan: Plan, records: dict[str, CellRecord], label: str) -> list:
    """Leaderboard rows of model ``label`` on translated test sets: norm ``domain``, no eps."""
    rows = []
    gens = {g.label: g for g in suite.generators}
    for (model_label, gen), cell in plan.domain_cells.items():
        if model_label != label:
            continue
        model, res = plan.models[label], records[cell].result
        rows.append(
            {
                "target": model.target,
                "defense": model.defense,
                "attack": gen,
                "attack_params": json.dumps(gens[gen].to_json(), sort_keys=True),
                "norm": DOMAIN_NORM,
                "eps": np.nan,
                "n_eval": res["n_eval"],
                "clean_acc": res["clean_acc"],
                "robust_acc": res["translated_acc"],
                "attack_success_rate": res["translated_error_rate"],
                "mean_linf": np.nan,
                "mean_l2": np.nan,
                "seconds": np.nan,
                "device": res["device"],
                "versions": res["versions"],
                "cell_id": cell,
                "_black_box": False,
            }
        )
    return rows


# -- latent-space attack ----------------------------------------------------------
LATENT_COLUMNS = [
    "target", "defense", "generator", "auxiliary", "n", "target_acc_start", "target_acc_found",
    "auxiliary_agrees", "success_rate", "seconds", "cell_id",
]  # fmt: skip


def latent_table(plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """Per model: the target's accuracy on the generator's samples before and after the
    latent search, how often the auxiliary still sees the source class, and the success
    rate (target fooled, auxiliary not)."""
    rows = []
    for label, cell in plan.latent_cells.items():
        model, res = plan.models[label], records[cell].result
        rows.append({"target": model.target, "defense": model.defense, **res, "cell_id": cell})
    return pd.DataFrame(rows, columns=LATENT_COLUMNS)


# -- attack cost ------------------------------------------------------------------
def attack_cost_table(suite: Suite, plan: Plan, records: dict[str, CellRecord]) -> pd.DataFrame:
    """Per attack and eps > 0: attack time per image (mean over the models) and, for attacks
    that learn first (AdvGAN), training time per model."""
    rows = []
    for (_, attack), cell in plan.attack_cells.items():
        res = records[cell].result
        for entry in res["per_eps"]:
            if entry["eps"] > 0:
                rows.append(
                    {
                        "attack": attack,
                        "eps": entry["eps"],
                        "ms_per_image": 1000 * entry["seconds"] / max(res["n_eval"], 1),
                        "train_seconds": res.get("train_seconds", 0.0),
                    }
                )
    columns = ["attack", "eps", "ms_per_image", "train_seconds"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).groupby(["attack", "eps"], sort=False).mean().reset_index()
    return frame[columns]
