"""Translators judged per domain: does a domain classifier place each translation in its
target domain, does the class survive it, and how large is the translator (gan.csv)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from ..contract.cells import Cell, CellOutput
from ..contract.configs import TrainConfig
from ..contract.context import Context, build
from ..contract.kind import TARGETS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..gans.translation_domains import INVERSES, DomainB
from ..models.train import train_classifier
from ..registry import CLASSIFIERS
from ..render.format import markdown_table
from ..utils import predict, seed_everything, torch_generator
from .common import share
from .domain_shift import planned_domains
from .train_gan import domain_dataset

DOMAIN_METRICS_VERSION = 1  # bump when a metric is added or changed
CLASSIFIER_EPOCHS = 4  # the domain classifier sees every training image once per domain
COLUMNS = ["g_params", "d_params", "domain_accuracy", "true_domain_accuracy",
           "label_fidelity_forward"]  # fmt: skip


@dataclass(frozen=True)
class DomainMetricsSpec(Record):
    """``domains``: every domain the suite's translators use (the classifier's classes after
    the suite's own images); ``classifier``: the judge's architecture, trained anew."""

    domains: list[str]
    classifier: dict[str, Any]
    train: dict[str, Any]
    n: int
    seed: int
    version: int = DOMAIN_METRICS_VERSION


@dataclass(frozen=True)
class DomainMetricsResult(Record):
    domains: dict[str, dict[str, float]]  # target domain -> metric -> value
    g_params: int
    d_params: int
    classifier_accuracy: float  # the domain classifier on real test images of every domain
    seconds: dict[str, float] = field(default_factory=dict)


@EVALUATIONS.register
class DomainMetrics(Evaluation):
    """Per translating generator: its parameter count and, for each domain it translates
    into, ``domain_accuracy`` (the share of translated test images that a domain classifier,
    trained on real images of the suite's domains, assigns to the target domain),
    ``true_domain_accuracy`` (the same classifier on the true counterparts: the ceiling)
    and ``label_fidelity_forward`` (the share the judge classifies correctly once the
    transform is undone, for invertible transforms). Adds these columns to gan.csv."""

    kind = "domain_metrics"
    key_columns = ("generator",)
    needs = (TARGETS, "train_gan")  # the judge is a target
    extends = ("gan",)  # its columns

    def plan(self, suite: Suite, plan: Plan) -> None:
        translators = [(g, planned_domains(g)) for g in suite.generators]
        translators = [(g, d) for g, d in translators if d]
        judge = next((t for t in suite.targets if t.label == suite.judge), None)
        if not translators or judge is None or judge.loaded:
            return
        union = list(dict.fromkeys(d for _, domains in translators for d in domains))
        train = {"epochs": CLASSIFIER_EPOCHS, "batch_size": suite.train.batch_size,
                 "lr": suite.train.lr}  # fmt: skip
        classifier = {"name": judge.name, "params": dict(sorted(judge.params.items()))}
        spec = DomainMetricsSpec(union, classifier, train, suite.gan_metric_samples, suite.seed)
        judge_cell = plan.models[judge.label].train_cell
        gans = plan.cells_of("train_gan")
        for gen, _ in translators:
            deps = (gans[gen.label], judge_cell)
            plan.add(self.kind, gen.label, f"domain metrics {gen.label}", spec, deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: DomainMetricsSpec = cell.spec  # type: ignore[assignment]
        gan, judge = ctx.load(cell.deps[0]), ctx.load(cell.deps[1])
        shape = tuple(ctx.data.shape)
        domains = {d: DomainB(d, shape) for d in spec.domains}
        for name, domain in domains.items():
            if not domain.is_transform:
                domain.attach(*domain_dataset(ctx, name, spec.seed))
        classifier = domain_classifier(ctx, spec, domains)
        idx = torch.randperm(len(ctx.data.x_test), generator=torch_generator(spec.seed))
        x, y = ctx.data.x_test[idx[: spec.n]], ctx.data.y_test[idx[: spec.n]]
        classes = {name: i for i, name in enumerate(domains, start=1)}
        real = [x, *(d.counterparts(x, split="test") for d in domains.values())]
        labels = torch.arange(len(real)).repeat_interleave(len(x))
        accuracy = share(predict(classifier, torch.cat(real)) == labels)
        per_domain = {}
        for name in gan.translated_domains:
            moved = gan.translate_to(x, name)
            true = domains[name].counterparts(x, split="test")
            forward = math.nan
            if name in INVERSES:
                forward = share(predict(judge, INVERSES[name](moved)) == y)
            per_domain[name] = {
                "domain_accuracy": share(predict(classifier, moved) == classes[name]),
                "true_domain_accuracy": share(predict(classifier, true) == classes[name]),
                "label_fidelity_forward": forward,
            }
        result = DomainMetricsResult(
            per_domain,
            g_params=count(gan.generator),
            d_params=count(gan.discriminator),
            classifier_accuracy=accuracy,
        )
        return CellOutput(result.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        found = {label: DomainMetricsResult.from_json(f.result)
                 for label, f in results.of(self.kind).items()}  # fmt: skip
        if not found or "gan" not in tables or not len(tables["gan"]):
            return
        frame = tables["gan"].copy()
        values: dict[str, list[float]] = {c: [] for c in COLUMNS}
        for _, row in frame.iterrows():
            res = found.get(row["generator"])
            metrics = res.domains.get(row["domain"], {}) if res is not None else {}
            values["g_params"].append(res.g_params if res is not None else math.nan)
            values["d_params"].append(res.d_params if res is not None else math.nan)
            for name in COLUMNS[2:]:
                values[name].append(metrics.get(name, math.nan))
        at = list(frame.columns).index("beats_baseline") if "beats_baseline" in frame else None
        for i, name in enumerate(COLUMNS):
            frame.insert(len(frame.columns) if at is None else at + i, name, values[name])
        for name in ("g_params", "d_params"):
            frame[name] = frame[name].astype("Int64")
        tables.set("gan", frame, csv="gan.csv")

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        if "gan" not in tables or "domain_accuracy" not in tables["gan"]:
            return []
        return [Section("Translators by domain", translator_text(tables["gan"]))]


def domain_classifier(
    ctx: Context, spec: DomainMetricsSpec, domains: dict[str, DomainB]
) -> torch.nn.Module:
    """The judge's architecture trained to tell the suite's images (class 0) from their
    counterparts in each domain (class i), on every training image in every domain."""
    x = ctx.data.x_train
    images: list[Tensor] = [x, *(d.counterparts(x, split="train") for d in domains.values())]
    labels = torch.arange(len(images)).repeat_interleave(len(x))
    seed_everything(spec.seed)
    inputs = {"in_shape": ctx.data.shape, "num_classes": len(images)}
    model = build(CLASSIFIERS, spec.classifier, inputs)
    config = TrainConfig(**spec.train)
    train_classifier(
        model, torch.cat(images), labels, config=config, seed=spec.seed, device=ctx.device,
        progress=ctx.progress, desc="domain classifier",
    )  # fmt: skip
    return model.eval()


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def translator_text(frame: pd.DataFrame) -> list[str]:
    wanted = ["generator", "domain", "steps", "seconds", "g_params", "d_params",
              *[c for c in frame.columns if c.startswith("fid_")], "label_fidelity",
              "label_fidelity_forward", "domain_accuracy", "true_domain_accuracy",
              "cycle_error_final"]  # fmt: skip
    rows = frame[frame["domain_accuracy"].notna()]
    return [
        "Each translator per domain it translates into, on the same test images: training "
        "`seconds` and parameters (`g_params`, `d_params`: every generator and discriminator "
        "it trains, for all its domains at once), FID and `label_fidelity` of the translation "
        "back to the suite's domain (as in the Generators table), `label_fidelity_forward`: "
        "the share of translations into the domain that the judge classifies correctly once "
        "the true transform is undone (invertible transforms only), `domain_accuracy`: the "
        "share that a domain classifier (the judge's architecture trained on real images of "
        "the suite's domains) assigns to the target domain, beside `true_domain_accuracy`, "
        "its share on the true transforms.",
        "",
        markdown_table(rows[[c for c in wanted if c in rows.columns]]),
    ]
