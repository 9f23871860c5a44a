"""Common corruptions (``[corruptions]``): accuracy under each corruption at each severity,
the mean corruption accuracy and Hendrycks and Dietterich's mCE and relative mCE.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019 (https://arxiv.org/abs/1903.12261): 15 corruptions of colour images
at 5 severities (CIFAR-10-C, ImageNet-C); Mu & Gilmer, "MNIST-C: A Robustness Benchmark for
Computer Vision", 2019 (https://arxiv.org/abs/1906.02337): 15 of grey digits. The suite's
corruptions default to the set of its data's channel count (``corruption_set``).

One cell per evaluated model corrupts the first ``n`` test images on the fly (the suite's seed
seeds every image's stream, so a seed gives the same images on any machine and in any batch)
and records, per corruption and severity, the accuracy and which images the model got right.

Tables: corruption.csv, one row per (model, corruption, severity) with its Wilson interval;
corruption_summary.csv, per model the clean accuracy, the mean corruption accuracy (mCA: the
mean over corruptions and severities), the worst corruption and, against the ``baseline`` model,
the mCE (per corruption the summed error over severities divided by the baseline's, averaged
over corruptions) and the relative mCE (the same with the clean error taken off both sums).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import ModelCellSpec, Record
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..corruptions import HENDRYCKS, MNIST_C, corruption_set
from ..registry import CORRUPTIONS
from ..render.format import escape, markdown_table
from ..render.robustness_plots import corruption_plot
from ..utils import batch_slices, predict, wilson
from .common import bits, share, unbits
from .robustness_settings import CorruptionSettings, read_corruptions

CORRUPTION_COLUMNS = [
    "model", "corruption", "severity", "n", "accuracy", "ci_low", "ci_high", "cell_id",
]  # fmt: skip
#: ``mean_corruption_acc`` is the mCA, ``ci_low`` and ``ci_high`` its interval
SUMMARY_COLUMNS = [
    "model", "n", "clean_acc", "mean_corruption_acc", "ci_low", "ci_high", "worst_corruption",
    "worst_corruption_acc", "mce", "relative_mce", "relative_mce_undefined", "baseline",
    "cell_id",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CorruptionSpec(ModelCellSpec):
    """The model and seed, the first ``n_eval`` test images, the severities and the
    corruptions (None: the set of the images' channel count); ``origins``: the code of the
    corruptions from outside the project, or revised since (``Registry.origin``), so that
    their cached results are computed again (none today: left out of the JSON)."""

    OPTIONAL = ("origins",)

    n_eval: int | None
    severities: tuple[int, ...]
    names: tuple[str, ...] | None
    origins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Corrupted(Record):
    """One corruption: per severity (the outcome's order) the accuracy and the images the
    model classifies right (``'0101...'`` over the test images)."""

    name: str
    accuracy: tuple[float, ...]
    correct: tuple[str, ...]


@dataclass(frozen=True)
class CorruptionOutcome(Record):
    n_eval: int
    severities: tuple[int, ...]
    clean: str  # the clean images the model classifies right
    corruptions: tuple[Corrupted, ...]
    seconds: float
    device: str


@EVALUATIONS.register
class Corruptions(Evaluation):
    """Accuracy on corrupted test images; corruption.csv, corruption_summary.csv, a plot."""

    kind = "corruptions"  # "corruption" is the registry's noun: the core may not name it
    key_columns = ("model",)
    needs = (MODELS,)
    makes = ("corruption", "corruption_summary")
    suite_sections = ("corruptions",)

    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        return read_corruptions(raw, suite)

    def plan(self, suite: Suite, plan: Plan) -> None:
        settings: CorruptionSettings | None = suite.section("corruptions")
        if settings is None:
            return
        n_eval = settings.n if settings.n is not None else suite.n_eval
        for model in plan.models.values():
            spec = CorruptionSpec.of(
                model,
                suite,
                n_eval=n_eval,
                severities=settings.severities,
                names=settings.names,
                origins=origins(settings.names),
            )
            label = f"corruptions on {model.label}"
            plan.add(self.kind, model.label, label, spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: CorruptionSpec = cell.spec  # type: ignore[assignment]
        start = time.perf_counter()
        model = ctx.model(spec.model, spec.seed)
        x, y = ctx.eval_set(spec.n_eval)
        clean = ctx.clean_predictions(spec.model, model, x) == y
        names = spec.names if spec.names is not None else corruption_set(int(x.shape[1]))
        outcomes = []
        for name in names:
            corruption = CORRUPTIONS.create(name)
            accuracy, correct = [], []
            for severity in spec.severities:
                right = torch.zeros(len(x), dtype=torch.bool)
                for rows in batch_slices(len(x), ctx.eval_batch_size):
                    images = corruption(x[rows], severity, spec.seed, start=rows.start)
                    right[rows] = predict(model, images, batch_size=ctx.eval_batch_size) == y[rows]
                accuracy.append(share(right))
                correct.append(bits(right))
            outcomes.append(Corrupted(name, tuple(accuracy), tuple(correct)))
        outcome = CorruptionOutcome(
            n_eval=len(x),
            severities=tuple(spec.severities),
            clean=bits(clean),
            corruptions=tuple(outcomes),
            seconds=time.perf_counter() - start,
            device=ctx.device_name,
        )
        return CellOutput(outcome.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        settings: CorruptionSettings | None = suite.section("corruptions")
        if settings is None:
            return
        outcomes = {
            label: (CorruptionOutcome.from_json(f.result), f.cell_id)
            for label, f in results.of(self.kind).items()
        }
        frame = corruption_table(outcomes)
        tables.set("corruption", frame, csv="corruption.csv")
        summary = summary_table(frame, outcomes, settings.baseline)
        tables.set("corruption_summary", summary, csv="corruption_summary.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        if suite.section("corruptions") is None or "corruption" not in tables:
            return {}
        frame, summary = tables["corruption"], tables["corruption_summary"]
        if not len(frame):
            return {}
        return {"corruption": corruption_plot(frame, summary, folder / "corruption.png")}

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        if suite.section("corruptions") is None or "corruption_summary" not in tables:
            return []
        summary = tables["corruption_summary"]
        if not len(summary):
            return []
        return [Section("Common corruptions", corruption_text(tables, plots))]


def origins(names: tuple[str, ...] | None) -> dict[str, dict[str, str]]:
    """``Registry.origin`` of each corruption that has one (None: of both sets)."""
    found = {}
    for name in names if names is not None else (*HENDRYCKS, *MNIST_C):
        origin = CORRUPTIONS.origin(name)
        if origin is not None:
            found[name] = dict(sorted(origin.items()))
    return found


def corruption_table(outcomes: Mapping[str, tuple[CorruptionOutcome, str]]) -> pd.DataFrame:
    """One row per (model, corruption, severity): the accuracy and its Wilson interval."""
    rows = []
    for label, (outcome, cell_id) in outcomes.items():
        for corrupted in outcome.corruptions:
            for severity, right in zip(outcome.severities, corrupted.correct):
                correct = int(unbits(right).sum())
                low, high = wilson(correct, outcome.n_eval)
                rows.append(
                    {
                        "model": label,
                        "corruption": corrupted.name,
                        "severity": severity,
                        "n": outcome.n_eval,
                        "accuracy": correct / outcome.n_eval if outcome.n_eval else math.nan,
                        "ci_low": low,
                        "ci_high": high,
                        "cell_id": cell_id,
                    }
                )
    return pd.DataFrame(rows, columns=CORRUPTION_COLUMNS)


def by_corruption(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The model's accuracy, corruptions as rows (in their order) and severities as columns."""
    part = frame[frame["model"] == model]
    order = list(dict.fromkeys(part["corruption"]))
    wide = part.pivot(index="corruption", columns="severity", values="accuracy")
    return wide.reindex(index=order)


def ratios(model: pd.Series, baseline: pd.Series) -> pd.Series:
    """Per corruption ``model / baseline``, NaN where the baseline's sum is 0 (or missing)."""
    baseline = baseline.reindex(model.index)
    return (model / baseline.where(baseline != 0)).astype(float)


def summary_table(
    frame: pd.DataFrame, outcomes: Mapping[str, tuple[CorruptionOutcome, str]], baseline: str
) -> pd.DataFrame:
    """Per model: clean accuracy, mCA with its interval, the worst corruption, mCE and
    relative mCE against ``baseline`` (Hendrycks & Dietterich 2019, Section 3)."""
    clean = {label: float(unbits(o.clean).mean()) for label, (o, _) in outcomes.items()}
    errors, drops = {}, {}  # per model and corruption: sums over severities
    for label, (outcome, _) in outcomes.items():
        n = outcome.n_eval  # summed in image counts: a baseline that lost nothing sums to 0
        right = (by_corruption(frame, label) * n).round()
        errors[label] = (n - right).sum(axis=1) / n
        drops[label] = (round(clean[label] * n) - right).sum(axis=1) / n
    rows = []
    for label, (outcome, cell_id) in outcomes.items():
        wide = by_corruption(frame, label)
        n = outcome.n_eval
        mca = float(wide.to_numpy().mean())
        means = wide.mean(axis=1)
        worst = str(means.idxmin())
        # an image's share of corrupted versions it gets right varies no more than a coin of
        # the same mean: Wilson over the n images is a conservative interval of mCA
        mca_low, mca_high = wilson(mca * n, n)
        mce = relative = math.nan
        undefined = ""
        if baseline in outcomes:
            mce = float(ratios(errors[label], errors[baseline]).mean(skipna=False))
            relative = float(ratios(drops[label], drops[baseline]).mean(skipna=False))
            zero = drops[baseline][drops[baseline] == 0].index
            undefined = ";".join(str(c) for c in zero)
        rows.append(
            {
                "model": label,
                "n": n,
                "clean_acc": clean[label],
                "mean_corruption_acc": mca,
                "ci_low": mca_low,
                "ci_high": mca_high,
                "worst_corruption": worst,
                "worst_corruption_acc": float(means[worst]),
                "mce": mce,
                "relative_mce": relative,
                "relative_mce_undefined": undefined,
                "baseline": baseline,
                "cell_id": cell_id,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def corruption_text(tables: Tables, plots: Mapping[str, str]) -> list[str]:
    summary, frame = tables["corruption_summary"], tables["corruption"]
    names = list(dict.fromkeys(frame["corruption"]))
    severities = sorted(frame["severity"].unique())
    baseline = escape(str(summary["baseline"].iloc[0]))
    lines = [
        f"Accuracy on the first {int(summary['n'].iloc[0])} test images under {len(names)} "
        f"common corruptions at severities {', '.join(str(s) for s in severities)} "
        "(Hendrycks & Dietterich, ICLR 2019; MNIST-C, Mu & Gilmer 2019, for grey digits), "
        "each image corrupted from its own stream of the suite's seed. `mean_corruption_acc` "
        "(mCA) is the mean accuracy over corruptions and severities, `ci_low` and `ci_high` "
        "a conservative 95% interval of it over the images, `worst_corruption` the one with "
        "the lowest mean over severities. `mce` and `relative_mce` compare each model's "
        f"errors with those of the baseline `{baseline}` (1 for the baseline itself; below 1 "
        "is more robust): per corruption the error summed over severities (relative: minus "
        "the clean error) divided by the baseline's, averaged over corruptions. "
        "corruption.csv holds every corruption and severity with its Wilson interval.",
        "",
    ]
    undefined = {c for text in summary["relative_mce_undefined"] for c in str(text).split(";")}
    undefined.discard("")
    if undefined:
        lines += [
            f"The relative mCE is undefined (NaN): the baseline `{baseline}` lost no accuracy "
            f"under {', '.join(sorted(escape(c) for c in undefined))}.",
            "",
        ]
    shown = summary[
        ["model", "clean_acc", "mean_corruption_acc", "ci_low", "ci_high", "worst_corruption",
         "worst_corruption_acc", "mce", "relative_mce"]
    ]  # fmt: skip
    lines += [markdown_table(shown), ""]
    if "corruption" in plots:
        lines.append(f"![corruption accuracy]({plots['corruption']})")
    return lines
