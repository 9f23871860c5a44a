"""Training a classifier: the suite's targets, and the models its training defenses produce."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..contract.cells import Cell, CellOutput, CellRecord, ModelRef
from ..contract.configs import TrainConfig
from ..contract.context import Context, build_defense
from ..contract.kind import MODELS, TARGETS, Evaluation, PlanStep
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.suite import DefenseSpec, Suite
from ..models.pretrained import ModelSource, load_classifier
from ..models.train import train_classifier
from ..utils import predict, seed_everything
from .common import share, state_bytes


@dataclass(frozen=True)
class TrainSpec(Record):
    """A classifier's training: architecture, optimiser settings, defense and what it uses.

    ``amp`` enters the JSON only when on, so float32 cells keep their ids."""

    OPTIONAL = ("amp",)

    classifier: dict[str, Any]
    train: dict[str, Any]
    defense: dict[str, Any] | None
    seed: int
    generator: str | None = None  # the train_gan cell a defense samples from
    static: list[dict[str, Any]] = field(default_factory=list)  # models a defense learns from
    amp: bool = False


@dataclass(frozen=True)
class TrainResult(Record):
    epoch_loss: list[float]
    seconds: float
    test_acc: float


@EVALUATIONS.register
class TrainClassifier(Evaluation):
    """Trains every [[targets]] model, and every model a training defense produces; its
    finished cells load as classifiers for the cells that evaluate them."""

    kind = "train_classifier"
    key_columns = ("model",)

    def plan_steps(self) -> list[PlanStep]:
        # the targets first (a generator's FID monitor uses one), the defended models after
        # the generators (gan_augment trains on a generator's samples)
        return [
            PlanStep(self.plan_targets, gives=(self.kind, TARGETS)),
            PlanStep(self.plan_defenses, (TARGETS, "train_gan"), (self.kind, MODELS)),
        ]

    def plan_targets(self, suite: Suite, plan: Plan) -> None:
        for target in suite.targets:
            if target.loaded:  # the load_classifier kind's
                continue
            spec = TrainSpec(
                target.to_json(), dataclasses.asdict(target.train), None, suite.seed, amp=plan.amp
            )
            cell = plan.add(self.kind, target.label, f"train {target.label}", spec, ())
            plan.models[target.label] = ModelRef(target.label, target.label, "none", cell)

    def plan_defenses(self, suite: Suite, plan: Plan) -> None:
        gans = plan.cells_of("train_gan")
        for defense in suite.defenses:
            if defense.kind == "model":
                plan.models[defense.model_label] = model_defense(plan, defense, gans)
                continue
            target = next(t for t in suite.targets if t.label == defense.base)
            generator = gans[defense.generator] if defense.generator else None
            static = tuple(plan.models[m] for m in defense.static)
            deps = ((generator,) if generator else ()) + tuple(c for m in static for c in m.cells)
            spec = TrainSpec(
                target.to_json(),
                dataclasses.asdict(defense.train or target.train),
                defense.to_json(),
                suite.seed,
                generator=generator,
                static=[m.to_json() for m in static],
                amp=plan.amp,
            )
            label = defense.model_label
            cell = plan.add(self.kind, label, f"train {label}", spec, deps)
            plan.models[label] = ModelRef(label, target.label, defense.label, train_cell=cell)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: TrainSpec = cell.spec  # type: ignore[assignment]
        seed_everything(spec.seed)
        model = build_classifier(spec.classifier, ctx)
        defense = None
        if spec.defense is not None:
            extra: dict[str, Any] = {}
            if spec.generator is not None:
                extra["generator"] = ctx.load(spec.generator)
            if spec.static:
                extra["static_models"] = [ctx.model(ref, spec.seed) for ref in spec.static]
            defense = build_defense(spec.defense, extra, spec.seed)
        history = train_classifier(
            model,
            ctx.data.x_train,
            ctx.data.y_train,
            config=TrainConfig(**spec.train),
            seed=spec.seed,
            device=ctx.device,
            objective=defense,
            progress=ctx.progress,
            desc=cell.label,
            amp=spec.amp,
        )
        test_acc = share(predict(model, ctx.data.x_test) == ctx.data.y_test)
        ctx.loaded[cell.id] = model.eval()
        result = TrainResult(history.epoch_loss, history.seconds, test_acc)
        return CellOutput(result.to_json(), {"state": state_bytes(model)})

    def load(self, record: CellRecord, ctx: Context) -> Any:
        model = build_classifier(record.spec["classifier"], ctx)
        model.load_state_dict(ctx.store.load_tensors(record.artifacts["state"]))
        return model.to(ctx.device).eval()


def build_classifier(classifier: dict[str, Any], ctx: Context) -> nn.Module:
    """A fresh classifier: a registered one gets the data's shape, classes, mean and std; a
    ``module:attr`` or ``torchvision:`` factory its entry's keys and those its signature names."""
    source = ModelSource(classifier["name"], classifier["params"])
    folder = Path(ctx.suite_dir) if ctx.suite_dir else None
    return load_classifier(source, runner_inputs=ctx.classifier_inputs(), base=folder)


def model_defense(plan: Plan, defense: DefenseSpec, gans: dict[Any, str]) -> ModelRef:
    """A model defense (an ensemble, a purifier) over trained members: no cell of its own."""
    members = tuple(plan.models[m] for m in defense.members)
    build_info: dict[str, Any] = {"defense": defense.to_json()}
    extra: tuple[str, ...] = ()
    if defense.generator:  # a purifier (defense_gan) runs a generator of the suite
        build_info["generator"] = gans[defense.generator]
        extra = (build_info["generator"],)
    return ModelRef(
        defense.model_label,
        "+".join(defense.members),
        defense.label,
        build=build_info,
        members=members,
        extra=extra,
    )
