"""[[targets]] entries: a classifier the suite trains, or a model it loads as it is."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..contract.configs import TrainConfig
from ..contract.suite import TargetSpec
from ..errors import UserError
from ..models.archives import is_archive
from ..models.pretrained import ModelSource, fingerprint
from ..registry import CLASSIFIERS
from .fields import check_kwargs, freeze, split_entry, table, train_config, typed

RUNNER_INPUTS = ("in_shape", "num_classes", "mean", "std")  # what the runner gives a factory
LOADING_KEYS = (
    "weights", "mean", "std", "features", "dataset", "threat_model", "model_dir", "download",
)  # fmt: skip
MODEL_DIR_ENV = "RBG_MODEL_DIR"


def target_spec(
    entry: Mapping[str, Any], index: int, train: TrainConfig, folder: Path, dataset: str
) -> TargetSpec:
    """A trained target (the default) or, with ``weights``, an archive file or a
    ``robustbench:`` name, a loaded one; ``folder`` is the suite file's folder (relative
    paths start there) and ``dataset`` the suite's dataset (for the model zoo)."""
    where = f"targets[{index}]"
    name = typed(entry.get("name"), str, f"{where}.name", required=True)
    if not is_loaded(name, entry):
        unexpected = [k for k in LOADING_KEYS if k in entry]
        if unexpected:
            raise UserError(
                f'{unexpected[0]!r} is for loaded models: add weights = "file" to load '
                f"{name}, or remove it to train one",
                where=f"{where}.{unexpected[0]}",
            )
        name, label, params = split_entry(entry, where, reserved=("train",))
        # a registered classifier gets these from the runner; another factory from its entry
        runner_sets = RUNNER_INPUTS if ":" not in name else ()
        check_kwargs(CLASSIFIERS, name, params, where, runner_sets=runner_sets)
        config = train_config(table(entry, "train", where), f"{where}.train", base=train)
        origin = CLASSIFIERS.origin(name)
        return TargetSpec(name, label, freeze(params), where, origin, train=config)
    if "train" in entry:
        raise UserError("a loaded model is used as it is, never trained", where=f"{where}.train")
    _, label, params = split_entry(entry, where, reserved=LOADING_KEYS)
    if "label" not in entry:
        label = default_label(name)
    return loaded_target(entry, where, name, label, params, folder, dataset)


def loaded_target(
    entry: Mapping[str, Any],
    where: str,
    name: str,
    label: str,
    params: Mapping[str, Any],
    folder: Path,
    dataset: str,
) -> TargetSpec:
    """A target loaded as it is: ``entry`` holds the loading keys (weights, mean, ...)."""
    source = ModelSource(
        name=name,
        params=freeze(params),
        weights=typed(entry.get("weights"), str, f"{where}.weights"),
        mean=channel_values(entry.get("mean"), f"{where}.mean"),
        std=channel_values(entry.get("std"), f"{where}.std"),
        features=typed(entry.get("features"), str, f"{where}.features"),
        dataset=typed(entry.get("dataset", dataset), str, f"{where}.dataset")
        if name.startswith("robustbench:")
        else None,
        threat_model=typed(entry.get("threat_model"), str, f"{where}.threat_model"),
        model_dir=model_dir(entry, where, folder) if name.startswith("robustbench:") else None,
        download=typed(entry.get("download", False), bool, f"{where}.download"),
    )
    if (source.mean is None) != (source.std is None):
        raise UserError(
            "mean and std go together", where=f"{where}.{'std' if source.mean else 'mean'}"
        )
    if name.startswith("robustbench:") and source.threat_model is None:
        raise UserError(
            'is required for a RobustBench model, e.g. "Linf"', where=f"{where}.threat_model"
        )
    try:  # an in-memory module (the Python API) is fingerprinted by its caller
        found = {} if name.startswith("object:") else fingerprint(source, folder)
    except UserError as exc:
        raise exc.at(where) from None
    return TargetSpec(
        name=name,
        label=label,
        params=freeze(params),
        where=where,
        origin=None if name.startswith("object:") or is_archive(name) else CLASSIFIERS.origin(name),
        source=source,
        fingerprint=freeze(found),
    )


def is_loaded(name: str, entry: Mapping[str, Any]) -> bool:
    """Whether the entry names a model to load (weights, an archive, the model zoo)."""
    return "weights" in entry or name.startswith("robustbench:") or is_archive(name)


def default_label(name: str) -> str:
    """``models/net.pt2`` -> ``net``; ``torchvision:resnet18`` -> ``resnet18``."""
    if is_archive(name):
        return Path(name).stem
    return name.rpartition(":")[2].rpartition(".")[2]


def channel_values(value: Any, where: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise UserError(f"must be a list of numbers, one per channel, got {value!r}", where=where)
    if where.endswith(".std") and min(value) <= 0:
        raise UserError(f"must be > 0, got {value!r}", where=where)
    return tuple(float(v) for v in value)


def model_dir(entry: Mapping[str, Any], where: str, folder: Path) -> str:
    """A RobustBench model folder: the entry's ``model_dir`` (relative to the suite file's
    folder) or $RBG_MODEL_DIR."""
    value = typed(entry.get("model_dir"), str, f"{where}.model_dir")
    if value is not None:
        return str(folder / value)
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return env
    raise UserError(
        f'a RobustBench model needs its model folder: set model_dir = "..." here or '
        f"${MODEL_DIR_ENV} (it holds <dataset>/<threat_model>/<name>.pt)",
        where=f"{where}.model_dir",
    )
