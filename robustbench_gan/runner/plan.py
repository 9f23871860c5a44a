"""From a suite to a list of cells in dependency order.

A cell's id hashes its kind, its spec, its upstream ids, the data split's
fingerprint and the cache version, so a rerun finds every finished cell and a
change anywhere upstream invalidates exactly what depends on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..audit import CHECKS_VERSION
from ..registry import GENERATORS
from ..suite import BASELINE_GAN_LABEL, DefenseSpec, GeneratorSpec, Suite

CACHE_VERSION = 2  # bump when a cell's result format changes


@dataclass(frozen=True)
class Cell:
    id: str
    kind: str  # train_classifier | train_gan | gan_metrics | audit | attack | transfer | domain_shift | latent
    label: str
    spec: dict[str, Any]
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelRef:
    """How to build one evaluated model: a trained classifier or a model defense over members."""

    label: str
    target: str  # leaderboard 'target' column
    defense: str  # leaderboard 'defense' column ('none' when undefended)
    train_cell: str | None = None  # trained classifiers
    build: dict[str, Any] | None = None  # model defenses: {"defense": ..., "members": [...]}
    members: tuple[ModelRef, ...] = ()
    extra: tuple[str, ...] = ()  # other cells a model defense builds on (its generator)

    @property
    def cells(self) -> tuple[str, ...]:
        if self.train_cell is not None:
            return (self.train_cell,)
        return tuple(c for m in self.members for c in m.cells) + self.extra

    def to_json(self) -> dict[str, Any]:
        if self.train_cell is not None:
            return {"trained": self.train_cell}
        return {"build": self.build, "members": [m.to_json() for m in self.members]}


@dataclass
class Plan:
    cells: list[Cell] = field(default_factory=list)
    models: dict[str, ModelRef] = field(default_factory=dict)
    gan_cells: dict[str, str] = field(default_factory=dict)  # generator label -> train cell
    gan_families: dict[str, str] = field(default_factory=dict)  # generator label -> family
    metric_cells: dict[str, str] = field(default_factory=dict)  # generator label -> metrics cell
    attack_cells: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, attack)
    audit_cells: dict[str, str] = field(default_factory=dict)  # model -> model-level checks
    # (model, translating generator) -> accuracy on the test set moved to the other domain
    domain_cells: dict[tuple[str, str], str] = field(default_factory=dict)
    latent_cells: dict[str, str] = field(default_factory=dict)  # model -> latent-space attack
    # (attack, source, target) -> transfer cell
    transfer_cells: dict[tuple[str, str, str], str] = field(default_factory=dict)
    amp: bool = False  # bfloat16 autocast in training

    def add(
        self, kind: str, label: str, spec: dict[str, Any], deps: tuple[str, ...], data: str
    ) -> str:
        cell_id = cell_hash(kind, spec, deps, data)
        self.cells.append(Cell(cell_id, kind, label, spec, deps))
        return cell_id

    def by_kind(self, kind: str) -> list[Cell]:
        return [c for c in self.cells if c.kind == kind]


def cell_hash(kind: str, spec: dict[str, Any], deps: tuple[str, ...], data: str) -> str:
    payload = json.dumps(
        {"v": CACHE_VERSION, "kind": kind, "spec": spec, "deps": list(deps), "data": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


METRICS_VERSION = 2  # bump when gan_metrics adds or changes a metric


def build_plan(suite: Suite, data_fingerprint: str, *, amp: bool = False) -> Plan:
    """Every cell the suite needs, upstream before downstream. ``amp`` (bfloat16 autocast in
    training) changes the trained weights, so it is part of the training cells' specs."""
    plan = Plan(amp=amp)
    data = data_fingerprint
    for target in suite.targets:
        spec = train_spec(
            target.to_json(), dataclasses.asdict(target.train), None, suite.seed, amp=amp
        )
        cell = plan.add("train_classifier", f"train {target.label}", spec, (), data)
        plan.models[target.label] = ModelRef(target.label, target.label, "none", train_cell=cell)

    judge_cell = plan.models[suite.judge].train_cell if suite.judge is not None else None
    for gen in generators_of(suite):
        spec: dict[str, Any] = {
            "generator": gen.to_json(),
            "train": dict(gen.train),
            "seed": suite.seed,
        }
        deps: tuple[str, ...] = ()
        if gen.train.get("fid_every") and judge_cell is not None:  # FID while training
            spec["monitor"] = {"judge": suite.judge, "n": suite.gan_metric_samples}
            deps = (judge_cell,)
        if amp:
            spec["amp"] = True
        plan.gan_cells[gen.label] = plan.add("train_gan", f"train {gen.label}", spec, deps, data)
        plan.gan_families[gen.label] = gen.name

    for defense in suite.defenses:
        plan.models[defense.model_label] = defended_model(plan, suite, defense, data)

    if judge_cell is not None:
        for label, gan_cell in plan.gan_cells.items():
            spec = {
                "n": suite.gan_metric_samples,
                "seed": suite.seed,
                "judge": suite.judge,
                "metrics": METRICS_VERSION,
            }
            if suite.inception_weights:
                spec["inception_weights"] = suite.inception_weights
            deps = (gan_cell, judge_cell)
            plan.metric_cells[label] = plan.add("gan_metrics", f"metrics {label}", spec, deps, data)

    for model in plan.models.values():
        spec = {
            "model": model.to_json(),
            "n_eval": suite.n_eval,
            "seed": suite.seed,
            "checks": CHECKS_VERSION,
        }
        plan.audit_cells[model.label] = plan.add(
            "audit", f"audit {model.label}", spec, model.cells, data
        )
        for attack in suite.attacks:
            spec = {
                "model": model.to_json(),
                "attack": attack.to_json(),
                "eps": list(attack.eps),
                "n_eval": suite.n_eval,
                "seed": suite.seed,
            }
            label = f"{attack.label} on {model.label}"
            cell = plan.add("attack", label, spec, model.cells, data)
            plan.attack_cells[model.label, attack.label] = cell
        for gen in suite.generators:
            if not translates_domains(gen.name):
                continue
            spec = {"model": model.to_json(), "n_eval": suite.n_eval, "seed": suite.seed}
            deps = (plan.gan_cells[gen.label], *model.cells)
            label = f"{gen.label} domain shift on {model.label}"
            cell = plan.add("domain_shift", label, spec, deps, data)
            plan.domain_cells[model.label, gen.label] = cell

    if suite.latent is not None:
        aux = plan.models[suite.latent.auxiliary]
        for model in plan.models.values():
            if model.label == suite.latent.auxiliary:  # it judges the others
                continue
            spec = {"model": model.to_json(), "latent": suite.latent.to_json(), "seed": suite.seed}
            deps = (plan.gan_cells[suite.latent.generator], *aux.cells, *model.cells)
            label = f"latent attack on {model.label}"
            plan.latent_cells[model.label] = plan.add("latent", label, spec, deps, data)

    for (source, attack_label), source_cell in list(plan.attack_cells.items()):
        for target in plan.models.values():
            if target.label == source:
                continue
            spec = {"target": target.to_json()}
            label = f"{attack_label} {source} -> {target.label}"
            cell = plan.add("transfer", label, spec, (source_cell, *target.cells), data)
            plan.transfer_cells[attack_label, source, target.label] = cell
    return plan


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


def translates_domains(family: str) -> bool:
    """Whether a generator family translates between domains (CycleGAN) rather than sampling;
    such a family marks its factory with ``translates_domains = True``."""
    return bool(getattr(GENERATORS.get(family), "translates_domains", False))


def train_spec(
    classifier: dict[str, Any],
    train: dict[str, Any],
    defense: dict[str, Any] | None,
    seed: int,
    *,
    generator: str | None = None,
    static: tuple[ModelRef, ...] = (),
    amp: bool = False,
) -> dict[str, Any]:
    """A classifier's training: architecture, optimiser settings, defense and what it uses.

    ``amp`` enters the spec only when on, so float32 cells keep their ids."""
    spec = {
        "classifier": classifier,
        "train": train,
        "defense": defense,
        "seed": seed,
        "generator": generator,
        "static": [m.to_json() for m in static],
    }
    return {**spec, "amp": True} if amp else spec


def defended_model(plan: Plan, suite: Suite, defense: DefenseSpec, data: str) -> ModelRef:
    if defense.kind == "model":
        members = tuple(plan.models[m] for m in defense.members)
        build = {"defense": defense.to_json()}
        extra: tuple[str, ...] = ()
        if defense.generator:  # a purifier (defense_gan) runs a generator of the suite
            build["generator"] = plan.gan_cells[defense.generator]
            extra = (build["generator"],)
        target = "+".join(defense.members)
        return ModelRef(
            defense.model_label, target, defense.label, build=build, members=members, extra=extra
        )
    target = next(t for t in suite.targets if t.label == defense.base)
    config = defense.train or target.train
    generator = plan.gan_cells[defense.generator] if defense.generator else None
    static = tuple(plan.models[m] for m in defense.static)
    deps = ((generator,) if generator else ()) + tuple(c for m in static for c in m.cells)
    spec = train_spec(
        target.to_json(),
        dataclasses.asdict(config),
        defense.to_json(),
        suite.seed,
        generator=generator,
        static=static,
        amp=plan.amp,
    )
    cell = plan.add("train_classifier", f"train {defense.model_label}", spec, deps, data)
    return ModelRef(defense.model_label, target.label, defense.label, train_cell=cell)
