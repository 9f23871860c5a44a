"""Suite files: TOML in, frozen dataclasses out.

Every error names the file and the field path (``suites/x.toml: attacks[1].name:
unknown attack 'pgdd'; did you mean 'pgd'?``) so the user knows what to edit.

A suite looks like this (all tables but [dataset], [[targets]], [[attacks]] and
[eval] are optional)::

    name = "quickstart"
    seed = 0

    [dataset]            # name plus the loader's keyword arguments
    name = "digits"

    [train]              # defaults for every classifier (epochs, batch_size, lr, ...)
    epochs = 20

    [eval]
    eps = [0, 0.1, 0.3]  # Linf budgets on the [0, 1] scale
    n = 360              # test images attacked (default: the whole test split)

    [[targets]]          # classifiers; keys other than name/label/train go to the factory
    name = "small_cnn"
    train = { epochs = 30 }

    [[generators]]       # GANs; train = { steps = ..., batch_size = ... }
    name = "cdcgan"

    [[defenses]]         # base = a target label; members = model labels; generator = a label
    name = "fgsm_at"
    base = "small_cnn"
    eps = 0.1

    [[attacks]]          # keys other than name/label go to the attack's constructor
    name = "pgd"
    steps = 20
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import UserError
from .gans.train import GanTrainConfig
from .models.train import TrainConfig
from .registry import ATTACKS, CLASSIFIERS, DATASETS, DEFENSES, GENERATORS, Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WORST_CASE_LABEL = "worst_case"
BASELINE_GAN_LABEL = "baseline"  # the class-means generator the runner adds to gan.csv
GAN_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(GanTrainConfig))
TOP_LEVEL_KEYS = {
    "name", "description", "notes", "seed", "dataset", "train", "eval", "gan_metrics",
    "targets", "generators", "defenses", "attacks", "reference", "finding", "latent",
}  # fmt: skip
LATENT_KEYS = {"generator", "auxiliary", "n", "steps", "lr", "eps_z", "lambda_z", "lambda_aux"}
REFERENCE_METRICS = ("robust_acc", "error", "target_robust_acc", "transfer_error")


@dataclass(frozen=True)
class PluginSpec:
    """One entry of a plugin list: registry ``name``, unique ``label``, factory ``params``."""

    name: str
    label: str
    params: Mapping[str, Any]
    where: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(sorted(self.params.items()))}


@dataclass(frozen=True)
class TargetSpec(PluginSpec):
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class GeneratorSpec(PluginSpec):
    train: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackSpec(PluginSpec):
    norm: str = "linf"
    eps: tuple[float, ...] = ()  # budgets of this attack ([eval] eps unless the entry sets its own)


@dataclass(frozen=True)
class DefenseSpec(PluginSpec):
    kind: str = "training"
    base: str | None = None
    members: tuple[str, ...] = ()
    generator: str | None = None
    static: tuple[str, ...] = ()  # pre-trained models a defense learns from (ensemble_at)
    train: TrainConfig | None = None

    @property
    def model_label(self) -> str:
        """The label of the model this defense produces."""
        return f"{self.base}+{self.label}" if self.kind == "training" else self.label


@dataclass(frozen=True)
class ReferenceSpec:
    """A published figure the report sets beside ours.

    ``metric`` is ``robust_acc`` or ``error`` (1 - robust accuracy) of ``model`` under
    ``attack`` at ``eps``, or ``target_robust_acc`` / ``transfer_error`` of ``model`` on
    examples crafted on ``source``.
    """

    paper: str
    setting: str
    metric: str
    model: str
    attack: str
    eps: float
    value: float
    source: str | None = None


@dataclass(frozen=True)
class FindingSpec:
    """A paper's qualitative claim, checked on this run: under transfer from ``sources``
    (``attack`` at ``eps``), model ``better`` keeps a higher mean accuracy than ``worse``."""

    claim: str
    better: str
    worse: str
    sources: tuple[str, ...]
    attack: str
    eps: float


@dataclass(frozen=True)
class LatentSpec:
    """The latent-space attack (``[latent]``): a conditional ``generator`` of the suite, an
    ``auxiliary`` target that must keep recognising the source class, search ``params``."""

    generator: str
    auxiliary: str
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "auxiliary": self.auxiliary,
            "params": dict(sorted(self.params.items())),
        }


@dataclass(frozen=True)
class Suite:
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
    references: tuple[ReferenceSpec, ...] = ()
    findings: tuple[FindingSpec, ...] = ()
    latent: LatentSpec | None = None

    @property
    def model_labels(self) -> list[str]:
        """Every model the suite evaluates: targets, then defended models."""
        return [t.label for t in self.targets] + [d.model_label for d in self.defenses]


# -- reading ------------------------------------------------------------------
def load_suite(path: str | Path, device: str = "cpu") -> Suite:
    """Read and validate a suite file; raise UserError naming the file and field.

    A ``batch_size`` may be a table per device type, ``{ cpu = 64, cuda = 512 }``; the entry
    for ``device`` ("cpu" or "cuda") is used.
    """
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("suite file not found", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"invalid TOML: {exc}", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read suite: {exc}", where=where) from None
    try:
        return parse_suite(per_device(raw, device), path)
    except UserError as exc:
        raise UserError(
            exc.message, where=f"{where}: {exc.where}" if exc.where else where
        ) from None


DEVICE_TYPES = ("cpu", "cuda")


def per_device(raw: Mapping[str, Any], device: str) -> dict[str, Any]:
    """The suite with every per-device ``batch_size`` table replaced by ``device``'s value."""

    def pick(table: Any, where: str) -> Any:
        if not isinstance(table, dict):
            return table
        out = dict(table)
        value = out.get("batch_size")
        if isinstance(value, dict):
            unknown_keys(value, set(DEVICE_TYPES), f"{where}.batch_size")
            if device not in value:
                raise UserError(f"has no entry for {device}", where=f"{where}.batch_size")
            out["batch_size"] = value[device]
        return out

    resolved = dict(raw)
    for key in ("train", "eval"):
        resolved[key] = pick(raw.get(key), key)
    for key in ("targets", "defenses", "generators"):
        if isinstance(raw.get(key), list):
            resolved[key] = [
                {**e, "train": pick(e.get("train"), f"{key}[{i}].train")}
                if isinstance(e, dict) and "train" in e
                else e
                for i, e in enumerate(raw[key])
            ]
    return {k: v for k, v in resolved.items() if v is not None}


def parse_suite(raw: Mapping[str, Any], path: Path) -> Suite:
    """Validate a parsed TOML document (errors carry the field path in ``where``)."""
    unknown_keys(raw, TOP_LEVEL_KEYS, "")
    name = typed(raw.get("name", path.stem), str, "name")
    seed = typed(raw.get("seed", 0), int, "seed")
    train = train_config(table(raw, "train"), "train")
    dataset = dataset_spec(raw)
    eval_table = table(raw, "eval")
    unknown_keys(eval_table, {"eps", "n", "batch_size"}, "eval")
    eps = budgets(eval_table.get("eps"), "eval.eps")
    n_eval = eval_table.get("n")
    if n_eval is not None and (typed(n_eval, int, "eval.n") < 1):
        raise UserError(f"must be >= 1, got {n_eval}", where="eval.n")
    batch_size = typed(eval_table.get("batch_size", 256), int, "eval.batch_size")

    targets = tuple(target_spec(e, i, train) for i, e in enumerate(entries(raw, "targets")))
    if not targets:
        raise UserError("a suite needs at least one [[targets]] entry", where="targets")
    generators = tuple(generator_spec(e, i) for i, e in enumerate(entries(raw, "generators")))
    attacks = tuple(attack_spec(e, i, eps) for i, e in enumerate(entries(raw, "attacks")))
    if not attacks:
        raise UserError("a suite needs at least one [[attacks]] entry", where="attacks")
    defenses = tuple(defense_spec(e, i) for i, e in enumerate(entries(raw, "defenses")))

    for kind, specs in (("targets", targets), ("generators", generators), ("attacks", attacks)):
        unique_labels(specs, kind)
    check_defense_links(defenses, targets, generators)
    models = [t.label for t in targets] + [d.model_label for d in defenses]
    gan_table = table(raw, "gan_metrics")
    unknown_keys(gan_table, {"judge", "n", "inception_weights", "baseline"}, "gan_metrics")
    judge = gan_table.get("judge", targets[0].label if generators else None)
    if judge is not None and judge not in [t.label for t in targets]:
        raise UserError(f"judge {judge!r} is not a target label", where="gan_metrics.judge")
    return Suite(
        path=path,
        name=name,
        description=typed(raw.get("description", ""), str, "description"),
        seed=seed,
        dataset=dataset,
        train=train,
        eps=eps,
        n_eval=n_eval,
        eval_batch_size=batch_size,
        targets=targets,
        generators=generators,
        defenses=defenses,
        attacks=attacks,
        judge=judge,
        gan_metric_samples=typed(gan_table.get("n", 1000), int, "gan_metrics.n"),
        inception_weights=inception_path(gan_table.get("inception_weights"), path),
        gan_baseline=typed(gan_table.get("baseline", True), bool, "gan_metrics.baseline"),
        notes=typed(raw.get("notes", ""), str, "notes"),
        references=tuple(
            reference_spec(e, i, models, attacks) for i, e in enumerate(entries(raw, "reference"))
        ),
        findings=tuple(
            finding_spec(e, i, models, attacks) for i, e in enumerate(entries(raw, "finding"))
        ),
        latent=latent_spec(raw, targets, generators),
    )


# -- sections -----------------------------------------------------------------
def dataset_spec(raw: Mapping[str, Any]) -> PluginSpec:
    data = table(raw, "dataset")
    name = typed(data.get("name", "digits"), str, "dataset.name")
    params = {k: v for k, v in data.items() if k != "name"}
    for key in ("root", "seed"):
        if key in params:
            raise UserError(
                "set by the runner (--data-dir / the suite seed), not in the suite",
                where=f"dataset.{key}",
            )
    check_kwargs(DATASETS, name, params, "dataset")
    return PluginSpec(name=name, label=name, params=freeze(params), where="dataset")


def target_spec(entry: Mapping[str, Any], index: int, train: TrainConfig) -> TargetSpec:
    where = f"targets[{index}]"
    name, label, params = split_entry(entry, where, reserved=("train",))
    check_kwargs(
        CLASSIFIERS, name, params, where, runner_sets=("in_shape", "num_classes", "mean", "std")
    )
    overrides = table(entry, "train", where)
    config = train_config(overrides, f"{where}.train", base=train)
    return TargetSpec(name=name, label=label, params=freeze(params), where=where, train=config)


def latent_spec(
    raw: Mapping[str, Any], targets: tuple[TargetSpec, ...], generators: tuple[GeneratorSpec, ...]
) -> LatentSpec | None:
    """``[latent]``: the generator and auxiliary classifier by label, the search settings."""
    if "latent" not in raw:
        return None
    entry = table(raw, "latent")
    unknown_keys(entry, LATENT_KEYS, "latent")
    generator = typed(entry.get("generator"), str, "latent.generator", required=True)
    if generator not in [g.label for g in generators]:
        raise UserError(f"{generator!r} is not a generator label", where="latent.generator")
    auxiliary = typed(entry.get("auxiliary"), str, "latent.auxiliary", required=True)
    if auxiliary not in [t.label for t in targets]:
        raise UserError(f"{auxiliary!r} is not a target label", where="latent.auxiliary")
    params = {k: v for k, v in entry.items() if k not in ("generator", "auxiliary")}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"must be a non-negative number, got {value!r}", where=f"latent.{key}")
    return LatentSpec(generator, auxiliary, freeze(params))


def inception_path(value: Any, suite_path: Path) -> str | None:
    """``gan_metrics.inception_weights``: a local file, relative to the suite file's folder."""
    if value is None:
        return None
    path = suite_path.parent / typed(value, str, "gan_metrics.inception_weights")
    if not path.is_file():
        raise UserError(
            f"no Inception weights file at {path} (a torchvision inception_v3 state dict; "
            "nothing is downloaded)",
            where="gan_metrics.inception_weights",
        )
    return str(path.resolve())


def generator_spec(entry: Mapping[str, Any], index: int) -> GeneratorSpec:
    where = f"generators[{index}]"
    name, label, params = split_entry(entry, where, reserved=("train",))
    if label == BASELINE_GAN_LABEL:
        raise UserError(
            f"label {BASELINE_GAN_LABEL!r} is reserved for the class-means baseline row of "
            'gan.csv; set another, e.g. label = "my_gan"',
            where=f"{where}.label",
        )
    check_kwargs(GENERATORS, name, params, where, runner_sets=("in_shape", "num_classes"))
    train = table(entry, "train", where)
    unknown_keys(train, set(GAN_TRAIN_KEYS), f"{where}.train")
    try:
        GanTrainConfig(**train)  # values checked now; the family's defaults fill the rest
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=f"{where}.train") from None
    return GeneratorSpec(
        name=name, label=label, params=freeze(params), where=where, train=freeze(train)
    )


def attack_spec(entry: Mapping[str, Any], index: int, default_eps: tuple[float, ...]) -> AttackSpec:
    """An attack entry; ``eps`` (optional) replaces [eval] eps, and is required for L2 attacks."""
    where = f"attacks[{index}]"
    name, label, params = split_entry(entry, where, reserved=("eps",))
    if label == WORST_CASE_LABEL:
        raise UserError(
            f"label {WORST_CASE_LABEL!r} is reserved for the per-image worst case over all "
            'attacks; set another, e.g. label = "aa_like"',
            where=f"{where}.label",
        )
    if "seed" in params:
        raise UserError("attacks take the suite's seed; remove it here", where=f"{where}.seed")
    attack = construct(ATTACKS, name, params, where)  # value errors surface now, not mid-run
    norm = getattr(attack, "norm", "linf")
    if "eps" in entry:
        eps = budgets(entry["eps"], f"{where}.eps")
    elif norm == "linf":
        eps = default_eps
    else:
        raise UserError(
            f"{name} is a {norm} attack and [eval] eps holds Linf budgets; give its own "
            "eps = [...] (e.g. [0, 0.5, 1.0, 2.0] for L2 on 8x8 digits)",
            where=f"{where}.eps",
        )
    return AttackSpec(
        name=name, label=label, params=freeze(params), where=where, norm=norm, eps=eps
    )


def defense_spec(entry: Mapping[str, Any], index: int) -> DefenseSpec:
    where = f"defenses[{index}]"
    name, label, params = split_entry(
        entry, where, reserved=("base", "members", "generator", "static", "train")
    )
    factory = DEFENSES.get(name) if ":" in name else registry_get(DEFENSES, name, where)
    kind = getattr(factory, "kind", "")
    if kind not in ("training", "model"):
        raise UserError(f"{name!r} is not a defense (no kind 'training' or 'model')", where=where)
    spec: dict[str, Any] = {"kind": kind}
    if kind == "training":
        spec["base"] = typed(entry.get("base"), str, f"{where}.base", required=True)
        overrides = table(entry, "train", where)
        spec["train"] = train_config(overrides, f"{where}.train") if overrides else None
    else:
        members = entry.get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise UserError("must be a list of model labels", where=f"{where}.members")
        minimum = getattr(factory, "min_members", 1)
        if len(members) < minimum:
            raise UserError(f"needs at least {minimum} members", where=f"{where}.members")
        spec["members"] = tuple(members)
    if getattr(factory, "needs_generator", False):
        spec["generator"] = typed(entry.get("generator"), str, f"{where}.generator", required=True)
    elif "generator" in entry:
        raise UserError(f"{name} takes no generator", where=f"{where}.generator")
    if getattr(factory, "needs_static_models", False):
        static = entry.get("static")
        if (
            not isinstance(static, list)
            or not static
            or not all(isinstance(m, str) for m in static)
        ):
            raise UserError("must be a non-empty list of model labels", where=f"{where}.static")
        spec["static"] = tuple(static)
    elif "static" in entry:
        raise UserError(f"{name} takes no static models", where=f"{where}.static")
    runtime = (("generator",) if spec.get("generator") else ()) + (
        ("static_models",) if spec.get("static") else ()
    )
    construct(DEFENSES, name, params, where, skip=runtime)
    return DefenseSpec(name=name, label=label, params=freeze(params), where=where, **spec)


def attack_at_budget(
    entry: Mapping[str, Any], where: str, attacks: tuple[AttackSpec, ...]
) -> tuple[str, float]:
    """An entry's ``attack`` (a label of the suite) and an ``eps`` that attack runs at."""
    attack = typed(entry.get("attack"), str, f"{where}.attack", required=True)
    spec = next((a for a in attacks if a.label == attack), None)
    if spec is None:
        raise UserError(f"{attack!r} is not an attack label of the suite", where=f"{where}.attack")
    eps = typed(entry.get("eps"), float, f"{where}.eps", required=True)
    if eps not in spec.eps:
        raise UserError(f"{attack} does not run at eps {eps}", where=f"{where}.eps")
    return attack, eps


def reference_spec(
    entry: Mapping[str, Any], index: int, models: list[str], attacks: tuple[AttackSpec, ...]
) -> ReferenceSpec:
    where = f"reference[{index}]"
    keys = {"paper", "setting", "metric", "model", "attack", "eps", "value", "source"}
    unknown_keys(entry, keys, where)
    metric = typed(entry.get("metric"), str, f"{where}.metric", required=True)
    if metric not in REFERENCE_METRICS:
        raise UserError(f"must be one of {', '.join(REFERENCE_METRICS)}", where=f"{where}.metric")
    transfer = metric in ("target_robust_acc", "transfer_error")
    source = typed(entry.get("source"), str, f"{where}.source", required=transfer)
    for key, label in (("model", entry.get("model")), ("source", source)):
        if label is not None and label not in models:
            raise UserError(f"{label!r} is not a model of the suite", where=f"{where}.{key}")
    attack, eps = attack_at_budget(entry, where, attacks)
    return ReferenceSpec(
        paper=typed(entry.get("paper"), str, f"{where}.paper", required=True),
        setting=typed(entry.get("setting", ""), str, f"{where}.setting"),
        metric=metric,
        model=typed(entry.get("model"), str, f"{where}.model", required=True),
        attack=attack,
        eps=eps,
        value=typed(entry.get("value"), float, f"{where}.value", required=True),
        source=source,
    )


def finding_spec(
    entry: Mapping[str, Any], index: int, models: list[str], attacks: tuple[AttackSpec, ...]
) -> FindingSpec:
    where = f"finding[{index}]"
    unknown_keys(entry, {"claim", "better", "worse", "sources", "attack", "eps"}, where)
    sources = entry.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(m, str) for m in sources):
        raise UserError("must be a non-empty list of model labels", where=f"{where}.sources")
    better = typed(entry.get("better"), str, f"{where}.better", required=True)
    worse = typed(entry.get("worse"), str, f"{where}.worse", required=True)
    for key, label in [("better", better), ("worse", worse), *(("sources", m) for m in sources)]:
        if label not in models:
            raise UserError(f"{label!r} is not a model of the suite", where=f"{where}.{key}")
    overlap = {better, worse} & set(sources)
    if overlap:
        raise UserError(
            f"{', '.join(sorted(overlap))} cannot be its own source", where=f"{where}.sources"
        )
    attack, eps = attack_at_budget(entry, where, attacks)
    claim = typed(entry.get("claim"), str, f"{where}.claim", required=True)
    return FindingSpec(claim, better, worse, tuple(sources), attack, eps)


def check_defense_links(
    defenses: tuple[DefenseSpec, ...],
    targets: tuple[TargetSpec, ...],
    generators: tuple[GeneratorSpec, ...],
) -> None:
    """Bases, members and generators must name things defined earlier in the suite."""
    known = [t.label for t in targets]
    generator_labels = [g.label for g in generators]
    for spec in defenses:
        if spec.base is not None and spec.base not in [t.label for t in targets]:
            raise UserError(
                f"{spec.base!r} is not a target label (targets: {', '.join(known)})",
                where=f"{spec.where}.base",
            )
        for field_name, labels in (("members", spec.members), ("static", spec.static)):
            for member in labels:
                if member not in known:
                    raise UserError(
                        f"{member!r} is not a model defined above (models: {', '.join(known)})",
                        where=f"{spec.where}.{field_name}",
                    )
        if spec.generator is not None and spec.generator not in generator_labels:
            raise UserError(
                f"{spec.generator!r} is not a generator label "
                f"(generators: {', '.join(generator_labels) or 'none'})",
                where=f"{spec.where}.generator",
            )
        if spec.model_label in known:
            raise UserError(
                f"model label {spec.model_label!r} is used twice; set a distinct label",
                where=f"{spec.where}.label",
            )
        known.append(spec.model_label)


# -- small validators -----------------------------------------------------------
def table(raw: Mapping[str, Any], key: str, parent: str = "") -> dict[str, Any]:
    where = f"{parent}.{key}" if parent else key
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UserError(f"must be a table, got {type(value).__name__}", where=where)
    return dict(value)


def entries(raw: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise UserError(f"must be an array of tables ([[{key}]])", where=key)
    return value


def typed(value: Any, kind: type, where: str, *, required: bool = False) -> Any:
    if value is None:
        if required:
            raise UserError("is required", where=where)
        return None
    is_bool = isinstance(value, bool)
    if kind is float and isinstance(value, int) and not is_bool:
        return float(value)
    if not isinstance(value, kind) or (is_bool and kind is not bool):
        raise UserError(f"must be {kind.__name__}, got {value!r}", where=where)
    return value


def unknown_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise UserError(f"unknown key (allowed: {', '.join(sorted(allowed))})", where=path)


def budgets(value: Any, where: str) -> tuple[float, ...]:
    if value is None:
        raise UserError("is required: a list of budgets, e.g. [0, 0.1, 0.3]", where=where)
    if not isinstance(value, list) or not value:
        raise UserError(f"must be a non-empty list of numbers, got {value!r}", where=where)
    out = []
    for i, eps in enumerate(value):
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
            raise UserError(f"must be a finite number, got {eps!r}", where=f"{where}[{i}]")
        if eps < 0:
            raise UserError(f"must be >= 0, got {eps}", where=f"{where}[{i}]")
        out.append(float(eps))
    if len(set(out)) != len(out):
        raise UserError("budgets must be distinct", where=where)
    return tuple(sorted(out))


def train_config(
    raw: Mapping[str, Any], where: str, base: TrainConfig | None = None
) -> TrainConfig:
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown_keys(raw, allowed, where)
    try:
        return dataclasses.replace(base or TrainConfig(), **raw)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=where) from None


def split_entry(
    entry: Mapping[str, Any], where: str, reserved: tuple[str, ...] = ()
) -> tuple[str, str, dict[str, Any]]:
    name = typed(entry.get("name"), str, f"{where}.name", required=True)
    label = typed(entry.get("label", name), str, f"{where}.label")
    params = {k: v for k, v in entry.items() if k not in ("name", "label", *reserved)}
    return name, label, params


def unique_labels(specs: tuple[PluginSpec, ...], kind: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise UserError(
                f'label {spec.label!r} is used twice in [[{kind}]]; add label = "..."',
                where=f"{spec.where}.label",
            )
        seen.add(spec.label)


def registry_get(registry: Registry, name: str, where: str) -> Callable[..., Any]:
    try:
        return registry.get(name)
    except UserError as exc:
        raise exc.at(f"{where}.name") from None


def check_kwargs(
    registry: Registry,
    name: str,
    params: Mapping[str, Any],
    where: str,
    runner_sets: tuple[str, ...] = (),
) -> None:
    """Unknown keyword arguments are caught before any work starts."""
    factory = registry_get(registry, name, where)
    for key in runner_sets:
        if key in params:
            raise UserError("is set by the runner from the data", where=f"{where}.{key}")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    for key in params:
        if key not in signature.parameters:
            accepted = [p for p in signature.parameters if p not in runner_sets and p != "self"]
            raise UserError(
                f"{name} has no parameter {key!r} (accepted: {', '.join(accepted) or 'none'})",
                where=f"{where}.{key}",
            )


def construct(
    registry: Registry, name: str, params: Mapping[str, Any], where: str, skip: tuple[str, ...] = ()
) -> Any:
    """Build a plugin once to check its parameters' values; errors point at the entry."""
    check_kwargs(registry, name, params, where, runner_sets=skip)
    factory = registry_get(registry, name, where)
    needed = inspect.signature(factory).parameters
    if any(k in needed and needed[k].default is inspect.Parameter.empty for k in skip):
        return None  # needs runtime objects (a generator); checked when built
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid parameters for {name}: {exc}", where=where) from None


def freeze(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(params))
