"""A Suite written back as its suite table: the TOML document, as a dict, that reads back
(``parse_suite``) to the same Suite.

``benchmark()`` builds its suite from typed arguments, not from a file; its run folder
records this table (eval_folder.py), so that ``rbg report`` and ``rbg reproduce`` make the
same suite, and so the same cells, again. Only what differs from the reader's defaults is
written, except each entry's label. Two things do not come back from the table alone: a
loaded model is fingerprinted again from its files (a record keeps the fingerprint beside
the table), and the evaluation kinds' own tables (``[latent]``, ...) are not written, since
a kind keeps what it read from its table, not the table.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..contract.configs import TrainConfig
from ..contract.suite import AttackSpec, DefenseSpec, GeneratorSpec, Suite, TargetSpec
from .load import EVAL_BATCH_SIZE, GAN_METRIC_SAMPLES


def suite_table(suite: Suite) -> dict[str, Any]:
    """The suite table of ``suite`` (plain dicts, lists and scalars: TOML- and JSON-ready)."""
    raw: dict[str, Any] = {"name": suite.name}
    for key, default in (("description", ""), ("notes", "")):
        if getattr(suite, key) != default:
            raw[key] = getattr(suite, key)
    raw["seed"] = suite.seed
    raw["dataset"] = {"name": suite.dataset.name, **plain(suite.dataset.params)}
    train = changed(suite.train, TrainConfig())
    if train:
        raw["train"] = train
    raw["eval"] = {"eps": list(suite.eps)}
    if suite.n_eval is not None:
        raw["eval"]["n"] = suite.n_eval
    if suite.eval_batch_size != EVAL_BATCH_SIZE:
        raw["eval"]["batch_size"] = suite.eval_batch_size
    raw["targets"] = [target_entry(t, suite) for t in suite.targets]
    if suite.generators:
        raw["generators"] = [generator_entry(g) for g in suite.generators]
    if suite.defenses:
        raw["defenses"] = [defense_entry(d) for d in suite.defenses]
    raw["attacks"] = [attack_entry(a, suite) for a in suite.attacks]
    gan = gan_metrics(suite)
    if gan:
        raw["gan_metrics"] = gan
    return raw


def plain(value: Any) -> Any:
    """Frozen mappings and tuples as dicts and lists, recursively."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def changed(config: Any, base: Any) -> dict[str, Any]:
    """The fields of a dataclass ``config`` that differ from ``base``'s."""
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(base, f.name)
    }


def entry(spec: Any, **extra: Any) -> dict[str, Any]:
    return {"name": spec.name, "label": spec.label, **plain(spec.params), **extra}


def target_entry(spec: TargetSpec, suite: Suite) -> dict[str, Any]:
    """A trained target with its training settings that differ from [train]'s; a loaded one
    with the loading keys it sets (paths as the reader takes them: relative to the suite's
    folder)."""
    if spec.source is None:
        train = changed(spec.train, suite.train)
        return entry(spec, **({"train": train} if train else {}))
    out = entry(spec)
    source = spec.source
    for field in dataclasses.fields(source):
        value = getattr(source, field.name)
        if field.name in ("name", "params") or value == field.default:
            continue
        if field.name == "model_dir" and not Path(value).is_absolute():
            value = os.path.relpath(value, suite.path.parent)  # the reader joins the folder
        out[field.name] = plain(value)
    return out


def generator_entry(spec: GeneratorSpec) -> dict[str, Any]:
    return entry(spec, **({"train": plain(spec.train)} if spec.train else {}))


def defense_entry(spec: DefenseSpec) -> dict[str, Any]:
    out = entry(spec)
    if spec.kind == "training":
        out["base"] = spec.base
        if spec.train is not None:  # its own settings, whole: none means its base's
            out["train"] = dataclasses.asdict(spec.train)
    else:
        out["members"] = list(spec.members)
    if spec.generator is not None:
        out["generator"] = spec.generator
    if spec.static:
        out["static"] = list(spec.static)
    return out


def attack_entry(spec: AttackSpec, suite: Suite) -> dict[str, Any]:
    """An attack with its own budgets, unless it is a Linf attack at [eval] eps."""
    same = spec.norm == "linf" and spec.eps == suite.eps
    return entry(spec, **({} if same else {"eps": list(spec.eps)}))


def gan_metrics(suite: Suite) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if suite.judge != (suite.targets[0].label if suite.generators else None):
        out["judge"] = suite.judge
    if suite.gan_metric_samples != GAN_METRIC_SAMPLES:
        out["n"] = suite.gan_metric_samples
    if suite.inception_weights is not None:
        out["inception_weights"] = suite.inception_weights
    if not suite.gan_baseline:
        out["baseline"] = False
    return out
