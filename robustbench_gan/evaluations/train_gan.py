"""Training a generator: the suite's GANs (plus the class-means baseline) and gan_curves.csv."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor, nn

from ..contract.cells import Cell, CellOutput, CellRecord
from ..contract.context import Context, build
from ..contract.kind import TARGETS, Evaluation
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.results import Results
from ..contract.suite import BASELINE_GAN_LABEL, GeneratorSpec, Suite
from ..contract.tables import Tables
from ..errors import UserError
from ..gans.metrics import gan_metrics
from ..gans.train import train_gan
from ..models.pretrained import has_features
from ..registry import DATASETS, GENERATORS
from ..render.plots import gan_curves_plot
from ..utils import seed_everything
from .common import state_bytes

DEFAULT_GAN_STEPS = 1000


@dataclass(frozen=True)
class GanTrainSpec(Record):
    """A generator's training; ``monitor`` (FID while training, on the judge) and ``amp``
    enter the JSON only when set."""

    OPTIONAL = ("monitor", "amp")

    generator: dict[str, Any]
    train: dict[str, Any]
    seed: int
    monitor: dict[str, Any] | None = None  # {"judge": label, "n": samples}
    amp: bool = False


@dataclass(frozen=True)
class GanTrainResult(Record):
    d_loss: list[float]
    g_loss: list[float]
    seconds: float
    steps: int
    conditional: bool
    options: dict[str, Any] = field(default_factory=dict)  # the loop's options as used
    series: dict[str, list[float]] = field(default_factory=dict)  # a family's extra series
    monitor: list[dict[str, Any]] = field(default_factory=list)  # FID/coverage by step


@EVALUATIONS.register
class TrainGan(Evaluation):
    """Trains every [[generators]] entry (and the class-means baseline when generator
    metrics are on); finished cells load as GANs. Writes gan_curves.csv and its plot."""

    kind = "train_gan"
    key_columns = ("generator",)
    needs = (TARGETS,)  # the judge of a FID monitor
    makes = ("gan_curves",)

    def plan(self, suite: Suite, plan: Plan) -> None:
        judge_cell = plan.models[suite.judge].train_cell if suite.judge is not None else None
        for gen in generators_of(suite):
            spec = GanTrainSpec(gen.to_json(), dict(gen.train), suite.seed, amp=plan.amp)
            deps: tuple[str, ...] = ()
            if gen.train.get("fid_every") and judge_cell is not None:  # FID while training
                monitor = {"judge": suite.judge, "n": suite.gan_metric_samples}
                spec = GanTrainSpec(spec.generator, spec.train, spec.seed, monitor, plan.amp)
                deps = (judge_cell,)
            plan.add(self.kind, gen.label, f"train {gen.label}", spec, deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: GanTrainSpec = cell.spec  # type: ignore[assignment]
        seed_everything(spec.seed)
        gan = build(GENERATORS, spec.generator, ctx.generator_inputs())
        attach_domain(ctx, gan, spec.seed)
        monitor = None
        if spec.monitor is not None:
            judge = ctx.load(cell.deps[0])
            needs_features(judge, spec.monitor["judge"])
            n, seed = spec.monitor["n"], spec.seed

            def monitor(g: nn.Module) -> dict[str, float]:
                values = gan_metrics(g, judge, ctx.data.x_test, ctx.data.y_test, n=n, seed=seed)
                return {"fid": values["fid"], "coverage": values["coverage"]}

        history = train_gan(
            gan,
            ctx.data.x_train,
            ctx.data.y_train,
            seed=spec.seed,
            device=ctx.device,
            progress=ctx.progress,
            amp=spec.amp,
            monitor=monitor,
            **{"steps": DEFAULT_GAN_STEPS, **spec.train},
        )
        ctx.loaded[cell.id] = gan.eval()
        result = GanTrainResult(
            history.d_loss,
            history.g_loss,
            history.seconds,
            history.steps,
            bool(gan.conditional),
            history.options,
            history.series,
            history.monitor,
        )
        return CellOutput(result.to_json(), {"state": state_bytes(gan)})

    def load(self, record: CellRecord, ctx: Context) -> Any:
        gan = build(GENERATORS, record.spec["generator"], ctx.generator_inputs())
        gan.load_state_dict(ctx.store.load_tensors(record.artifacts["state"]))
        attach_domain(ctx, gan, record.spec["seed"])
        return gan.to(ctx.device).eval()

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        tables.set("gan_curves", gan_curve_table(results, suite.judge), csv="gan_curves.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        curves = tables["gan_curves"]
        if not len(curves):
            return {}
        return {"gan_curves": gan_curves_plot(curves, folder / "gan_curves.png")}


def needs_features(judge: nn.Module, label: str) -> None:
    """The judge's penultimate features feed FID: a model without them is named."""
    if not has_features(judge):
        raise UserError(
            f"the judge {label!r} has no features() for FID: name its penultimate layer in "
            'its [[targets]] entry (features = "layer4") or pick another judge',
            where="gan_metrics.judge",
        )


def generators_of(suite: Suite) -> list[GeneratorSpec]:
    """The suite's generators, plus the class-means baseline when generator metrics are on."""
    gens = list(suite.generators)
    if gens and suite.judge is not None and suite.gan_baseline:
        gens.append(
            GeneratorSpec(
                name="class_means",
                label=BASELINE_GAN_LABEL,
                params=MappingProxyType({}),
                where="gan_metrics.baseline",
            )
        )
    return gens


def attach_domain(ctx: Context, gan: nn.Module, seed: int) -> None:
    """Give a translating GAN the images of each of its domains that is a dataset (not a
    transform)."""
    for domain in getattr(gan, "translated_domains", ()):
        if not gan.is_transform_domain(domain):
            train, test = domain_dataset(ctx, domain, seed)
            gan.attach_domain_images(domain, train, test)


def domain_dataset(ctx: Context, domain: str, seed: int) -> tuple[Tensor, Tensor]:
    """The training and test images of the dataset ``domain``, which must have the suite's
    image shape."""
    other = DATASETS.create(domain, root=ctx.data_root, seed=seed)
    if other.shape != ctx.data.shape:
        raise UserError(
            f"domain {domain!r} has images of shape {other.shape}, "
            f"the suite's data {ctx.data.shape}"
        )
    return other.x_train, other.x_test


def trained(results: Results) -> dict[str, GanTrainResult]:
    """Generator label -> its training result."""
    return {
        label: GanTrainResult.from_json(f.result) for label, f in results.of("train_gan").items()
    }


def judged(name: str, judge: str) -> str:
    """Metrics computed on the judge's outputs carry its name (``fid_small_cnn``)."""
    return {"fid": f"fid_{judge}", "inception_score": f"is_{judge}"}.get(name, name)


def gan_curve_table(results: Results, judge: str | None) -> pd.DataFrame:
    """Per generator and training step (1-based): D and G losses, a family's extra series
    (CycleGAN's cycle_error), and the monitor's FID and coverage where measured."""
    frames = []
    for label, result in trained(results).items():
        if not result.steps:
            continue
        frame = pd.DataFrame(
            {
                "generator": label,
                "step": np.arange(1, len(result.d_loss) + 1),
                "d_loss": result.d_loss,
                "g_loss": result.g_loss,
                **result.series,
            }
        )
        monitor = pd.DataFrame(result.monitor)
        if len(monitor):
            monitor = monitor.rename(columns=lambda c: judged(c, judge or "judge"))
            frame = frame.merge(monitor, on="step", how="left")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["generator", "step", "d_loss", "g_loss"])
    return pd.concat(frames, ignore_index=True)
