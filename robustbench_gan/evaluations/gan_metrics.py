"""Generator metrics: FID and friends on the judge, sample grids, and the gan.csv table."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import TARGETS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.results import Results
from ..contract.suite import BASELINE_GAN_LABEL, Suite
from ..contract.tables import Tables
from ..gans.grid import save_sample_grid
from ..gans.inception import InceptionFeatures
from ..gans.metrics import gan_metrics
from ..render.format import markdown_table
from .common import artifact_pngs, declared_domains
from .train_gan import judged, needs_features, trained

METRICS_VERSION = 2  # bump when gan_metrics adds or changes a metric
GAN_METRIC_ORDER = [
    "fid", "fid_inception", "inception_score", "precision", "recall", "density", "coverage",
    "class_coverage", "class_kl", "label_fidelity", "nn_train_dist_fake", "nn_train_dist_test",
    "memorization_ratio",
]  # fmt: skip


@dataclass(frozen=True)
class MetricsSpec(Record):
    OPTIONAL = ("inception_weights",)

    n: int
    seed: int
    judge: str
    metrics: int = METRICS_VERSION
    inception_weights: str | None = None


@dataclass(frozen=True)
class MetricsResult(Record):
    """``domains``: a translator of several domains' metrics per domain (gan.csv has one row
    for each; ``metrics`` is then empty, as nothing reads a pool of its domains)."""

    OPTIONAL = ("domains",)

    metrics: dict[str, float]
    judge: str
    domains: dict[str, dict[str, float]] = field(default_factory=dict)


@EVALUATIONS.register
class GanMetrics(Evaluation):
    """Per generator: metrics on the judge's features (and Inception-v3's with local weights)
    and a sample grid; builds gan.csv from these and the training results."""

    kind = "gan_metrics"
    key_columns = ("generator",)
    needs = (TARGETS, "train_gan")  # the judge is a target
    makes = ("gan",)
    report_artifacts = ("grid",)

    def plan(self, suite: Suite, plan: Plan) -> None:
        if suite.judge is None:
            return
        judge_cell = plan.models[suite.judge].train_cell
        assert judge_cell is not None  # the judge is a target: trained
        for label, gan_cell in plan.cells_of("train_gan").items():
            spec = MetricsSpec(
                suite.gan_metric_samples,
                suite.seed,
                suite.judge,
                inception_weights=suite.inception_weights,
            )
            plan.add(self.kind, label, f"metrics {label}", spec, (gan_cell, judge_cell))

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: MetricsSpec = cell.spec  # type: ignore[assignment]
        gan_cell, judge_cell = cell.deps
        gan, judge = ctx.load(gan_cell), ctx.load(judge_cell)
        needs_features(judge, spec.judge)
        inception = None
        if spec.inception_weights:
            inception = inception_features(spec.inception_weights, str(ctx.device))
        data = ctx.data

        def measure(domain: str | None = None) -> dict[str, float]:
            return gan_metrics(
                gan, judge, data.x_test, data.y_test, n=spec.n, seed=spec.seed,
                device=ctx.device, x_train=data.x_train, inception=inception, domain=domain,
            )  # fmt: skip

        domains = getattr(gan, "translated_domains", ())
        per_domain = {d: measure(d) for d in domains} if len(domains) > 1 else {}
        metrics = {} if per_domain else measure()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "grid.png"
            grid = save_sample_grid(gan, path, seed=spec.seed, x=data.x_test).read_bytes()
        result = MetricsResult(metrics, spec.judge, per_domain)
        return CellOutput(result.to_json(), {"grid": grid})

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        tables.set("gan", gan_table(suite, results), csv="gan.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        return artifact_pngs(results.of(self.kind), "grid", folder, "gan_samples_")

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        frame = tables["gan"]
        if not len(frame):
            return []
        return [Section("Generators", gan_text(frame, plots))]


@functools.lru_cache(maxsize=1)
def inception_features(path: str, device: str) -> InceptionFeatures:
    """Inception-v3 loaded once per process, not once per generator's metrics cell."""
    return InceptionFeatures(path, device=device)


def gan_table(suite: Suite, results: Results) -> pd.DataFrame:
    """One row per generator (the class-means baseline last), one per domain for a
    translator of several domains; ``domain``: the domain a translator's row is about;
    ``beats_baseline``: lower FID and higher coverage than the baseline row."""
    rows = []
    measured = results.of("gan_metrics")
    for label, result in trained(results).items():
        tail = max(1, len(result.d_loss) // 10)
        finished = results.of("train_gan")[label]
        row: dict[str, Any] = {
            "generator": label,
            "family": finished.spec["generator"]["name"],
            "domain": "",
            "conditional": result.conditional,
            "loss": result.options.get("loss", "nonsaturating") if result.steps else "",
            "d_steps": result.options.get("d_steps", np.nan),
            "steps": result.steps,
            "seconds": result.seconds,
            "d_loss_final": tail_mean(result.d_loss, tail),
            "g_loss_final": tail_mean(result.g_loss, tail),
        }
        for name, values in result.series.items():
            row[f"{name}_final"] = tail_mean(values, tail)
        metrics = MetricsResult.from_json(measured[label].result) if label in measured else None
        generator = finished.spec["generator"]
        domains = declared_domains(generator["name"], generator["params"])
        if metrics is not None and metrics.domains:
            for domain in sorted(metrics.domains, key=order_of(domains)):  # the entry's order
                values = metrics.domains[domain]
                rows.append(with_metrics({**row, "domain": domain}, metrics.judge, values))
            continue
        row["domain"] = domains[0] if domains else ""
        rows.append(row if metrics is None else with_metrics(row, metrics.judge, metrics.metrics))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["d_steps"] = frame["d_steps"].astype("Int64")  # the baseline row has none
    if BASELINE_GAN_LABEL in measured and suite.judge is not None:  # (not in a partial run)
        fid = f"fid_{suite.judge}"
        base = frame[frame["generator"] == BASELINE_GAN_LABEL].iloc[0]
        beats = (frame[fid] < base[fid]) & (frame["coverage"] > base["coverage"])
        frame["beats_baseline"] = beats.where(frame["generator"] != BASELINE_GAN_LABEL)
    return frame


def with_metrics(row: dict[str, Any], judge: str, values: dict[str, float]) -> dict[str, Any]:
    """``row`` with the judge's name and its metrics, in ``GAN_METRIC_ORDER`` then by name."""
    row = {**row, "judge": judge}
    for name in [*GAN_METRIC_ORDER, *sorted(set(values) - set(GAN_METRIC_ORDER))]:
        if name in values:
            row[judged(name, judge)] = values[name]
    return row


def order_of(names: tuple[str, ...]) -> Any:
    """A sort key that puts ``names`` first, in their order."""
    return lambda name: (names.index(name) if name in names else len(names), name)


def tail_mean(values: list[float], tail: int) -> float:
    return float(np.mean(values[-tail:])) if values else float("nan")


def gan_text(frame: pd.DataFrame, plots: Mapping[str, str]) -> list[str]:
    lines = [
        "FID is computed on the penultimate features of the suite's own classifier named in the "
        "column (not Inception features, so values are not comparable with published FIDs; "
        "`fid_inception` appears only when the suite points to local Inception-v3 weights). "
        "`is_<judge>` is the Inception Score computed with that classifier: "
        "exp(E KL(p(y|x) || p(y))), between 1 and the number of classes. "
        "Precision/recall follow Kynkäänniemi et al. 2019 (k-NN manifolds, k = 5), density and "
        "coverage Naeem et al. 2020. Class coverage is the share of classes that receive at "
        "least half the uniform share of the judge's predictions and `class_kl` the KL "
        "divergence of the predicted class frequencies from uniform (mode collapse shows in "
        "both); label fidelity is the share of conditional samples that the judge classifies "
        "as the class they were generated for (for a translating generator: the share whose "
        "class survives the translation back from the row's `domain`, one row per domain it "
        "translates into). Memorisation: "
        "`nn_train_dist_fake` and `nn_train_dist_test` are median pixel L2 distances to the "
        "nearest training image from the generated and from real test images; a "
        "`memorization_ratio` (their quotient) well below 1 means samples copy training images.",
        "",
        "The `baseline` row is not a GAN: class-mean images plus Gaussian noise. "
        "`beats_baseline` says whether a generator has a lower FID and a higher coverage than "
        "it; one that does not has learned less than the class means.",
        "",
        markdown_table(frame),
        "",
    ]
    names = [n for n in plots if n.startswith("gan_samples_")] + [
        n for n in plots if n.startswith("gan_") and not n.startswith("gan_samples_")
    ]
    return lines + [f"![{name}]({plots[name]})" for name in names]
