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

from ..contract.fields import (
    budgets,
    entries,
    freeze,
    no_relabelled_copies,
    per_device,
    suite_name,
    table,
    train_config,
    typed,
    unique_labels,
    unknown_keys,
)
from ..contract.suite import DefenseSpec, GeneratorSpec, PluginSpec, Suite, TargetSpec
from ..errors import UserError
from ..registry import DATASETS, search_path
from .specs import attack_spec, dataset_plugin, defense_spec, generator_spec
from .targets import target_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EVAL_BATCH_SIZE = 256  # [eval] batch_size when the suite sets none
GAN_METRIC_SAMPLES = 1000  # [gan_metrics] n when the suite sets none
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


def parse_suite(
    raw: Mapping[str, Any], path: Path, *, targets: tuple[TargetSpec, ...] | None = None
) -> Suite:
    """Validate a parsed TOML document (errors carry the field path in ``where``).

    ``targets``: the suite's targets, built already (a suite made in memory, whose models
    its record identifies, eval_folder.py); the table's ``[[targets]]`` are then not read.
    """
    owned = section_kinds()
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
    batch_size = typed(eval_table.get("batch_size", EVAL_BATCH_SIZE), int, "eval.batch_size")
    if batch_size < 1:
        raise UserError(f"must be >= 1, got {batch_size}", where="eval.batch_size")

    if targets is None:
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
    if typed(gan_table.get("n", GAN_METRIC_SAMPLES), int, "gan_metrics.n") < 2:
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
        gan_metric_samples=typed(gan_table.get("n", GAN_METRIC_SAMPLES), int, "gan_metrics.n"),
        inception_weights=inception_path(gan_table.get("inception_weights"), path),
        gan_baseline=typed(gan_table.get("baseline", True), bool, "gan_metrics.baseline"),
        notes=typed(raw.get("notes", ""), str, "notes"),
    )
    return with_sections(suite, raw)


def with_sections(suite: Suite, raw: Mapping[str, Any]) -> Suite:
    """``suite`` with what the evaluation kinds read from their own tables of ``raw``, in
    registration order, against the core (an absent table: what a kind reads from none)."""
    sections = {key: kind.read_section(key, raw, suite) for key, kind in section_kinds().items()}
    return dataclasses.replace(suite, sections=freeze(sections))


def section_kinds() -> dict[str, Any]:
    """Top-level table -> the registered kind of evaluation that reads it, in registration
    order (imported here: the kinds build on this module)."""
    from ..contract.kinds import EVALUATIONS

    return {key: kind for kind in EVALUATIONS.ordered() for key in kind.suite_sections}


# -- sections -----------------------------------------------------------------
def dataset_spec(raw: Mapping[str, Any]) -> PluginSpec:
    """The ``[dataset]`` table (the registered default dataset when it names none)."""
    data = table(raw, "dataset")
    name = data["name"] if "name" in data else DATASETS.default()
    params = {k: v for k, v in data.items() if k != "name"}
    return dataset_plugin(typed(name, str, "dataset.name"), params)


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
