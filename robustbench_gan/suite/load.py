"""Reading a suite file: TOML in, the frozen dataclasses of contract/suite.py out.

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

Other top-level tables ([latent], [[reference]], [[finding]]) belong to the kinds of
evaluation that read them (``Evaluation.read_section`` in evaluations/).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..contract.configs import GanTrainConfig
from ..contract.suite import (
    BASELINE_GAN_LABEL,
    WORST_CASE_LABEL,
    AttackSpec,
    DefenseSpec,
    GeneratorSpec,
    PluginSpec,
    Suite,
    TargetSpec,
)
from ..errors import UserError
from ..registry import ATTACKS, DATASETS, DEFENSES, GENERATORS, Registry, search_path
from .classes import defense_classes
from .fields import (
    budgets,
    check_kwargs,
    construct,
    entries,
    freeze,
    no_relabelled_copies,
    per_device,
    registry_get,
    split_entry,
    suite_name,
    table,
    train_config,
    typed,
    unique_labels,
    unknown_keys,
)
from .targets import target_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GAN_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(GanTrainConfig))
CORE_KEYS = {
    "name", "description", "notes", "seed", "dataset", "train", "eval", "gan_metrics",
    "targets", "generators", "defenses", "attacks",
}  # fmt: skip


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
        with search_path(path.parent):  # module:attr plugins beside the suite file
            return parse_suite(per_device(raw, device), path)
    except UserError as exc:
        raise UserError(
            exc.message, where=f"{where}: {exc.where}" if exc.where else where
        ) from None


def parse_suite(raw: Mapping[str, Any], path: Path) -> Suite:
    """Validate a parsed TOML document (errors carry the field path in ``where``)."""
    kinds = evaluation_kinds()
    owned = {key: kind for kind in kinds for key in kind.suite_sections}
    unknown_keys(raw, CORE_KEYS | set(owned), "")
    name = suite_name(typed(raw.get("name", path.stem), str, "name"), "name" in raw)
    seed = typed(raw.get("seed", 0), int, "seed")
    if not 0 <= seed < 2**63:
        raise UserError(f"must be a whole number >= 0, got {seed}", where="seed")
    train = train_config(table(raw, "train"), "train")
    dataset = dataset_spec(raw)
    eval_table = table(raw, "eval")
    unknown_keys(eval_table, {"eps", "n", "batch_size"}, "eval")
    eps = budgets(eval_table.get("eps"), "eval.eps")
    n_eval = eval_table.get("n")
    if n_eval is not None and (typed(n_eval, int, "eval.n") < 1):
        raise UserError(f"must be >= 1, got {n_eval}", where="eval.n")
    batch_size = typed(eval_table.get("batch_size", 256), int, "eval.batch_size")
    if batch_size < 1:
        raise UserError(f"must be >= 1, got {batch_size}", where="eval.batch_size")

    targets = tuple(
        target_spec(e, i, train, path.parent, dataset.name)
        for i, e in enumerate(entries(raw, "targets"))
    )
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
    trains = {t.label: t.train for t in targets}  # a training defense trains as its base does
    as_trained = tuple(
        dataclasses.replace(d, train=trains[d.base]) if d.base and d.train is None else d
        for d in defenses
    )
    entry_lists = (targets, generators, as_trained, attacks)
    for noun, specs in zip(("model", "generator", "defense", "attack"), entry_lists):
        no_relabelled_copies(specs, noun)  # one experiment under two labels: one cell
    gan_table = table(raw, "gan_metrics")
    unknown_keys(gan_table, {"judge", "n", "inception_weights", "baseline"}, "gan_metrics")
    judge = gan_table.get("judge", targets[0].label if generators else None)
    if typed(gan_table.get("n", 1000), int, "gan_metrics.n") < 2:
        raise UserError("must be >= 2 (generated images compared)", where="gan_metrics.n")
    if judge is not None and judge not in [t.label for t in targets]:
        raise UserError(f"judge {judge!r} is not a target label", where="gan_metrics.judge")
    suite = Suite(
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
    )
    # the evaluation kinds read their own tables, in registration order, against the core
    sections = {key: kind.read_section(key, raw, suite) for key, kind in owned.items()}
    return dataclasses.replace(suite, sections=freeze(sections))


def origin_of(registry: Registry, name: str, where: str) -> dict[str, str] | None:
    """Where a plugin's code comes from when it is not this package's (its cells' ids cover
    it, so editing a plugin's file or upgrading its package invalidates its results)."""
    try:
        return registry.origin(name)
    except UserError as exc:
        raise exc.at(f"{where}.name") from None


def evaluation_kinds() -> list[Any]:
    """The registered kinds of evaluation (imported here: they build on this module)."""
    from ..contract.kinds import EVALUATIONS

    return EVALUATIONS.ordered()


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
    origin = origin_of(DATASETS, name, "dataset")
    return PluginSpec(name, name, freeze(params), "dataset", origin)


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
        name, label, freeze(params), where, origin_of(GENERATORS, name, where), train=freeze(train)
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
    if norm == "linf" and eps[-1] > 1:
        raise UserError(
            f"Linf budgets are on the [0, 1] pixel scale and {eps[-1]:g} is above 1, where the "
            "ball holds every image (0-255 scale? write 8/255 for 8 grey levels)",
            where=f"{where}.eps" if "eps" in entry else "eval.eps",
        )
    origin = origin_of(ATTACKS, name, where)
    classes = getattr(attack, "min_classes", 2)  # checked against the data once it is loaded
    return AttackSpec(
        name, label, freeze(params), where, origin, norm=norm, eps=eps, min_classes=classes
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
    if "seed" in params:
        raise UserError("defenses take the suite's seed; remove it here", where=f"{where}.seed")
    spec: dict[str, Any] = {
        "kind": kind,
        "combines_members": bool(getattr(factory, "combines_members", False)),
        "purifier": bool(getattr(factory, "purifier", False)),
    }
    variant = getattr(factory, "variant", None)
    spec["variant"] = str(variant(params)) if callable(variant) else ""
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
    built = construct(DEFENSES, name, params, where, skip=runtime)
    spec["min_classes"] = defense_classes(built, params, where)  # checked once data is loaded
    origin = origin_of(DEFENSES, name, where)
    return DefenseSpec(name, label, freeze(params), where, origin, **spec)


def check_defense_links(
    defenses: tuple[DefenseSpec, ...],
    targets: tuple[TargetSpec, ...],
    generators: tuple[GeneratorSpec, ...],
) -> None:
    """Bases, members and generators must name things defined earlier in the suite."""
    known = [t.label for t in targets]
    generator_labels = [g.label for g in generators]
    loaded = [t.label for t in targets if t.loaded]
    for spec in defenses:
        if spec.base in loaded:
            raise UserError(
                f"{spec.base!r} is a loaded model, used as it is; a training defense trains "
                "its own model: give it a [[targets]] entry that is trained",
                where=f"{spec.where}.base",
            )
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
