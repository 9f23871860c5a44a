"""Audit: the indicators of attack failure per model and budget, and the leaderboard's
``indicators`` column (names and meanings: robustbench_gan/indicators/scheme.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.norms import DOMAIN_NORM
from ..contract.plan import Plan
from ..contract.records import EvalCellSpec, Record
from ..contract.results import Results
from ..contract.schema import FLAG_TOLERANCE, WORST_CASE
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..indicators.checks import (
    SHARE,
    budget_checks,
    model_checks,
    model_indicators,
    share,
    wilson_low,
)
from ..utils import model_device
from .audit_text import indicators_text
from .common import bits, unbits

NEAR_CHANCE = 1.5  # a clean accuracy at most this many times chance is flagged
#: part of every audit cell's spec: bump it when a check changes, so cached audits rerun
CHECKS_VERSION = 4
#: the checks look at the first this many evaluation images (Pintor et al. used 10 to 100
#: per model; the probes cost about 300 passes per image and budget)
PROBED = 500
UNSTABLE = "unstable_predictions"  # decided per row, over the images its attack left robust


@dataclass(frozen=True)
class AuditSpec(EvalCellSpec):
    checks: int = CHECKS_VERSION
    budgets: list[list[Any]] = field(default_factory=list)  # [norm, eps] pairs, eps > 0


@dataclass(frozen=True)
class BudgetAudit(Record):
    """Per image at one (norm, eps), packed as bits: the probe's loss still falling on an
    image it left robust, the probe fooled it, a transfer from the stand-in fooled it."""

    norm: str
    eps: float
    incomplete: str
    white_fooled: str
    transfer_fooled: str = ""  # "" where the model declares no differentiable stand-in


@dataclass(frozen=True)
class AuditResult(Record):
    """What the checks measured on one model, the model-level indicators that fired, and the
    per-image outcomes the rows and samples.csv are marked from."""

    zero_gradient_share: float
    margin_zero_share: float
    unstable_share: float
    unbounded_acc: float
    outputs_probabilities: bool
    nondeterministic: bool
    indicators: list[str]  # over every correct image; rows read them through model_level
    correct: str
    unavailable: str
    unstable: str
    unbounded_robust: str
    budgets: list[BudgetAudit]
    graph_error: str = ""


@EVALUATIONS.register
class Audit(Evaluation):
    """Measures the indicators of attack failure on each model (once, and at each budget of
    the suite's attacks) and marks the leaderboard's rows and samples.csv's images with
    those that fire."""

    kind = "audit"
    key_columns = ("model",)
    needs = (MODELS,)
    extends = ("leaderboard", "samples")  # the indicators columns
    reads = ("leaderboard",)  # every row, those other kinds add too

    def plan(self, suite: Suite, plan: Plan) -> None:
        budgets = sorted(
            {
                (a.norm, float(e))
                for a in suite.attacks
                if a.norm != DOMAIN_NORM
                for e in a.eps
                if e > 0
            }  # fmt: skip
        )
        for model in plan.models.values():
            spec = AuditSpec.of(model, suite, budgets=[list(b) for b in budgets])
            plan.add(self.kind, model.label, f"audit {model.label}", spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: AuditSpec = cell.spec  # type: ignore[assignment]
        model = ctx.model(spec.model, spec.seed)
        x, y = ctx.eval_set(spec.n_eval)
        device = model_device(model)
        x, y = x[:PROBED].to(device), y[:PROBED].to(device)
        checks = model_checks(model, x, y, seed=spec.seed)
        budgets = []
        for norm, eps in spec.budgets:
            found = budget_checks(model, x, y, norm, float(eps))
            budgets.append(
                BudgetAudit(
                    norm=norm,
                    eps=float(eps),
                    incomplete=bits(found.incomplete),
                    white_fooled=bits(found.white_fooled),
                    transfer_fooled=""
                    if found.transfer_fooled is None
                    else bits(found.transfer_fooled),
                )
            )
        result = AuditResult(
            zero_gradient_share=share(checks.ce_zero, checks.correct),
            margin_zero_share=share(checks.margin_zero, checks.correct),
            unstable_share=share(checks.unstable, checks.correct),
            unbounded_acc=share(checks.unbounded_robust, None),
            outputs_probabilities=checks.outputs_probabilities,
            nondeterministic=checks.nondeterministic,
            indicators=model_indicators(checks),
            correct=bits(checks.correct),
            unavailable=bits(checks.unavailable),
            unstable=bits(checks.unstable | torch.tensor(checks.nondeterministic)),
            unbounded_robust=bits(checks.unbounded_robust),
            budgets=budgets,
            graph_error=checks.graph_error,
        )
        return CellOutput(result.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        audits = {label: AuditResult.from_json(finished.result)
                  for label, finished in results.of(self.kind).items()}  # fmt: skip
        board = tables["leaderboard"]
        board["indicators"] = row_indicators(board, audits, num_classes=results.num_classes)
        samples = tables["samples"]
        by_label = {(m.base, m.defense): label for label, m in results.models.items()}
        samples["indicators"] = image_indicators(samples, audits, by_label)

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        board = tables["leaderboard"]
        if not len(board):
            return []
        return [Section("Indicators of attack failure", indicators_text(board), "summary")]


def row_indicators(
    frame: pd.DataFrame, audits: Mapping[str, AuditResult], *, num_classes: int = 0
) -> pd.Series:
    """Per leaderboard row, the indicators that fire on it, ``;``-joined (meanings:
    indicators/scheme.py): those the attack kind set (its output repaired), the row-level
    sanity checks, the model's own, and at the row's budget incomplete optimization,
    transfer failure (examples from the stand-in fool images this row left robust) and
    silent success (the attack passed an adversarial point on an image it left robust)."""
    existing = frame["indicators"] if "indicators" in frame else pd.Series("", index=frame.index)
    found: dict[Any, list[str]] = {
        idx: [f for f in str(value).split(";") if f and value == value]  # NaN: none
        for idx, value in existing.items()
    }
    for _, group in frame.groupby(["target", "defense", "attack", "norm"], sort=False):
        group = group.sort_values("eps")
        best_so_far = group["robust_acc"].cummin().shift(1)
        for idx in group.index[group["robust_acc"] > best_so_far + FLAG_TOLERANCE]:
            found[idx].append("acc_rises_with_eps")
    at_zero = (frame["eps"] == 0) & (
        (frame["robust_acc"] - frame["clean_acc"]).abs() > FLAG_TOLERANCE
    )
    for idx in frame.index[at_zero]:
        found[idx].append("eps0_not_clean")
    if num_classes:
        for idx in frame.index[frame["clean_acc"] <= NEAR_CHANCE / num_classes]:
            found[idx].append("near_chance")
    for _, group in frame.groupby(["target", "defense", "norm", "eps"], sort=False):
        single = group[group["attack"] != WORST_CASE]
        black, white = single[single["_black_box"]], single[~single["_black_box"]]
        if (
            len(black)
            and len(white)
            and black["robust_acc"].min() < white["robust_acc"].min() - 0.01
        ):
            for idx in group.index:
                found[idx].append("black_box_beats_white_box")
    for idx, row in frame.iterrows():
        audit = audits.get(row.get("_model"))
        if audit is None:
            continue
        found[idx] += at_budget(row, audit) + model_level(audit.indicators, audit.nondeterministic)
    return pd.Series({idx: ";".join(names) for idx, names in found.items()}, dtype=object)


def model_level(indicators: list[str], nondeterministic: bool) -> list[str]:
    """The model's indicators that mark every row of it: all but unstable predictions,
    which :func:`at_budget` decides per row over the images the row's attack left robust
    (an indicator of attack failure needs a failure: a non-robust model is sensitive to
    noise, and an attack that breaks every image did not fail). A model whose two forward
    passes differ fires it everywhere."""
    return [name for name in indicators if name != UNSTABLE or nondeterministic]


def at_budget(row: pd.Series, audit: AuditResult) -> list[str]:
    """The budget-level indicators of one leaderboard row (none at eps 0 or in domain rows)."""
    budget = next((b for b in audit.budgets if b.norm == row["norm"] and b.eps == row["eps"]), None)
    if budget is None:
        return []
    out = []
    robust_probe = unbits(audit.correct) & ~unbits(budget.white_fooled)
    incomplete = unbits(budget.incomplete) & robust_probe
    if wilson_low(int(incomplete.sum()), int(robust_probe.sum())) > SHARE:
        out.append("incomplete_optimization")
    correct = unbits(row["_correct"]) if isinstance(row.get("_correct"), str) else None
    if correct is not None and audit.unstable and not audit.nondeterministic:
        unstable = unbits(audit.unstable)  # the probed images: the first ones
        left = correct[: len(unstable)]
        if wilson_low(int((unstable[: len(left)] & left).sum()), int(left.sum())) > SHARE:
            out.append(UNSTABLE)
    if correct is not None and len(correct) and budget.transfer_fooled:
        transfer = unbits(budget.transfer_fooled)  # the probed images: the first ones
        missed = correct[: len(transfer)] & transfer[: len(correct)]
        if missed.sum() > SHARE * len(missed):
            out.append("transfer_failure")
    silent = row.get("_silent")
    if correct is not None and isinstance(silent, str) and silent:
        if (unbits(silent) & correct).any():
            out.append("silent_success")
    return out


def image_indicators(
    samples: pd.DataFrame, audits: Mapping[str, AuditResult], labels: Mapping[tuple, str]
) -> pd.Series:
    """Per samples.csv row (a model, budget and image): the per-image indicators that fire
    on the image (its gradients, the unbounded attack, and at the budget the probe's
    incomplete optimization and, on an image no attack broke, its instability and a
    transfer that did); only the first :data:`PROBED` images are checked."""
    out = pd.Series("", index=samples.index, dtype=object)
    for (target, defense, norm, eps), group in samples.groupby(
        ["target", "defense", "norm", "eps"], sort=False
    ):
        audit = audits.get(labels.get((target, defense), ""))
        if audit is None:
            continue
        images = group["image"].to_numpy()
        robust = images[group["robust"].to_numpy().astype(bool)]
        unstable = unbits(audit.unstable)
        per_image = {
            "unavailable_gradients": unbits(audit.unavailable),
            # a randomized model is unstable everywhere; else only where no attack broke it
            UNSTABLE: unstable if audit.nondeterministic else only_on(unstable, robust),
            "unconstrained_attack_failure": unbits(audit.unbounded_robust),
        }
        budget = next((b for b in audit.budgets if b.norm == norm and b.eps == eps), None)
        if budget is not None:
            per_image["incomplete_optimization"] = unbits(budget.incomplete)
            if budget.transfer_fooled:  # on an image no attack broke (the probed ones)
                per_image["transfer_failure"] = only_on(unbits(budget.transfer_fooled), robust)
        out.loc[group.index] = [
            ";".join(name for name, mask in per_image.items() if len(mask) > i and mask[i])
            for i in images
        ]
    return out


def only_on(mask: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``mask`` (over the probed images) kept only at ``images``, false elsewhere."""
    kept = np.zeros(len(mask), dtype=bool)
    images = images[images < len(mask)]
    kept[images] = mask[images]
    return kept
