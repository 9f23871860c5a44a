"""The frozen dataclasses a suite file becomes: one spec per plugin entry, and the Suite."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .configs import TrainConfig

WORST_CASE_LABEL = "worst_case"  # the per-image worst case over all attacks of a norm
BASELINE_GAN_LABEL = "baseline"  # the class-means generator the runner adds to gan.csv


@dataclass(frozen=True)
class PluginSpec:
    """One entry of a plugin list: registry ``name``, unique ``label``, factory ``params``."""

    name: str
    label: str
    params: Mapping[str, Any]
    where: str
    origin: Mapping[str, str] | None = None  # a plugin from outside the package: its source

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "params": dict(sorted(self.params.items()))}
        if self.origin is not None:  # built-in plugins carry none: their cell ids stay put
            out["origin"] = dict(sorted(self.origin.items()))
        return out


@dataclass(frozen=True)
class TargetSpec(PluginSpec):
    """A ``[[targets]]`` entry: a classifier the suite trains, or, with a ``source``
    (models.pretrained.ModelSource), a model it loads and uses as it is. ``fingerprint``
    holds what identifies a loaded model's files (sha256 of weights or archive)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    source: Any = None
    fingerprint: Mapping[str, Any] | None = None

    @property
    def loaded(self) -> bool:
        return self.source is not None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.source is not None:  # how to load it, as written (paths relative to the suite)
            fields = [f.name for f in dataclasses.fields(self.source)]
            loading = {k: getattr(self.source, k) for k in fields if k not in ("name", "params")}
            out["load"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in sorted(loading.items())
            }
            out["fingerprint"] = dict(sorted((self.fingerprint or {}).items()))
        return out


@dataclass(frozen=True)
class GeneratorSpec(PluginSpec):
    """A ``[[generators]]`` entry; ``train`` holds the GAN loop's options the suite sets."""

    train: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackSpec(PluginSpec):
    """An ``[[attacks]]`` entry with its norm and budgets."""

    norm: str = "linf"
    eps: tuple[float, ...] = ()  # budgets of this attack ([eval] eps unless the entry sets its own)
    min_classes: int = 2  # the fewest classes of data it runs on (its Attack.min_classes)


@dataclass(frozen=True)
class DefenseSpec(PluginSpec):
    """A ``[[defenses]]`` entry.

    ``kind`` is ``training`` (a classifier trained on ``base`` with the defense's objective)
    or ``model`` (an inference-time model built over ``members``). The capabilities come from
    the defense's class, so a third-party defense of the same sort gets the same treatment:
    ``combines_members`` (an ensemble: the report compares it with its members),
    ``purifier`` (it cleans inputs before a classifier: the report's purification section)
    and ``variant`` (how this configured defense is evaluated, e.g. Defense-GAN's gradient).
    """

    kind: str = "training"
    base: str | None = None
    members: tuple[str, ...] = ()
    generator: str | None = None
    static: tuple[str, ...] = ()  # pre-trained models a defense learns from (ensemble_at)
    train: TrainConfig | None = None
    combines_members: bool = False
    purifier: bool = False
    variant: str = ""
    min_classes: int = 2  # the fewest classes it trains on (an attack's, for adversarial training)

    @property
    def model_label(self) -> str:
        """The label of the model this defense produces."""
        return f"{self.base}+{self.label}" if self.kind == "training" else self.label


@dataclass(frozen=True)
class Suite:
    """A validated suite. ``sections`` holds what the evaluation kinds read from their own
    top-level tables (``[latent]``, ``[[reference]]``, ...), keyed by the table's name."""

    path: Path
    name: str
    description: str
    seed: int
    dataset: PluginSpec
    train: TrainConfig
    eps: tuple[float, ...]
    n_eval: int | None
    eval_batch_size: int
    targets: tuple[TargetSpec, ...]
    generators: tuple[GeneratorSpec, ...]
    defenses: tuple[DefenseSpec, ...]
    attacks: tuple[AttackSpec, ...]
    judge: str | None
    gan_metric_samples: int
    inception_weights: str | None = None  # local Inception-v3 state dict: adds Inception FID
    gan_baseline: bool = True  # a class-means "generator" row in gan.csv
    notes: str = ""
    sections: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def model_labels(self) -> list[str]:
        """Every model the suite evaluates: targets, then defended models."""
        return [t.label for t in self.targets] + [d.model_label for d in self.defenses]

    def section(self, key: str) -> Any:
        """What an evaluation kind read from the top-level table ``key`` (None if absent)."""
        return self.sections.get(key)
